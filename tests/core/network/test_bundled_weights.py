"""Every weights file shipped in weights/: header, sha256, scale, weights_only loading, size."""
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dualsr_core.network import weights  # noqa: E402

SHIPPED = sorted((Path(__file__).resolve().parents[3] / "weights").glob("coarsr_x*.pt"))
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


def test_x3_weights_upsample_by_three_and_beat_the_skip_alone():
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
