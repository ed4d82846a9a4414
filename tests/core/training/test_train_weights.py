"""The recipe steps of scripts/train_weights.py that are not training: the x2 body grafted onto an x4
network, and the blend of trained weights with their start."""
import sys

import pytest

torch = pytest.importorskip("torch")

from dualsr_core.network import weights  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig  # noqa: E402

from ...conftest import ROOT  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import train_weights  # noqa: E402


def random_weights(path, scale: int, seed: int):
    torch.manual_seed(seed)
    weights.save(path, CoarSR(CoarSRConfig(scale, n_feats=8, n_blocks=1)), {"training_data": f"seed {seed}"})
    return path


def test_the_graft_takes_the_body_of_one_network_and_the_upsampler_of_the_other(tmp_path):
    body = random_weights(tmp_path / "x2.pt", 2, seed=1)
    head = random_weights(tmp_path / "x4.pt", 4, seed=2)
    header, state = weights.read(train_weights.graft(body, head, tmp_path / "graft.pt"))
    (_, body_state), (_, head_state) = weights.read(body), weights.read(head)
    assert header["scale"] == 4 and body.name in header["initialised_from"]
    assert any(key.startswith("upsample.2.") for key in state)  # the x4 upsampler's second stage
    for key, value in state.items():
        source = head_state if key.startswith(("upsample.", "last.")) else body_state
        assert torch.equal(value, source[key]), key
    assert not torch.equal(state["head_target.weight"], head_state["head_target.weight"])
    with pytest.raises(SystemExit, match="graft needs an x2 body"):
        train_weights.graft(head, head, tmp_path / "x4_on_x4.pt")


def test_the_blend_is_the_weighted_mean_of_the_trained_weights_and_their_start(tmp_path):
    trained = random_weights(tmp_path / "trained.pt", 4, seed=3)
    start = random_weights(tmp_path / "start.pt", 4, seed=4)
    header, state = weights.read(train_weights.blend(trained, start, 0.8, tmp_path / "blend.pt", validation=[]))
    (_, a), (_, b) = weights.read(trained), weights.read(start)
    for key, value in state.items():  # stored in fp16
        torch.testing.assert_close(value.float(), 0.8 * a[key].float() + 0.2 * b[key].float(), atol=2e-3, rtol=1e-3)
    assert header["blend"].startswith("0.8 x trained.pt") and "0.2 x its start start.pt" in header["blend"]
    assert header["validation"] == {"psnr": None, "ssim": None, "sam": None, "bicubic_psnr": None,
                                    "data_range": 1.0}  # the trainer's header keys; no validation items given
