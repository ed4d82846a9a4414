"""dualsr_core/options.py: the one list of each choice, torch-free, and what the core checks against."""
import argparse
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
    assert options.SCALES == (2, 3, 4, 8) and options.DEFAULT_TILE == 256


def test_the_network_and_engine_use_the_same_lists():
    pytest.importorskip("torch")
    from dualsr_core.network import engine, model

    assert model.SCALES is options.SCALES
    assert engine.SCHEDULES is options.SCHEDULES and engine.PRECISIONS is options.PRECISIONS
    with pytest.raises(InputError, match="SCHEDULE is 'sideways' but must be one of auto, band, batched"):
        engine.check_schedule("sideways")


def _batch_actions() -> dict:
    from dualsr_core.__main__ import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest: a for a in commands.choices["batch"]._actions}


def test_the_batch_command_offers_exactly_the_lists():
    actions = _batch_actions()
    assert tuple(actions["scale"].choices) == options.SCALES
    assert tuple(actions["precision"].choices) == options.PRECISIONS and "int8" in options.PRECISIONS
    assert tuple(actions["device"].choices) == options.DEVICES
    assert tuple(actions["schedule"].choices) == options.SCHEDULES
    assert tuple(actions["bad_bands"].choices) == options.BAD_BAND_MODES
    assert actions["tile_size"].default == options.DEFAULT_TILE


def test_the_batch_command_parses_every_precision_and_scale():
    from dualsr_core.__main__ import build_parser

    parser = build_parser()
    for precision in options.PRECISIONS:
        for scale in options.SCALES:
            args = parser.parse_args(["batch", "--input", "x", "--output", "y", "--scale", str(scale),
                                      "--precision", precision])
            assert (args.precision, args.scale) == (precision, scale)
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "--input", "x", "--output", "y", "--scale", "5"])


def test_batch_and_training_check_against_the_same_lists():
    from dualsr_core.batch import runner
    from dualsr_core.training import config

    assert runner.SCALES is options.SCALES and config.SCALES is options.SCALES
