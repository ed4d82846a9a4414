"""QGIS desktop in a real (virtual) window: the plugin enabled in a fresh profile, the Coarse dialog
opened, Coarse run with processing.runAndLoadResults on a window of the EnMAP sample, the loaded layer's
name and true-colour bands checked. A screenshot of the main window is saved as
build/desktop/coarse-qgis-<version>.png for people to look at.

Runs when xvfb-run and the `qgis` program are installed (scripts/setup.sh installs both); QGIS desktop
aborts on QT_QPA_PLATFORM=offscreen, so it gets an X server of its own."""
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ..conftest import ROOT

XVFB_RUN = shutil.which("xvfb-run")
QGIS = shutil.which("qgis")
pytestmark = [pytest.mark.qgis,
              pytest.mark.skipif(XVFB_RUN is None or QGIS is None, reason="needs xvfb-run and QGIS desktop")]
SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"
SESSION = Path(__file__).with_name("desktop_session.py")
TIMEOUT_S = 600


def nearest_good_bands(path, targets_nm=(640.0, 550.0, 470.0)):
    """1-based bands with bbl = 1 whose wavelength is nearest each target (ties: the lower band)."""
    ds = gdal.Open(str(path))
    bands = []
    for b in range(1, ds.RasterCount + 1):
        meta = ds.GetRasterBand(b).GetMetadata()
        if meta.get("bbl", "1") != "0" and "wavelength" in meta:
            bands.append((b, float(meta["wavelength"])))
    return [min(bands, key=lambda bw: (abs(bw[1] - t), bw[0]))[0] for t in targets_nm]


def run_desktop(tmp_path, plugin_dir, settings):
    profiles = tmp_path / "profiles"
    ini = profiles / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\ndualsr=true\n")  # the plugin enabled, as the plugin manager leaves it
    torch = pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH")}
    # A python3 first on PATH that is not QGIS's (a pyenv shim): the installer must not take it.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "python3").write_text("#!/bin/sh\nexec /usr/bin/python3 -I -c 'print(3, 11); print(\"/opt/pyenv\")'\n")
    (shim / "python3").chmod(0o755)
    env.update(QGIS_PLUGINPATH=str(plugin_dir), PYTHONPATH=str(Path(torch.__file__).resolve().parents[1]),
               DUALSR_DESKTOP=json.dumps(settings), PATH=f"{shim}{os.pathsep}{env['PATH']}")
    command = [XVFB_RUN, "-a", "-s", "-screen 0 1280x800x24", QGIS, "--profiles-path", str(profiles),
               "--nologo", "--noversioncheck", "--code", str(SESSION)]
    # A session of its own, so that xvfb-run, Xvfb and QGIS are killed together if it hangs.
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        log, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        pytest.fail(f"QGIS desktop did not finish within {TIMEOUT_S} s:\n{log[-3000:]}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the session (Xvfb, a stuck QGIS)
        except ProcessLookupError:
            pass
    report = Path(settings["report"])
    assert report.exists(), f"QGIS wrote no report (exit code {process.returncode}):\n{log[-3000:]}"
    return json.loads(report.read_text()), log


def test_coarse_from_the_desktop_loads_a_named_true_colour_layer(tmp_path, plugin_dir):
    if not SAMPLE.exists():
        pytest.skip("sample/enmap_potsdam.tif is not in this checkout")
    # A 16 x 16 window of the sample, all 224 bands, under the sample's name (2 shared cores: the whole
    # 64 x 64 block takes minutes).
    source = tmp_path / "enmap_potsdam.tif"
    gdal.Translate(str(source), str(SAMPLE), srcWin=[24, 24, 16, 16])
    version = re.match(r"\d+\.\d+", __import__("qgis.core").core.Qgis.QGIS_VERSION).group(0)
    shots = ROOT / "build" / "desktop"
    shots.mkdir(parents=True, exist_ok=True)
    settings = {"input": str(source), "output": str(tmp_path / "enmap_potsdam_x2.tif"),
                "report": str(tmp_path / "report.json"), "screenshot": str(tmp_path / "coarse.png")}
    report, log = run_desktop(tmp_path, plugin_dir, settings)
    if Path(settings["screenshot"]).exists():
        shutil.copyfile(settings["screenshot"], shots / f"coarse-qgis-{version}.png")

    assert "error" not in report, report["error"]
    assert report["steps"] == ["dialog", "coarse", "screenshot", "installer"], report
    assert report["installer_closed"] == {"esc": True, "close button": True, "window close": True}
    assert "shim" not in report["installer_python"] and os.path.isfile(report["installer_python"]), report
    assert report["plugin_loaded"] and report["algorithm"]
    assert report["dialog_title"].endswith("DualSR Coarse")  # 3.40 puts the group name before it
    assert report["result"]["OUTPUT"] == settings["output"]
    assert gdal.Open(settings["output"]).RasterXSize == 32
    assert report["loaded_layers"] == 1
    assert report["layer_name"] == "enmap_potsdam x2 (Coarse)"
    assert report["renderer"] == "multibandcolor"
    assert report["rgb"] == nearest_good_bands(source)
    assert report["rgb"] != [1, 2, 3]

    # The screenshot shows something: a window-sized picture with more than a few colours.
    from PIL import Image

    picture = np.asarray(Image.open(settings["screenshot"]).convert("RGB"))
    assert picture.shape[0] > 400 and picture.shape[1] > 600
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50
