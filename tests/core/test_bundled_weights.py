"""Every weights file shipped in weights/: header, sha256, scale, weights_only loading, size."""
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dualsr_core.network import weights  # noqa: E402

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "weights").glob("coarsr_x*.pt"))
HEADER_FIELDS = ("format", "scale", "n_feats", "n_blocks", "n_asfm", "sha256", "dtype", "training_data", "scenes",
                 "split", "epochs", "iterations", "wall_seconds", "validation", "seed", "paper", "dualsr_version")


def test_weights_are_shipped_for_x2_and_x4():
    assert {p.name for p in SHIPPED} >= {"coarsr_x2.pt", "coarsr_x4.pt"}


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
