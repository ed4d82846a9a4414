"""dualsr_core/options.py: the one list of each choice, torch-free, and what the core checks against."""
import subprocess
import sys
from pathlib import Path

import pytest

from dualsr_core import options
from dualsr_core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_the_option_lists_import_without_torch_or_qgis():
    code = "import sys, dualsr_core.options; print(' '.join(sys.modules))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=ROOT).stdout.split()
    assert "dualsr_core.options" in modules
    assert not [m for m in modules if m.split(".")[0] in ("torch", "qgis", "rasterio")]


def test_the_core_refuses_what_the_lists_do_not_offer_and_names_them():
    from dualsr_core.network.torch_support import select_device

    with pytest.raises(InputError, match="DEVICE is 'gpu' but must be one of auto, cpu, cuda"):
        select_device("gpu")
    assert options.SCALES == (2, 3, 4, 8) and options.DEFAULT_TILE == 128


def test_the_network_and_engine_use_the_same_lists():
    pytest.importorskip("torch")
    from dualsr_core.network import engine, model

    assert model.SCALES is options.SCALES
    assert engine.SCHEDULES is options.SCHEDULES and engine.PRECISIONS is options.PRECISIONS
    with pytest.raises(ValueError, match="schedule must be one of"):
        engine.check_schedule("sideways")
