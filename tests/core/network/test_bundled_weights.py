"""Every weights file shipped in weights/: header, sha256, scale, weights_only loading, size, and
that it super-resolves real imagery better than bicubic."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dualsr_core.io.scenes import load_scene  # noqa: E402
from dualsr_core.network import weights  # noqa: E402
from dualsr_core.network.engine import CoarseEngine  # noqa: E402
from dualsr_core.network.partition import neighbour_table  # noqa: E402
from dualsr_core.tools import resize  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "weights").glob("coarsr_x*.pt"))
HEADER_FIELDS = ("format", "scale", "n_feats", "n_blocks", "n_asfm", "sha256", "dtype", "training_data", "scenes",
                 "split", "epochs", "iterations", "wall_seconds", "validation", "seed", "paper", "dualsr_version")


def test_weights_are_shipped_for_x2_x3_and_x4():
    assert {p.name for p in SHIPPED} >= {"coarsr_x2.pt", "coarsr_x3.pt", "coarsr_x4.pt"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_weights(path):
    scale = int(path.stem.split("_x")[1])
    payload = torch.load(path, map_location="cpu", weights_only=True)
    header = payload["header"]
    assert [f for f in HEADER_FIELDS if f not in header] == []
    assert header["scale"] == scale and header["format"] == weights.FORMAT
    assert weights.state_sha256(payload["state_dict"]) == header["sha256"]
    assert json.loads(path.with_suffix(".json").read_text()) == header
    assert header["validation"]["psnr"] > header["validation"]["bicubic_psnr"]
    assert path.stat().st_size < 2 * 2**20
    model, read_header = weights.load_model(path, scale)
    assert model.config.scale == scale and read_header == header
    with pytest.raises(weights.WeightsError, match="trained for scale"):
        weights.read(path, expected_scale=8 if scale != 8 else 2)


def test_x3_weights_upsample_by_three_in_one_sub_pixel_stage():
    """The x3 network's sub-pixel layer is a PixelShuffle(3) (9 F channels), and on a smooth cube
    its output is three times the input size and differs from the bicubic skip it adds to."""
    path = next(p for p in SHIPPED if p.name == "coarsr_x3.pt")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    header, state = payload["header"], payload["state_dict"]
    assert header["scale"] == 3
    assert state["upsample.0.weight"].shape[0] == 9 * header["n_feats"]
    assert not any(k.startswith("upsample.2.") for k in state)  # one stage, not x2 stages
    model, _ = weights.load_model(path, 3)
    x = torch.linspace(0.1, 0.5, 6 * 8 * 8).reshape(1, 6, 8, 8)
    near, far = x[:, [1, 0, 2]], x[:, [2, 3, 4]]
    bic = torch.nn.functional.interpolate(x[:, :1], scale_factor=3, mode="bicubic", align_corners=False)
    with torch.no_grad():
        y, _ = model(x[:, :1], near, far, bic)
    assert y.shape == (1, 1, 24, 24)
    assert torch.isfinite(y).all() and (y - bic).abs().max() > 1e-4


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_weights_beat_bicubic_on_real_enmap_bands(path):
    """On 48 x 48 pixels and 40 bands of the bundled EnMAP sample, degraded as in training, each file
    gains over MATLAB bicubic (measured: +1.7 dB at x2, +1.0 at x3, +0.7 at x4 on all bands); an
    untrained network, whose output is the PIL bicubic skip, gains nothing. The sample's tiles are
    training tiles: this checks that the files are the trained networks, not how they generalise."""
    scale = int(path.stem.split("_x")[1])
    if 48 % scale:
        pytest.skip(f"x{scale} does not divide the 48-pixel crop")
    scene = load_scene(ROOT / "sample" / "enmap_potsdam.tif")
    assert scene.valid[:48, :48].all()
    hr = scene.cube[scene.order[60:100], :48, :48].astype(np.float64)
    lr = resize.resize(hr, (48 // scale, 48 // scale), "matlab").astype(np.float32)
    order = list(range(len(lr)))
    sr = CoarseEngine(weights.load_model(path, scale)[0], torch.device("cpu"), "fp32", "band").run(
        lr, order, neighbour_table(order))

    def psnr(estimate):
        return 10 * np.log10(1.0 / np.mean((estimate.astype(np.float64) - hr) ** 2))

    assert psnr(sr) - psnr(resize.resize(lr, (48, 48), "matlab")) > 0.3
