"""Real pip runs into temporary targets: a small package from PyPI, numpy never installed or upgraded, cancel.

The Python that runs QGIS is this test's Python (it imports qgis.core). tomli-w is not installed
in it (checked below), so finding it proves it came from the plugin's folder.
"""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from installer import core, paths

from ..conftest import ROOT

SMALL = "tomli-w"  # pure Python, 8 kB, no dependencies


def make_wheel(folder, name, version, requires=(), code="", files=None):
    """A minimal pure-Python wheel whose METADATA lists `requires`; `code` goes into its __init__.py,
    `files` ({path: text}) beside it."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"__version__ = '{version}'\n{code}", **(files or {}),
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name_, text in files.items():
            wheel.writestr(name_, text)
    return path


def installer_for(target, requirements, log, **kwargs):
    plan = core.make_plan(target=target, requirements=requirements, python=sys.executable, gpu=None, index_url="")
    return core.Installer(plan, log=log, **kwargs)


def qgis_python_env(config_root):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(config_root))
    return env


FRESH_QGIS = r"""
import importlib.util, json, sys
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, sys.argv[1])
before = importlib.util.find_spec(sys.argv[2]) is not None
import dualsr
plugin = dualsr.classFactory(None)   # what QGIS desktop and qgis_process call first
plugin.initProcessing()              # qgis_process calls only this one
module = __import__(sys.argv[2])
import numpy
print("RESULT " + json.dumps({"before": before, "file": module.__file__, "numpy": numpy.__file__,
                              "profile": QgsApplication.qgisSettingsDirPath(), "sys_path": sys.path}))
plugin.unload()
app.exitQgis()
"""


def run_fresh_qgis(plugin_dir, config_root, module):
    out = subprocess.run([sys.executable, "-c", FRESH_QGIS, str(plugin_dir), module],
                         env=qgis_python_env(config_root), capture_output=True, text=True, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, out.stdout + out.stderr
    return json.loads(line[len("RESULT "):])


@pytest.mark.qgis
def test_shell_command_installs_from_pypi_and_a_fresh_qgis_process_imports_it(tmp_path, plugin_dir):
    assert importlib.util.find_spec("tomli_w") is None, "the test needs a package QGIS's Python lacks"
    config_root = tmp_path / "config"
    profile = config_root / "profiles" / "default"
    run = subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--profile", str(profile),
                          "--no-pytorch-index", "--yes", SMALL], capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert run.returncode == 0, run.stdout + run.stderr
    target = paths.packages_dir(profile)
    assert (target / "tomli_w" / "__init__.py").is_file()
    (info,) = target.glob("tomli_w-*.dist-info")  # whichever version PyPI serves today
    version = info.name[len("tomli_w-"):-len(".dist-info")]
    assert f"tomli_w {version} imports in a fresh process from {target}" in run.stdout, run.stdout
    assert not list(target.parent.glob(".*partial*")), "the staging folder is left behind"

    seen = run_fresh_qgis(plugin_dir, config_root, "tomli_w")
    assert seen["profile"].rstrip("/") == str(profile)
    assert not seen["before"], "found before classFactory: the test proves nothing"
    assert seen["file"].startswith(str(target))
    # appended: every site-packages/dist-packages folder of QGIS's Python comes before it
    where = seen["sys_path"].index(str(target))
    site = [i for i, p in enumerate(seen["sys_path"]) if p.endswith(("site-packages", "dist-packages"))]
    assert site and max(site) < where
    assert not seen["numpy"].startswith(str(target))


def test_numpy_is_never_installed_into_the_target(tmp_path):
    """A package needing numpy: pip resolves against QGIS's numpy, and no numpy copy lands in the target."""
    import numpy

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels, "dualsr_probe", "1.0", ["numpy"])
    target = tmp_path / "target"
    log = []
    result = installer_for(target, [str(wheel)], log.append, check_modules=["dualsr_probe"]).run()
    assert result.ok, "\n".join(log)
    assert (target / "dualsr_probe" / "__init__.py").is_file()
    assert not any(p.name.lower().startswith("numpy") for p in target.iterdir()), sorted(os.listdir(target))
    assert result.kept == {"numpy": numpy.__version__}
    assert f"Not installed: numpy {numpy.__version__}, QGIS already has numpy {numpy.__version__}" in log
    assert any(line.startswith(f"numpy {numpy.__version__} is still QGIS's") for line in log)


