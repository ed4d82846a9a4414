"""Training on 2 processes (torchrun, gloo on the CPU) on a synthetic hyperspectral scene: the weights
written load with the project's loader and beat the untrained network (which equals bicubic) on the
held-out window."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from dualsr_core.evaluation.metrics import psnr  # noqa: E402
from dualsr_core.network import weights  # noqa: E402
from dualsr_core.network.engine import CoarseEngine  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig, fold_weight_norm  # noqa: E402
from dualsr_core.network.partition import neighbour_table  # noqa: E402
from dualsr_core.training.patches import PatchDataset  # noqa: E402

from ...conftest import write_raster  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
BANDS, SIZE, SEED = 12, 64, 3
VALIDATION = (40, 40, 24, 24)  # row, col, height, width: never sampled for training


def synthetic_scene(path: Path) -> Path:
    """Smooth random spectra (a few endmembers mixed by smooth abundances) as uint16 reflectance x 10000,
    with wavelengths: a scene with the spatial and spectral correlation of real hyperspectral data."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    wavelengths = np.linspace(450.0, 2400.0, BANDS)
    endmembers = np.stack([0.05 + 0.5 * ndimage.gaussian_filter1d(rng.random(BANDS), 2.0) for _ in range(4)])
    abundance = ndimage.gaussian_filter(rng.random((4, SIZE, SIZE)), sigma=(0, 3, 3))
    abundance /= abundance.sum(axis=0, keepdims=True)
    edges = (ndimage.gaussian_filter(rng.random((SIZE, SIZE)), 1.0) > 0.5) * 0.08  # sharp structures to learn
    cube = np.einsum("ke,khw->ehw", endmembers, abundance) + edges
    return write_raster(path, (cube * 10000).astype("uint16"), wavelengths_nm=wavelengths)


def run_engine(model, crop) -> float:
    order = list(crop["order"])
    sr = CoarseEngine(model, torch.device("cpu"), "fp32", "band").run(crop["lr"], order, neighbour_table(order))
    return psnr(crop["hr"][order], sr, data_range=1.0, mask=crop["mask"])


def test_torchrun_two_processes_write_weights_that_beat_the_untrained_network(tmp_path):
    scene = synthetic_scene(tmp_path / "synthetic.tif")
    output = tmp_path / "ddp.pt"
    window = ",".join(map(str, VALIDATION))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "dualsr_core", "train", "--data", str(scene), "--scale", "2", "--output", str(output),
               "--epochs", "3", "--batch-size", "4", "--patch-size", "8", "--n-feats", "8", "--n-blocks", "1",
               "--lr", "5e-4", "--device", "cpu", "--seed", str(SEED), "--validation", f"{scene}:{window}",
               "--zero-last"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"OUTPUT_WEIGHTS:\t{output}" in done.stdout

    model, header = weights.load_model(output, 2)  # the project's loader: format, sha256 and scale checked
    assert model.config.n_feats == 8 and header["batch_size"] == 8  # 4 per process x 2 processes
    assert header["iterations"] > 0 and "rows 40-63 cols 40-63" in header["split"]

    dataset = PatchDataset(output.with_name("ddp.work") / "patches.h5")
    (crop,) = dataset.validation()
    dataset.close()
    # The network training starts from (rank 0's, broadcast by DDP): seeded, the last convolution at
    # zero (--zero-last), so that it outputs the bicubic skip and the bar to beat is bicubic.
    assert "starts as bicubic" in header["initialised_from"]
    torch.manual_seed(SEED)
    untrained = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1), weight_normed=True)
    with torch.no_grad():
        untrained.last.parametrizations.weight.original0.zero_()
        untrained.last.bias.zero_()
    before, after = run_engine(fold_weight_norm(untrained), crop), run_engine(model, crop)
    print(f"validation PSNR: untrained {before:.2f} dB, trained on 2 processes {after:.2f} dB")
    assert after > before + 0.3, (before, after)  # measured: +0.6 dB after 2 of the 3 epochs
    assert after == pytest.approx(header["validation"]["psnr"], abs=0.01)  # the trainer's own validation agrees
