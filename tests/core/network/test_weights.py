"""Weights files: header, sha256, weights_only loading, clear errors."""
import json

import pytest

torch = pytest.importorskip("torch")

from dualsr_core.errors import WeightsError  # noqa: E402
from dualsr_core.network import weights  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig  # noqa: E402


def test_round_trip_keeps_outputs_and_writes_a_sidecar(tmp_path):
    torch.manual_seed(0)
    model = CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1)).eval()
    path = tmp_path / "w.pt"
    header = weights.save(path, model, {"training_data": "test"}, half=False)
    assert json.loads(path.with_suffix(".json").read_text()) == header
    loaded, read_header = weights.load_model(path, 2)
    assert read_header["sha256"] == header["sha256"] and read_header["n_feats"] == 8
    args = (torch.rand(1, 1, 6, 6), torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6), torch.rand(1, 1, 12, 12))
    with torch.no_grad():
        assert torch.allclose(model(*args)[0], loaded(*args)[0], atol=1e-5)
    payload = torch.load(path, weights_only=True)
    assert weights.state_sha256(payload["state_dict"]) == header["sha256"]


def test_half_precision_file_is_smaller_and_close(tmp_path):
    model = CoarSR(CoarSRConfig(2, n_feats=16, n_blocks=1))
    weights.save(tmp_path / "full.pt", model, {})
    weights.save(tmp_path / "half.pt", model, {}, half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    header, half = weights.read(tmp_path / "half.pt")
    assert header["dtype"] == "float16"
    full = weights.read(tmp_path / "full.pt")[1]
    assert half.keys() == full.keys()
    for key, value in full.items():  # each value rounded to fp16: 11 significant bits, subnormals below 2^-14
        assert half[key].dtype == torch.float16, key
        torch.testing.assert_close(half[key].float(), value, rtol=2**-11, atol=2**-25, msg=key)


def test_tampered_state_is_detected(tmp_path):
    path = tmp_path / "w.pt"
    weights.save(path, CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1)), {})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["last.bias"] += 1
    torch.save(payload, path)
    with pytest.raises(WeightsError, match="damaged"):
        weights.read(path)


def test_foreign_torch_file_and_missing_file(tmp_path):
    torch.save({"a": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not a DualSR weights file"):
        weights.read(tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="does not exist"):
        weights.read(tmp_path / "nothing.pt")


class Payload:
    """Unpickling it creates the file `marker`: proof that code in a weights file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"header": Payload(marker), "state_dict": {}}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="not a DualSR weights file: it is damaged, not a torch file, or holds "
                                           "Python objects, which are never loaded") as error:
        weights.read(tmp_path / "evil.pt")
    assert "weights_only" not in str(error.value)
    assert not marker.exists()


def test_missing_bundled_scale_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "BUNDLED_DIR", tmp_path)
    with pytest.raises(WeightsError, match="No bundled weights for scale x8"):
        weights.load_model(None, 8)
