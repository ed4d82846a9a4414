"""The real thing (slow): torch==2.13.0 and openvino==2026.4.1 installed together by the shell command into a profile.

QGIS's Python here is the system /usr/bin/python3, which has neither: a fresh process can only find
them in the plugin's folder of the profile, and there it converts a torch module with OpenVINO and
runs it on the CPU, as the int8 path does.
"""
import os
import subprocess

import pytest

from installer import paths

from ..conftest import ROOT

pytestmark = pytest.mark.slow
SYSTEM_PYTHON = "/usr/bin/python3"

# Traced without torch's trace check, which the int8 path must do too: the check imports
# torch.distributed, which needs sympy>=1.13, and QGIS's own sympy (Debian 12: 1.11) comes first on
# sys.path (`openvino.convert_model(module, example_input=...)` traces with the check and fails there).
CONVERT = r"""
import sys
sys.path.append(sys.argv[1])
import numpy, openvino, torch
x = torch.ones(1, 1, 4, 4)
traced = torch.jit.trace(torch.nn.Conv2d(1, 1, 3, bias=False).eval(), x, check_trace=False)
model = openvino.convert_model(traced, example_input=x)
out = openvino.Core().compile_model(model, "CPU")(numpy.ones((1, 1, 4, 4), numpy.float32))[0]
print("RESULT", "x".join(map(str, out.shape)), numpy.__file__, openvino.__file__, torch.__file__)
"""


def clean_env():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def system_python():
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs QGIS's system Python")
    probe = "import importlib.util as u; print(u.find_spec('torch') is None and u.find_spec('openvino') is None)"
    lacks = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, env=clean_env())
    if lacks.stdout.strip() != "True":
        pytest.skip("the system Python already has torch or openvino: the test would not show where they come from")
    return SYSTEM_PYTHON


def test_openvino_with_torch_into_the_profile_then_alone(system_python, tmp_path):
    profile = tmp_path / "config" / "profiles" / "default"
    install = subprocess.run([system_python, str(ROOT / "installer" / "install.py"), "--profile", str(profile),
                              "--no-pytorch-index", "--yes", "--openvino", "torch==2.13.0"], capture_output=True,
                             text=True, timeout=1800, env=clean_env())
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    target = paths.packages_dir(profile)
    assert "Packages: torch==2.13.0 (CPU build), openvino==2026.4.1 and" in install.stdout
    assert f"torch 2.13.0+cpu imports in a fresh process from {target}" in install.stdout
    assert any(x.startswith("openvino 2026.4.1-") and f" imports in a fresh process from {target}" in x
               for x in install.stdout.splitlines()), install.stdout[-3000:]
    assert not (target / "numpy").exists() and not list(target.glob("numpy-*"))  # QGIS's numpy is kept
    assert (target / "openvino_telemetry").is_dir()  # a dependency QGIS lacks is installed

    run = subprocess.run([system_python, "-c", CONVERT, str(target)], capture_output=True, text=True, timeout=600,
                         env=clean_env())
    line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, run.stdout[-3000:] + run.stderr[-3000:]
    shape, numpy_file, openvino_file, torch_file = line.split(" ")[1:]
    assert shape == "1x1x2x2"
    assert not numpy_file.startswith(str(target))
    assert openvino_file.startswith(str(target)) and torch_file.startswith(str(target))

    # torch is now in the profile: asking for OpenVINO again plans it alone (no torch download)
    later = subprocess.run([system_python, str(ROOT / "installer" / "install.py"), "--profile", str(profile),
                            "--dry-run", "--openvino"], capture_output=True, text=True, env=clean_env())
    assert later.returncode == 0, later.stderr
    assert "Packages: openvino==2026.4.1 and" in later.stdout and "only OpenVINO is installed" in later.stdout
