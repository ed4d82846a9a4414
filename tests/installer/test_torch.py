"""The real thing (slow): torch==2.13.0 installed by the shell command into a profile, then used by qgis_process.

QGIS's Python here is the system /usr/bin/python3, which has no torch: qgis_process (run without
PYTHONPATH) can only find torch in the plugin's folder of the profile.
"""
import os
import shutil
import subprocess

import pytest

from installer import paths

from ..conftest import ROOT, smooth_cube

pytestmark = [pytest.mark.slow, pytest.mark.qgis]
SYSTEM_PYTHON = "/usr/bin/python3"
QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def system_python():
    if QGIS_PROCESS is None or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs qgis_process and QGIS's system Python")
    has_torch = subprocess.run([SYSTEM_PYTHON, "-c", "import torch"], capture_output=True, env=clean_env())
    if has_torch.returncode == 0:
        pytest.skip("the system Python already has torch: the test would not show where torch comes from")
    return SYSTEM_PYTHON


def test_torch_installed_into_the_profile_runs_coarse_in_qgis_process(system_python, tmp_path, plugin_dir,
                                                                       make_raster, tiny_weights):
    config_root = tmp_path / "config"
    profile = config_root / "profiles" / "default"
    install = subprocess.run([system_python, str(ROOT / "installer" / "install.py"), "--profile", str(profile),
                              "--no-pytorch-index", "--yes", "torch==2.13.0"], capture_output=True, text=True,
                             timeout=1800, env=clean_env())
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    target = paths.packages_dir(profile)
    assert f"torch 2.13.0+cpu imports in a fresh process from {target}" in install.stdout
    assert not (target / "numpy").exists() and not list(target.glob("numpy-*"))
    assert not (target / "sympy").exists()  # QGIS's older sympy is kept, not shadowed
    assert (target / "typing_extensions.py").exists()  # a dependency QGIS lacks is installed
    if "QGIS already has sympy 1.11" in install.stdout:  # Debian 12
        assert "Note: torch asks for sympy>=1.13.3 but QGIS's sympy 1.11.1 comes first" in install.stdout

    env = clean_env(QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(plugin_dir),
                    QGIS_CUSTOM_CONFIG_PATH=str(config_root))
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "dualsr"], env=env, capture_output=True, text=True)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    src = make_raster(smooth_cube(6, 12, 10), wavelengths_nm=[500 + 7 * b for b in range(6)])
    out = tmp_path / "sr.tif"
    run = subprocess.run([QGIS_PROCESS, "run", "dualsr:coarse", "--", f"INPUT={src}", "SCALE=2",
                          f"WEIGHTS={tiny_weights[2]}", "PRECISION=fp32", f"OUTPUT={out}"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"OUTPUT:\t{out}" in run.stdout and out.is_file()
