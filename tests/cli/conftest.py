"""qgis_process as a shell user runs it: a fresh profile with the plugin enabled."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")


def torch_site_packages() -> str:
    torch = pytest.importorskip("torch")
    return str(Path(torch.__file__).resolve().parents[1])


def qgis_process(env, *args, timeout=300):
    """Run qgis_process with `args` and return the finished process (exit status, stdout, stderr)."""
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def failed_with(result, message: str) -> str:
    """Assert a non-zero exit and `message` in stderr without a traceback; return stderr."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def qgis_env(plugin_dir, tmp_path_factory):
    if QGIS_PROCESS is None:
        pytest.skip("qgis_process is not installed")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(plugin_dir),
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path_factory.mktemp("profile")), PYTHONPATH=torch_site_packages())
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "dualsr"], env=env, capture_output=True, text=True)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return env
