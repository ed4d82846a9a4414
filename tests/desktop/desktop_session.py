"""Run inside QGIS desktop by tests/desktop/test_desktop.py (`qgis --code desktop_session.py`).

It opens the DualSR Coarse dialog as a user would, runs Coarse with processing.runAndLoadResults,
writes what QGIS loaded (layer name, renderer bands) to a JSON file, saves a screenshot of the main
window, opens the installer from the plugin's menu entry and closes it with Esc, Close and the
window's close event (recording the Python its plan names), and quits. The settings come from the
environment variable DUALSR_DESKTOP (JSON: input, output, report, screenshot). Not a test module:
pytest does not collect it.
"""
import json
import os
import traceback

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
import qgis.utils
from qgis.utils import iface

SETTINGS = json.loads(os.environ["DUALSR_DESKTOP"])
REPORT = {"steps": []}
OPEN = {}  # the dialog, kept alive while it is shown


def write_report():
    with open(SETTINGS["report"] + ".part", "w") as f:
        json.dump(REPORT, f, indent=1)
    os.replace(SETTINGS["report"] + ".part", SETTINGS["report"])


def quit_qgis():
    QgsProject.instance().setDirty(False)  # no "save the project?" question
    QgsApplication.exit(0)


def fail(step):
    REPORT["error"] = f"{step}: {traceback.format_exc()}"
    write_report()
    quit_qgis()


def open_dialog():
    try:
        import processing

        iface.mainWindow().setGeometry(0, 0, 1280, 800)  # the whole virtual screen (no window manager)
        REPORT["plugin_loaded"] = "dualsr" in qgis.utils.active_plugins
        REPORT["algorithm"] = QgsApplication.processingRegistry().algorithmById("dualsr:coarse") is not None
        dialog = processing.createAlgorithmDialog("dualsr:coarse", {"INPUT": SETTINGS["input"], "SCALE": "2"})
        dialog.show()  # not exec(): the session goes on while the dialog is open
        REPORT["dialog_title"] = dialog.windowTitle()
        OPEN["dialog"] = dialog
        REPORT["steps"].append("dialog")
        QTimer.singleShot(500, run_coarse)
    except Exception:
        fail("dialog")


def run_coarse():
    try:
        import processing

        OPEN.pop("dialog").close()
        result = processing.runAndLoadResults(
            "dualsr:coarse", {"INPUT": SETTINGS["input"], "SCALE": "2", "OUTPUT": SETTINGS["output"]})
        REPORT["result"] = {k: str(v) for k, v in result.items()}
        out = os.path.realpath(SETTINGS["output"])
        layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
                  if os.path.realpath(lyr.source().split("|")[0]) == out]
        REPORT["loaded_layers"] = len(layers)
        if layers:
            layer = layers[0]
            renderer = layer.renderer()
            REPORT["layer_name"] = layer.name()
            REPORT["renderer"] = renderer.type()
            if renderer.type() == "multibandcolor":
                REPORT["rgb"] = [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
            canvas = iface.mapCanvas()
            canvas.setDestinationCrs(layer.crs())
            canvas.setExtent(layer.extent())
            canvas.refresh()
        REPORT["steps"].append("coarse")
        QTimer.singleShot(1000, screenshot)
    except Exception:
        fail("coarse")


def screenshot():
    try:
        iface.mapCanvas().waitWhileRendering()
        QgsApplication.processEvents()
        REPORT["screenshot_saved"] = iface.mainWindow().grab().save(SETTINGS["screenshot"])
        REPORT["steps"].append("screenshot")
        QTimer.singleShot(200, installer)
    except Exception:
        fail("screenshot")


def installer():
    try:
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtTest import QTest

        plugin = qgis.utils.plugins["dualsr"]
        closed = {}
        for way in ("esc", "close button", "window close"):
            plugin.install_action.trigger()  # Plugins > DualSR > Install PyTorch...
            dialog = plugin.dialog
            QgsApplication.processEvents()
            shown = dialog.isVisible()
            if way == "esc":
                QTest.keyClick(dialog, Qt.Key.Key_Escape)
            elif way == "close button":
                dialog.close_button.click()
            else:
                dialog.close()  # what the title bar's close button sends
            QgsApplication.processEvents()
            closed[way] = shown and not dialog.isVisible()
        REPORT["installer_closed"] = closed
        REPORT["installer_python"] = dialog.plan.python if dialog.plan else dialog.summary.text()
        REPORT["steps"].append("installer")
        write_report()
    except Exception:
        fail("installer")
        return
    quit_qgis()


# --code runs before QGIS enters its event loop: the session starts from the loop.
QTimer.singleShot(1000, open_dialog)
