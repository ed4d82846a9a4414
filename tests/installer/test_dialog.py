"""The desktop side: the message bar and menu entry, and the dialog's install, live log and Cancel.

Each test runs in its own offscreen QGIS process with the GUI enabled (other tests in the same
pytest run create a QgsApplication without GUI, and a process can only have one).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from .test_install import make_wheel

pytestmark = pytest.mark.qgis

PRELUDE = r"""
import json, os, socket, sys, threading, time
from qgis.core import QgsApplication
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtWidgets import QMainWindow, QPushButton
app = QgsApplication([], True)
app.initQgis()
PLUGIN_DIR, WORK = sys.argv[1], sys.argv[2]
sys.path.insert(0, PLUGIN_DIR)
import dualsr
from dualsr import plugin as plugin_module
from dualsr.installer import core


class FakeIface:
    def __init__(self):
        self.window = QMainWindow()
        self.bar = QgsMessageBar(self.window)
        self.menus = []
    def mainWindow(self):
        return self.window
    def messageBar(self):
        return self.bar
    def addPluginToMenu(self, menu, action):
        self.menus.append((menu, action))
    def removePluginMenu(self, menu, action):
        self.menus.remove((menu, action))


def wait(condition, seconds=180):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    return condition()


def done(**report):
    print("RESULT " + json.dumps(report))
    sys.stdout.flush()
    os._exit(0)