def test_a_package_that_needs_another_numpy_is_refused_and_nothing_changes(tmp_path):
    """numpy>=2 against QGIS's numpy 1.x: pip must fail rather than upgrade or shadow numpy."""
    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        pytest.skip("QGIS's numpy is already 2.x here")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels, "dualsr_probe", "2.0", ["numpy>=2"])
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("earlier install")
    log = []
    with pytest.raises(core.InstallError, match=r"pip failed .*") as caught:
        installer_for(target, [str(wheel)], log.append, check_modules=["dualsr_probe"]).run()
    assert "numpy" in "\n".join(log) + str(caught.value)
    assert sorted(os.listdir(target)) == ["keep.txt"]
    # no staging folder, no constraints file: only the (empty) lock file of the folder
    assert sorted(os.listdir(tmp_path)) == [".target.lock", "target", "wheels"]


SYSTEM_PYTHON = "/usr/bin/python3"


def test_openvino_keeps_qgis_numpy_and_must_list_a_cpu_device(tmp_path):
    """A stand-in openvino with the real one's numpy requirement, installed with a Python that lacks openvino."""
    probe = "import importlib.util as u, numpy; print(u.find_spec('openvino') is None, numpy.__version__)"
    has = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True) \
        if os.path.exists(SYSTEM_PYTHON) else None
    if has is None or has.returncode != 0 or not has.stdout.startswith("True"):
        pytest.skip(f"needs {SYSTEM_PYTHON} with numpy and without openvino")
    numpy_version = has.stdout.split()[1]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    target = tmp_path / "target"
    requires = ["numpy<2.6.0,>=1.16.6"]  # openvino 2026.4.1's
    good = make_wheel(wheels, "openvino", "2026.4.1", requires, "class Core:\n    available_devices = ['CPU']\n")
    log = []
    plan = core.make_plan(target=target, requirements=[str(good)], python=SYSTEM_PYTHON, gpu=None, index_url="",
                          runs_qgis=core.probe_python(SYSTEM_PYTHON))
    result = core.Installer(plan, log=log.append).run()
    assert result.ok, "\n".join(log)
    assert result.modules["openvino"]["devices"] == ["CPU"]
    assert result.kept == {"numpy": numpy_version}
    assert not any(p.name.lower().startswith("numpy") for p in target.iterdir()), sorted(os.listdir(target))

    broken = make_wheel(wheels, "openvino", "2026.4.2", requires, "class Core:\n    available_devices = []\n")
    plan = core.make_plan(target=target, requirements=[str(broken)], python=SYSTEM_PYTHON, gpu=None, index_url="",
                          runs_qgis=core.probe_python(SYSTEM_PYTHON))
    result = core.Installer(plan, log=lambda _: None).run()
    assert not result.ok
    assert "openvino does not import in a fresh process: RuntimeError: OpenVINO lists no CPU device" in result.summary()


