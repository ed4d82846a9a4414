"""The Qt front end of the PyTorch installer: what will be installed, a live pip log, Cancel.

OpenVINO (the int8 path) is a checkbox: with it ticked and PyTorch already there, OpenVINO is
installed alone, so the same dialog adds it later.

pip runs in a QThread; its lines reach the log through a queued signal, and Cancel kills pip
(and whatever it started). Close, Esc and the window's close button all close the dialog; while
pip runs they first ask whether to cancel the install. When the PyTorch index cannot be reached,
the dialog offers PyPI's build (naming it and its size) instead of letting pip fall back to it.
"""
from __future__ import annotations

import sys
import traceback

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QThread, pyqtSignal
from qgis.PyQt.QtGui import QFont
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
)

from . import core, paths


class InstallThread(QThread):
    """Runs an Installer; `line` carries pip's output, `done` the Result or the InstallError."""

    line = pyqtSignal(str)
    done = pyqtSignal(object)

    def __init__(self, installer_factory, parent=None):
        super().__init__(parent)
        self.installer = installer_factory(self.line.emit)

    def run(self):
        try:
            result = self.installer.run()
        except core.InstallError as exc:
            result = exc
        except Exception:  # a bug: show it in the log rather than losing it in the thread
            result = core.InstallError(traceback.format_exc())
        self.done.emit(result)

    def cancel(self):
        self.installer.cancel()