"""


def run_gui(script, plugin_dir, work):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(work / "config"))
    out = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script), str(plugin_dir), str(work)],
                         env=env, capture_output=True, text=True, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads(line[len("RESULT "):])


def test_missing_torch_shows_a_message_bar_button_and_a_menu_entry(plugin_dir, tmp_path):
    report = run_gui("""
        plugin_module.torch_missing = lambda: True
        iface = FakeIface()
        plugin = dualsr.classFactory(iface)
        plugin.initGui()
        menus = [(m, a.text(), not a.icon().isNull()) for m, a in iface.menus]
        items = iface.bar.items()
        buttons = [b.text() for b in items[0].findChildren(QPushButton)] if items else []
        text = items[0].text() if items else ""
        [b for b in items[0].findChildren(QPushButton) if b.text() == "Install PyTorch"][0].click()
        from_button = plugin.dialog is not None and plugin.dialog.isVisible()
        summary = plugin.dialog.summary.text()
        plugin.dialog.close()
        plugin.dialog = None
        iface.menus[0][1].trigger()
        from_menu = plugin.dialog is not None and plugin.dialog.isVisible()
        plugin.unload()
        done(menus=menus, buttons=buttons, text=text, from_button=from_button, from_menu=from_menu,
             summary=summary, after_unload=[len(iface.menus), len(iface.bar.items())],
             provider=QgsApplication.processingRegistry().providerById("dualsr") is not None)
    """, plugin_dir, tmp_path)
    assert report["menus"] == [["&DualSR", "Install PyTorch...", True]]
    assert "Install PyTorch" in report["buttons"] and "PyTorch is not installed" in report["text"]
    assert report["from_button"] and report["from_menu"]
    assert "Packages: torch (CPU build)" in report["summary"]
    assert os.path.join("config", "profiles", "default", "python", "dualsr-packages", "python3.") in report["summary"]
    assert report["after_unload"] == [0, 0] and not report["provider"]


def test_with_torch_there_is_only_the_menu_entry(plugin_dir, tmp_path):
    pytest.importorskip("torch")
    report = run_gui("""
        iface = FakeIface()
        plugin = dualsr.classFactory(iface)
        plugin.initGui()
        done(menus=len(iface.menus), items=len(iface.bar.items()))
    """, plugin_dir, tmp_path)
    assert report == {"menus": 1, "items": 0}


def test_dialog_installs_with_a_live_log_and_needs_no_restart(plugin_dir, tmp_path):
    wheel = make_wheel(tmp_path, "dualsr_probe", "1.0")
    report = run_gui(f"""
        from dualsr.installer.dialog import InstallDialog
        installed = []
        dialog = InstallDialog(QgsApplication.qgisSettingsDirPath(), requirements=[{str(wheel)!r}],
                               plan_options=dict(python=sys.executable, gpu=None, index_url=""),
                               check_modules=["dualsr_probe"], openvino=False)
        dialog.installed.connect(installed.append)
        dialog.show()
        dialog.install_button.click()
        running = dialog.running() and dialog.cancel_button.isEnabled() and not dialog.install_button.isEnabled()
        finished = wait(lambda: dialog.result is not None)
        import dualsr_probe  # in this process, without a restart
        buttons = [dialog.install_button.isEnabled(), dialog.cancel_button.isEnabled()]
        done(running=running, finished=finished, log=dialog.log.toPlainText(), installed=len(installed),
             module=dualsr_probe.__file__, buttons=buttons)
    """, plugin_dir, tmp_path)
    assert report["running"] and report["finished"]
    log = report["log"]
    assert "$ " in log and "Successfully installed dualsr-probe-1.0" in log
    assert "dualsr_probe 1.0 imports in a fresh process" in log
    assert "no restart of QGIS is needed" in log
    assert report["installed"] == 1
    assert report["module"].startswith(str(tmp_path / "config" / "profiles" / "default" / "python" / "dualsr-packages"))
    assert report["buttons"] == [True, False]


def test_dialog_cancel_kills_pip(plugin_dir, tmp_path):
    report = run_gui("""
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        connected, clients = threading.Event(), []
        def accept():
            while True:
                client, _ = server.accept()
                clients.append(client)
                connected.set()
        threading.Thread(target=accept, daemon=True).start()
        from dualsr.installer.dialog import InstallDialog
        url = "http://127.0.0.1:%d/simple" % server.getsockname()[1]
        dialog = InstallDialog(QgsApplication.qgisSettingsDirPath(), requirements=["dualsr-not-on-any-index"],
                               plan_options=dict(python=sys.executable, gpu=None, index_url=url),
                               check_modules=["x"], extra_pip_args=["--timeout", "120", "--retries", "0"],
                               openvino=False)
        dialog.show()
        dialog.install_button.click()
        reached = wait(connected.is_set, 120)
        process = dialog.thread.installer._process
        started = time.monotonic()
        dialog.cancel_button.click()
        finished = wait(lambda: dialog.result is not None, 60)
        done(reached=reached, finished=finished, seconds=time.monotonic() - started,
             pip_ended=process is not None and process.poll() is not None,
             cancelled=isinstance(dialog.result, core.InstallCancelled), log=dialog.log.toPlainText(),
             install_enabled=dialog.install_button.isEnabled())
    """, plugin_dir, tmp_path)
    assert report["reached"] and report["finished"] and report["pip_ended"] and report["cancelled"]
    assert report["seconds"] < 20
    assert "Cancelling: stopping pip" in report["log"] and "Cancelled:" in report["log"]
    assert report["install_enabled"]


def test_dialog_openvino_checkbox(plugin_dir, tmp_path):
    report = run_gui("""
        from dualsr.installer.dialog import InstallDialog
        sys.modules["openvino"] = None  # as if QGIS's Python had no openvino (find_spec then finds none)
        profile = QgsApplication.qgisSettingsDirPath()
        base = dict(python=sys.executable, platform="linux", machine="x86_64")
        def state(dialog):
            return dict(ticked=dialog.openvino.isChecked(), label=dialog.openvino.text(), summary=dialog.summary.text(),
                        build=dialog.variant.isEnabled(), install=dialog.install_button.isEnabled())
        first = InstallDialog(profile, plan_options=dict(base, gpu=None, have_torch=False), fast_int8="VNNI")
        no_gpu = state(first)
        avx2_only = state(InstallDialog(profile, plan_options=dict(base, gpu=None, have_torch=False), fast_int8=None))
        first.show()
        wait(lambda: False, 0.5)
        label = first.summary
        whole = label.height() >= label.heightForWidth(label.width())
        gpu = state(InstallDialog(profile, plan_options=dict(base, gpu=core.Gpu("RTX", "550.54", (12, 4)),
                                                             have_torch=False), fast_int8="VNNI"))
        later = InstallDialog(profile, plan_options=dict(base, gpu=None, have_torch=True), fast_int8="VNNI")
        alone = state(later)
        later.openvino.setChecked(False)
        untick = state(later)
        mac = InstallDialog(profile, plan_options=dict(base, gpu=None, have_torch=False, platform="darwin"),
                            fast_int8="VNNI")
        mac_default = state(mac)
        mac.openvino.setChecked(True)
        done(whole=whole, no_gpu=no_gpu, avx2_only=avx2_only, gpu=gpu, alone=alone, untick=untick,
             mac_default=mac_default, mac_ticked=state(mac))
    """, plugin_dir, tmp_path)
    no_gpu = report["no_gpu"]
    assert no_gpu["label"] == "Also install OpenVINO (int8 on CPUs, used where it measures faster; about 60 MB)"
    assert no_gpu["ticked"]
    assert not report["avx2_only"]["ticked"]  # int8 runs there, without the dot products that make it pay
    assert "Now: OpenVINO is not installed" in no_gpu["summary"]
    assert "Packages: torch (CPU build), openvino==2026.4.1 and" in no_gpu["summary"]
    assert "Size: about 260 MB to download, 980 MB on disk" in no_gpu["summary"]
    assert report["whole"], "the plan's last lines are cut off"
    assert not report["gpu"]["ticked"] and "Packages: torch (CUDA build) and" in report["gpu"]["summary"]
    # PyTorch already there: ticking OpenVINO installs it alone, and the build does not apply
    assert "Packages: openvino==2026.4.1 and" in report["alone"]["summary"] and not report["alone"]["build"]
    assert "Packages: torch (CPU build) and" in report["untick"]["summary"] and report["untick"]["build"]
    # no wheel for an Intel Mac: not ticked, and ticking it says why instead of letting pip fail
    assert not report["mac_default"]["ticked"] and report["mac_default"]["install"]
    assert "has no wheel" in report["mac_ticked"]["summary"] and not report["mac_ticked"]["install"]


def test_dialog_closes_with_close_esc_and_the_window_button_and_asks_during_an_install(plugin_dir, tmp_path):
    report = run_gui("""
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtTest import QTest
        from dualsr.installer.dialog import InstallDialog
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = "http://127.0.0.1:%d/simple" % server.getsockname()[1]  # accepts, never answers: pip waits
        def dialog():
            d = InstallDialog(QgsApplication.qgisSettingsDirPath(), requirements=["dualsr-not-on-any-index"],
                              plan_options=dict(python=sys.executable, gpu=None, index_url=url), check_modules=["x"],
                              openvino=False)
            d.show()
            wait(d.isVisible, 5)
            return d
        closed = {}
        d = dialog()
        d.close_button.click()
        closed["button"] = not d.isVisible()
        d = dialog()
        QTest.keyClick(d, Qt.Key.Key_Escape)
        closed["esc"] = not d.isVisible()
        d = dialog()
        d.close()  # what the window's close button sends
        closed["window"] = not d.isVisible()
        d = dialog()
        questions, answers = [], [False, True]
        d.ask = lambda question: questions.append(question) or answers.pop(0)
        d.install_button.click()
        wait(lambda: d.thread.installer._process is not None, 60)
        process = d.thread.installer._process
        d.close()
        kept = d.isVisible() and d.running()
        QTest.keyClick(d, Qt.Key.Key_Escape)
        done(closed=closed, kept=kept, questions=questions, visible=d.isVisible(), running=d.running(),
             pip_ended=process.poll() is not None)
    """, plugin_dir, tmp_path)
    assert report["closed"] == {"button": True, "esc": True, "window": True}
    assert report["kept"], "No must keep the install running and the dialog open"
    assert report["questions"] == ["PyTorch is being installed. Cancel the install and close?"] * 2
    assert not report["visible"] and not report["running"] and report["pip_ended"]


def test_unreachable_index_offers_pypi_build_and_the_summary_follows_the_install(plugin_dir, tmp_path):
    wheel = make_wheel(tmp_path, "dualsr_probe", "1.0")
    report = run_gui(f"""
        from dualsr.installer.dialog import InstallDialog
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        server.close()  # nothing listens: refused at once
        d = InstallDialog(QgsApplication.qgisSettingsDirPath(), plan_options=dict(python=sys.executable, gpu=None,
                          platform="linux", machine="x86_64", index_url="http://127.0.0.1:%d/whl/cpu" % port),
                          openvino=False)
        questions = []
        d.ask = lambda question: questions.append(question) or False
        d.install_button.click()
        wait(lambda: d.result is not None, 60)
        refused = dict(log=d.log.toPlainText(), questions=questions, summary=d.summary.text())
        from dualsr.installer import dialog as dialog_module
        looked_up = []
        now = dialog_module.current
        dialog_module.current = lambda target, module, label: looked_up.append(module) or now(target, module, label)
        probe = InstallDialog(QgsApplication.qgisSettingsDirPath(), requirements=[{str(wheel)!r}],
                              plan_options=dict(python=sys.executable, gpu=None, index_url=""),
                              check_modules=["dualsr_probe"], openvino=False)
        before = list(looked_up)
        probe.install_button.click()
        wait(lambda: probe.result is not None, 180)
        done(refused=refused, before=before, after=looked_up, log=probe.log.toPlainText())
    """, plugin_dir, tmp_path)
    refused = report["refused"]
    assert "cannot be reached" in refused["log"] and "Nothing was installed." in refused["log"]
    assert "$ " not in refused["log"], "pip ran"
    [question] = refused["questions"]
    assert question.endswith("Install PyPI's torch instead? It is the CUDA build (about 2,800 MB to download, "
                             "5,500 MB on disk).")
    assert "Packages: torch (CPU build)" in refused["summary"], "No keeps the build asked for"
    # after an install the summary looks again at what is installed, and the log says what was installed
    assert report["before"] == ["torch", "openvino"] and report["after"] == ["torch", "openvino"] * 2
    assert "Installed: dualsr-probe 1.0; 0 MB added to" in report["log"]