@pytest.mark.parametrize("answer", ["NO_FILE", "ACCEPTED", "DECLINED"])
def test_the_import_check_counts_no_telemetry_answer_as_no(tmp_path, answer):
    """Importing the real openvino sends usage telemetry when its consent check says NO_FILE (the
    user never answered); the installer's check in a fresh Python turns that into DECLINED and
    leaves a real answer alone. Stand-ins report the decision their import saw."""
    probe = "import importlib.util as u; print(u.find_spec('openvino') is None)"
    if not os.path.exists(SYSTEM_PYTHON) or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True,
                                                           text=True).stdout.strip() != "True":
        pytest.skip(f"needs {SYSTEM_PYTHON} without openvino")
    checker = tmp_path / "openvino_telemetry" / "utils"
    checker.mkdir(parents=True)
    for folder in (checker.parent, checker):
        (folder / "__init__.py").write_text("")
    (checker / "opt_in_checker.py").write_text(
        "import enum\n"
        "ConsentCheckResult = enum.Enum('ConsentCheckResult', 'ACCEPTED DECLINED NO_FILE')\n"
        "class OptInChecker:\n"
        "    def check(self, enable_opt_in_dialog, disable_in_ci=False):\n"
        f"        return ConsentCheckResult.{answer}\n")
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "__init__.py").write_text(
        "from openvino_telemetry.utils.opt_in_checker import OptInChecker\n"
        "__version__ = OptInChecker().check(False).name\n"
        "class Core:\n    available_devices = ['CPU']\n")
    out = subprocess.run([SYSTEM_PYTHON, "-c", core._VERIFY, str(tmp_path), "openvino"], capture_output=True, text=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("DUALSR-VERIFY "))
    seen = json.loads(line.split(" ", 1)[1])["openvino"]["version"]
    assert seen == {"NO_FILE": "DECLINED"}.get(answer, answer)


def test_already_in_qgis_python_is_refused(tmp_path):
    with pytest.raises(core.InstallError, match=r"numpy .* is already installed in QGIS's Python"):
        installer_for(tmp_path / "t", ["numpy"], print).run()