class InstallDialog(QDialog):
    """States the plan (packages, build, folder, sizes), then installs with a live log and Cancel."""

    installed = pyqtSignal(object)  # the Result, when the import check passed

    def __init__(self, profile_dir, parent=None, requirements=None, plan_options=None, check_modules=None,
                 extra_pip_args=(), openvino=None, fast_int8="detect"):
        """`openvino` None ticks OpenVINO when no NVIDIA GPU is found (int8 is for CPUs), the CPU has
        the int8 dot products that can make int8 faster than fp32 (`fast_int8`: 'VNNI', 'AMX' or
        None; "detect" reads them; PRECISION auto keeps int8 only where it times faster), it is not
        installed yet and it has a wheel for this platform."""
        super().__init__(parent)
        self.setWindowTitle("DualSR: install PyTorch")
        self.profile_dir = profile_dir
        self.requirements = requirements
        self.plan_options = dict(plan_options or {})
        self.plan_options.setdefault("qgis_prefix", QgsApplication.prefixPath())
        self.check_modules = check_modules
        self.extra_pip_args = extra_pip_args
        self.thread = None
        self.plan = None
        self.result = None

        self.variant = QComboBox()
        self.variant.addItem("CPU build (works everywhere)", "cpu")
        self.variant.addItem("CUDA build (NVIDIA GPU)", "cuda")
        if self.plan_options.get("gpu", "detect") == "detect":  # once, not at each change of the plan
            self.plan_options["gpu"] = core.detect_nvidia_gpu()
        platform = self.plan_options.get("platform") or sys.platform
        machine = self.plan_options.get("machine") or core.host_machine()
        if fast_int8 == "detect":
            fast_int8 = core.cpu_fast_int8()
        if openvino is None:
            openvino = bool(self.plan_options["gpu"] is None and fast_int8 and _find_spec("openvino") is None
                            and core.openvino_wheel(platform, machine, sys.version_info))
        self.openvino = QCheckBox("Also install OpenVINO (int8 on CPUs, used where it measures faster; "
                                  "about {} MB)".format(core.OPENVINO_SIZES_MB[core._platform_key(platform)][0]))
        self.openvino.setChecked(openvino)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        # never shorter than its text: with the default policy the layout cut the wrapped plan's last lines
        self.summary.setSizePolicy(_policy("Preferred"), _policy("Minimum"))
        self.summary.setTextInteractionFlags(self.summary.textInteractionFlags() | _selectable())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFont("monospace"))
        self.log.setMinimumSize(720, 260)
        self.log.setPlaceholderText("Install runs pip with the options above; its output appears here.")
        self.install_button = QPushButton("Install")
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.cancel_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Build:"))
        buttons.addWidget(self.variant)
        buttons.addStretch(1)
        for button in (self.install_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.openvino)
        layout.addWidget(self.log, 1)
        layout.addLayout(buttons)

        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self.make_plan(self.plan_options.pop("variant", "auto"))
        self.variant.currentIndexChanged.connect(lambda _: self.make_plan(self.variant.currentData()))
        self.openvino.toggled.connect(lambda _: self.make_plan(self.variant.currentData()))

    def make_plan(self, variant: str, **options) -> None:
        try:
            self.plan = core.make_plan(profile_dir=self.profile_dir, requirements=self.requirements, variant=variant,
                                       openvino=self.openvino.isChecked(), **{**self.plan_options, **options})
        except core.InstallError as exc:
            self.plan = None
            self.summary.setText(str(exc))
            self.install_button.setEnabled(False)
            return
        self.variant.blockSignals(True)
        self.variant.setCurrentIndex(self.variant.findData(self.plan.variant))
        self.variant.blockSignals(False)
        self.variant.setEnabled(self.plan.installs("torch"))
        self.summary.setText(f"{current(self.plan.target, 'torch', 'PyTorch')}\n"
                             f"{current(self.plan.target, 'openvino', 'OpenVINO')}\n\n{self.plan.describe()}")
        self.install_button.setEnabled(True)

    def start(self) -> None:
        if self.plan is None or self.running():
            return
        self.log.clear()
        self.result = None
        plan = self.plan
        self.thread = InstallThread(lambda log: core.Installer(plan, log=log, check_modules=self.check_modules,
                                                               extra_pip_args=self.extra_pip_args), self)
        self.thread.line.connect(self.log.appendPlainText)
        self.thread.done.connect(self.finish)
        self.install_button.setEnabled(False)
        self.variant.setEnabled(False)
        self.openvino.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.thread.start()

    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def cancel(self) -> None:
        if self.running():
            self.cancel_button.setEnabled(False)
            self.log.appendPlainText("Cancelling: stopping pip...")
            self.thread.cancel()

    def finish(self, result) -> None:
        self.result = result
        self.cancel_button.setEnabled(False)
        self.install_button.setEnabled(True)
        self.variant.setEnabled(self.plan.installs("torch"))
        self.openvino.setEnabled(True)
        if isinstance(result, core.IndexUnreachable):
            self.log.appendPlainText(str(result))
            self.offer_pypi(str(result))
            return
        if isinstance(result, core.InstallError):
            self.log.appendPlainText(str(result))
            return
        self.make_plan(self.variant.currentData())  # the summary's "Now:" lines say what is there now
        if not result.ok:
            self.log.appendPlainText("The packages were installed but the import check failed (see above).")
            return
        modules = list(result.modules)
        stale = [m for m in modules if core.restart_needed(result.target, m)]
        if stale:
            self.log.appendPlainText(f"Installed. Restart QGIS so that the plugin uses {' and '.join(stale)} from "
                                     f"{result.target}.")
        else:
            paths.activate(result.target)
            self.log.appendPlainText(f"Installed. {' and '.join(modules)} {'is' if len(modules) == 1 else 'are'} "
                                     "ready: no restart of QGIS is needed.")
        self.installed.emit(result)

    def offer_pypi(self, problem: str) -> None:
        """Ask whether to install PyPI's torch (its build and size said) instead; install it on yes."""
        asked = self.plan.variant
        self.make_plan("auto", index_url="")
        if self.plan is None:  # PyPI has no build for this platform: the summary says why
            return
        pypi = self.plan
        if self.ask(f"{problem}\n\nInstall PyPI's torch instead? It is the {core.BUILD_NAMES[pypi.variant]} "
                    f"({pypi.size()})."):
            self.start()
        else:
            self.log.appendPlainText("Nothing was installed.")
            self.make_plan(asked)

    def ask(self, question: str) -> bool:
        """A Yes/No question over the dialog (tests replace it)."""
        yes, no = _standard_buttons()
        return QMessageBox.question(self, "DualSR: install PyTorch", question, yes | no, no) == yes

    def stop(self) -> None:
        """Cancel a running install and wait for pip to end (the plugin unloading: nobody to ask)."""
        if self.running():
            self.cancel()
            self.thread.wait(20000)

    def reject(self):
        """Close, Esc and the window's close button (through QDialog.closeEvent) all end here."""
        if self.running():
            if not self.ask("PyTorch is being installed. Cancel the install and close?"):
                return
            self.stop()
        super().reject()


def current(target, module: str, label: str) -> str:
    """Where this QGIS finds `module` now, without importing it."""
    spec = _find_spec(module)
    if spec is None or not spec.origin:
        return f"Now: {label} is not installed in the Python that runs QGIS."
    if core._inside(spec.origin, target):
        return f"Now: {label} is installed in the folder below; installing it again replaces it ({spec.origin})."
    return f"Now: {label} is already installed in QGIS's own Python ({spec.origin}); it needs no installing."


def _find_spec(module: str):
    import importlib.util

    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def _policy(name: str):
    try:
        return getattr(QSizePolicy.Policy, name)
    except AttributeError:  # PyQt5 before scoped enums
        return getattr(QSizePolicy, name)


def _standard_buttons():
    try:
        return QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    except AttributeError:  # PyQt5 before scoped enums
        return QMessageBox.Yes, QMessageBox.No


def _selectable():
    from qgis.PyQt.QtCore import Qt

    try:
        return Qt.TextInteractionFlag.TextSelectableByMouse
    except AttributeError:  # PyQt5 before scoped enums
        return Qt.TextSelectableByMouse