def test_upgrade_replaces_the_earlier_version(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    target = tmp_path / "target"
    for version in ("1.0", "1.1"):
        wheel = make_wheel(wheels, "dualsr_probe", version)
        result = installer_for(target, [str(wheel)], lambda _: None, check_modules=["dualsr_probe"]).run()
        assert result.ok
    assert sorted(p.name for p in target.iterdir() if p.name.endswith(".dist-info")) == ["dualsr_probe-1.1.dist-info"]
    assert "1.1" in (target / "dualsr_probe" / "__init__.py").read_text()


class SilentIndex:
    """A package index that accepts connections and never answers: pip hangs until cancelled."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/simple"
        self.connected = threading.Event()
        self.clients = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.clients.append(client)
            self.connected.set()

    def close(self):
        for client in self.clients:
            client.close()
        self.server.close()


@pytest.fixture
def silent_index():
    index = SilentIndex()
    yield index
    index.close()


def test_cancel_kills_pip_and_leaves_the_target_as_it_was(tmp_path, silent_index):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("earlier install")
    plan = core.make_plan(target=target, requirements=["dualsr-not-on-any-index"], python=sys.executable, gpu=None,
                          index_url=silent_index.url)
    installer = core.Installer(plan, log=lambda _: None, extra_pip_args=["--timeout", "120", "--retries", "0"])
    outcome = {}

    def run():
        try:
            installer.run()
        except core.InstallError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert silent_index.connected.wait(120), "pip never reached the index"
    process = installer._process
    assert process is not None and process.poll() is None
    started = time.monotonic()
    installer.cancel()
    worker.join(60)
    assert not worker.is_alive()
    assert time.monotonic() - started < 20
    assert process.poll() is not None
    assert isinstance(outcome.get("error"), core.InstallCancelled)
    assert sorted(os.listdir(target)) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == [".target.lock", "target"]


def test_a_second_install_into_the_same_folder_waits_for_the_first(tmp_path):
    target = tmp_path / "target"
    with core.FolderLock(target):
        with pytest.raises(core.InstallError, match="Another install into .* is running"):
            installer_for(target, [SMALL], lambda _: None).run()
    assert not target.exists()


@pytest.fixture
def closed_port_url():
    """An index URL on a port where nothing listens (the connection is refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/whl/cpu"


@pytest.mark.parametrize("index", ["refused", "silent"])
def test_an_unreachable_pytorch_index_is_said_within_seconds_and_pip_never_runs(tmp_path, index, closed_port_url,
                                                                                 silent_index):
    """A firewall that refuses, or a proxy that never answers: pip would retry for minutes, then install
    PyPI's build. The index is checked once instead, and nothing else happens."""
    url = closed_port_url if index == "refused" else silent_index.url
    target = tmp_path / "target"
    plan = core.make_plan(target=target, python=sys.executable, gpu=None, variant="cpu", index_url=url)
    log = []
    started = time.monotonic()
    with pytest.raises(core.IndexUnreachable, match=rf"^The PyTorch index {url} cannot be reached \(.+\); nothing "
                       r"was installed\.$"):
        core.Installer(plan, log=log.append).run()
    assert time.monotonic() - started < core.INDEX_TIMEOUT_S + 5
    assert not any(line.startswith("$ ") for line in log), "pip ran"
    assert not target.exists()


def fake_torch(folder, version, cuda):
    """A wheel named torch whose torch/version.py names its CUDA version (None: the CPU build)."""
    return make_wheel(folder, "torch", version, files={"torch/version.py": f"__version__ = '{version}'\ncuda = "
                                                       f"{cuda!r}\n"})


@pytest.fixture
def python_without_torch():
    """The installer refuses to install what QGIS's Python has: this test's Python has torch, /usr/bin/python3 not."""
    has = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True) \
        if os.path.exists(SYSTEM_PYTHON) else None
    if has is None or has.returncode == 0:
        pytest.skip(f"needs {SYSTEM_PYTHON} without torch")
    return SYSTEM_PYTHON


@pytest.mark.parametrize("cuda, installed", [("12.8", False), (None, True)])
def test_the_cuda_build_is_never_installed_where_the_cpu_build_was_asked(tmp_path, python_without_torch, cuda,
                                                                         installed, monkeypatch):
    """The CPU index reachable (a local folder) but pip taking torch from elsewhere, as it took PyPI's CUDA
    build when download.pytorch.org could not be reached: refused, nothing installed."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # only the folders below, not this machine's wheelhouse
    for name in [k for k in os.environ if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(name)
    cpu_index, elsewhere = tmp_path / "cpu-index", tmp_path / "pypi"
    cpu_index.mkdir()
    elsewhere.mkdir()
    version = "9.0.0" if cuda else "9.0.0+cpu"
    fake_torch(elsewhere, version, cuda)
    target = tmp_path / "target"
    plan = core.make_plan(target=target, python=python_without_torch, runs_qgis=core.probe_python(python_without_torch),
                          gpu=None, variant="cpu", index_url=cpu_index.as_uri())
    assert plan.variant == "cpu" and plan.index_url == cpu_index.as_uri()
    installer = core.Installer(plan, log=lambda _: None, check_modules=["torch.version"],
                               extra_pip_args=["--no-index", "--find-links", str(elsewhere)])
    if installed:
        result = installer.run()
        assert result.summary().startswith(f"Installed: torch 9.0.0+cpu (CPU build); 0 MB added to {target}")
        assert (target / "torch" / "version.py").is_file()
        return
    with pytest.raises(core.InstallError, match=r"^pip chose torch 9\.0\.0, a CUDA build \(0 MB\), where the CPU "
                       rf"build was asked \(from {cpu_index.as_uri()}\); nothing was installed\.$"):
        installer.run()
    assert not list(tmp_path.glob("target/torch*")) and not list(tmp_path.glob(".target.partial"))


def test_debian_versions_that_say_nothing_are_not_shown(tmp_path):
    """Debian's mpmath reports 0.0.0: the log says QGIS has its own copy, not "mpmath 0.0.0"."""
    staging = tmp_path / "staging"
    zipfile.ZipFile(make_wheel(tmp_path, "mpmath", "1.3.0")).extractall(staging)
    log = []
    installer = core.Installer(core.make_plan(target=tmp_path / "t", python=sys.executable, gpu=None, index_url=""),
                               log=log.append)
    installer.remove_copies(staging, {"mpmath": ("0.0.0", "/usr/lib/python3/dist-packages")})
    assert log == ["Not installed: mpmath 1.3.0, QGIS already has its own mpmath"]
