"""Tests of dualsr_core.training (trainer, loop, step, checkpoint, report, config) and the `train` command,
on a band subset of the repository's real EnMAP sample with a tiny CoarSR. Nothing here needs ../shared."""
import csv
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

from dualsr_core.__main__ import build_parser, main  # noqa: E402
from dualsr_core.errors import Cancelled, InputError  # noqa: E402
from dualsr_core.feedback import Feedback  # noqa: E402
from dualsr_core.network import weights  # noqa: E402
from dualsr_core.tools.tiling import Region  # noqa: E402
from dualsr_core.training.config import TrainConfig  # noqa: E402
from dualsr_core.training.trainer import train  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "sample" / "enmap_potsdam.tif"
# Bands 128-140 of the sample (1-based): 13 bands, of which 130-135 are the six bad bands (bbl = 0,
# all nodata), so 7 good bands are trained on.
BANDS = list(range(128, 141))
GOOD_BANDS = 7
# Every setting explicit, so that the tests do not move with the defaults: 24 patches of 8 x 8 LR
# pixels at x2, batches of 4: 6 mini-batches per epoch.
SETTINGS = dict(scale=2, epochs=2, batch_size=4, patch_size=8, lr=1e-4, n_feats=8, n_blocks=1, n_asfm=2, seed=1,
                device="cpu", max_patches_per_scene=24, positions_per_scale=24, checkpoint_every=3,
                val_fraction=0.1, band_window=None, zero_last=False)
HEADER_FIELDS = ("scale", "training_data", "split", "epochs", "iterations", "wall_seconds", "validation", "band_steps",
                 "seed", "dualsr_version", "n_feats", "n_blocks", "n_asfm", "sha256")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """BANDS of the real sample with their scales, offsets, band tags and descriptions."""
    import rasterio

    path = tmp_path_factory.mktemp("scene") / "potsdam.tif"
    with rasterio.open(SAMPLE) as src:
        with rasterio.open(path, "w", **{**src.profile, "count": len(BANDS)}) as dst:
            dst.write(src.read(BANDS))
            dst.scales = tuple(src.scales[b - 1] for b in BANDS)
            dst.offsets = tuple(src.offsets[b - 1] for b in BANDS)
            for k, b in enumerate(BANDS, start=1):
                dst.update_tags(k, **src.tags(b))
                dst.set_band_description(k, src.descriptions[b - 1])
    return path


def run(tmp, scene, feedback=None, **overrides):
    return train([scene], tmp / "w.pt", feedback=feedback, **{**SETTINGS, **overrides})


def final_state(tmp):
    """The last model state (checkpoint) and the saved best weights of a run."""
    checkpoint = torch.load(tmp / "w.work" / "checkpoint.pt", map_location="cpu", weights_only=True)
    return checkpoint["model"], weights.read(tmp / "w.pt")[1]


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def csv_rows(tmp):
    with open(tmp / "w.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


class Script:
    """Counts the calls of a per-batch callback once training has started (the patch build polls
    the same callbacks)."""

    def __init__(self):
        self.training, self.calls = False, 0

    def log(self, message):
        self.training = self.training or "mini-batches per epoch" in message

    def count(self):
        self.calls += self.training
        return self.calls


@pytest.fixture(scope="module")
def reference(tmp_path_factory, scene):
    tmp = tmp_path_factory.mktemp("reference")
    lines = []
    result = run(tmp, scene, Feedback(log=lines.append))
    return tmp, result, lines


# --- one set of defaults ------------------------------------------------------------------------

def test_defaults_are_the_bundled_weights_recipe_and_the_command_line_takes_them(monkeypatch):
    for header in sorted((REPO / "weights").glob("coarsr_x*.json")):  # every bundled network has the size
        header = json.loads(header.read_text())
        assert (header["n_feats"], header["n_blocks"], header["n_asfm"]) == (
            TrainConfig.n_feats, TrainConfig.n_blocks, TrainConfig.n_asfm) == (32, 1, 2)
    # The defaults are the first stage of the bundled x2 weights (x3 is transplanted from that stage);
    # the shipped x2 file fine-tunes it further.
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from train_weights import RECIPES

    (base, recipe, start, _), (_, _, long_start, _), *_ = RECIPES[2]
    assert (base, start, long_start) == ("x2_base", None, "x2_base")
    assert recipe == {name: getattr(TrainConfig, name) for name in recipe} and TrainConfig.zero_last
    x2 = json.loads((REPO / "weights" / "coarsr_x2.json").read_text())
    assert x2["initialised_from"].startswith(f"fine-tuned from coarsr_{RECIPES[2][-1][2]}.pt")  # the recipe's last step
    assert (x2["band_window"], x2["patch_size"], x2["batch_size"]) == (
        TrainConfig.band_window, TrainConfig.patch_size, TrainConfig.batch_size)

    args = vars(build_parser().parse_args(["train", "--data", "d", "--scale", "3", "--output", "o.pt"]))
    renamed = {"resume_from": "resume"}
    for field in dataclasses.fields(TrainConfig):
        if field.name not in ("scale", "validation", "band_chunk"):
            assert args[renamed.get(field.name, field.name)] == field.default, field.name
    flags = vars(build_parser().parse_args(["train", "--data", "d", "--scale", "3", "--output", "o.pt",
                                            "--no-zero-last", "--band-window", "0"]))
    assert flags["zero_last"] is False and flags["band_window"] == 0  # 0: all bands (None for train)


@pytest.mark.qgis
def test_qgis_train_takes_the_same_defaults(qgis_processing):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById("dualsr:train")
    defaults = {name: algorithm.parameterDefinition(name).defaultValue()
                for name in ("EPOCHS", "BATCH_SIZE", "PATCH_SIZE", "LEARNING_RATE", "VAL_FRACTION", "DEVICE",
                             "FEATURES", "BLOCKS", "SEED", "DELETE_WORK", "SPECTRAL_WEIGHT")}
    assert defaults == {"EPOCHS": TrainConfig.epochs, "BATCH_SIZE": TrainConfig.batch_size,
                        "PATCH_SIZE": TrainConfig.patch_size, "LEARNING_RATE": TrainConfig.lr,
                        "VAL_FRACTION": TrainConfig.val_fraction, "DEVICE": TrainConfig.device,
                        "FEATURES": 32, "BLOCKS": 1, "SEED": TrainConfig.seed, "DELETE_WORK": False,
                        "SPECTRAL_WEIGHT": 0.0}


def test_settings_are_checked_with_one_sentence_naming_the_parameter(tmp_path, scene):
    for bad, message in ((dict(scale=5), "SCALE is 5"), (dict(lr=0.0), "LEARNING_RATE is 0.0"),
                         (dict(epochs=0), "EPOCHS is 0"), (dict(band_steps="x"), "band_steps is 'x'"),
                         (dict(val_fraction=0.5), "VAL_FRACTION is 0.5"), (dict(band_window=0), "band_window is 0"),
                         (dict(validation=[(scene, (1, 2))]), "Validation window")):
        with pytest.raises(InputError, match=message):
            run(tmp_path, scene, **bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind
    (tmp_path / "w.pt").write_bytes(b"the weights to fine-tune")
    with pytest.raises(InputError, match="OUTPUT_WEIGHTS '.*w.pt' is WEIGHTS '.*w.pt'; inputs are never overwritten"):
        run(tmp_path, scene, resume_from=tmp_path / "w.pt")
    assert (tmp_path / "w.pt").read_bytes() == b"the weights to fine-tune"
    with pytest.raises(TypeError, match="n_feature"):
        run(tmp_path, scene, n_feature=8)


# --- the loop, checkpoints and reports ----------------------------------------------------------

def test_training_reduces_the_loss_and_beats_the_untrained_net(reference):
    from dualsr_core.evaluation.metrics import psnr
    from dualsr_core.network.engine import CoarseEngine
    from dualsr_core.network.model import CoarSR, CoarSRConfig
    from dualsr_core.network.partition import neighbour_table
    from dualsr_core.training.patches import PatchDataset

    tmp, result, _ = reference
    rows = list(csv.DictReader(open(tmp / "w.csv", newline="")))
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    dataset = PatchDataset(tmp / "w.work" / "patches.h5")
    (crop,) = dataset.validation()
    dataset.close()
    assert len(crop["order"]) == GOOD_BANDS
    torch.manual_seed(SETTINGS["seed"])  # the initialisation training starts from
    untrained = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1))
    order = crop["order"]
    sr = CoarseEngine(untrained, torch.device("cpu"), "fp32").run(crop["lr"], list(order), neighbour_table(order))
    before = psnr(crop["hr"][order], sr, data_range=1.0)
    assert result["best"]["psnr"] > before + 1.0


@pytest.mark.gpu
def test_training_on_cuda_follows_the_cpu_run(cuda, reference, tmp_path, scene):
    """The reference settings on CUDA: the same patches and initialisation, so losses and validation
    match the CPU run up to cuDNN's (TF32, non-deterministic) rounding."""
    cpu_folder, on_cpu, _ = reference
    on_cuda = run(tmp_path, scene, device="cuda")
    assert on_cuda["iterations"] == on_cpu["iterations"]
    assert on_cuda["best"]["psnr"] == pytest.approx(on_cpu["best"]["psnr"], abs=0.1)
    cpu_rows, cuda_rows = csv_rows(cpu_folder), csv_rows(tmp_path)
    for a, b in zip(cpu_rows, cuda_rows, strict=True):
        assert float(b["train_loss"]) == pytest.approx(float(a["train_loss"]), rel=0.05)


def test_outputs_weights_header_csv_and_curve(reference):
    tmp, result, lines = reference
    assert result["iterations"] == 12 and result["epochs_done"] == 2
    model, header = weights.load_model(tmp / "w.pt", 2)
    assert not model.training and model.config.n_feats == 8
    for field in HEADER_FIELDS:
        assert field in header, field
    assert header["band_steps"] == "summed" and header["training_data"] == "potsdam"
    assert set(header["validation"]) >= {"psnr", "ssim", "sam", "bicubic_psnr"}
    assert header["validation"]["psnr"] == pytest.approx(result["best"]["psnr"])
    from dualsr_core.training.patches import PatchDataset

    dataset = PatchDataset(tmp / "w.work" / "patches.h5")
    (crop,) = dataset.validation()
    dataset.close()
    window = crop["region"]  # the automatic window: about val_fraction of the 64 x 64 scene, inside it
    assert 0.05 < window.height * window.width / 64**2 < 0.15
    assert 0 <= window.row0 <= 64 - window.height and 0 <= window.col0 <= 64 - window.width
    assert header["split"] == ("validation on held-out automatic windows of about 10% of each scene, never sampled "
                               f"for training: potsdam rows {window.row0}-{window.row0 + window.height - 1} "
                               f"cols {window.col0}-{window.col0 + window.width - 1}")
    assert header["initialised_from"] == "random (PyTorch default initialisation)"
    assert (tmp / "w.json").is_file()
    rows = list(csv.DictReader(open(tmp / "w.csv", newline="")))
    assert list(rows[0]) == ["epoch", "iteration", "train_loss", "val_psnr", "val_ssim", "val_sam", "bicubic_psnr",
                             "lr", "seconds"]
    assert [r["iteration"] for r in rows] == ["6", "12"]
    assert [float(r["lr"]) for r in rows] == [1e-4, 5e-5]  # halved every max(1, 2 // 3) = 1 epoch
    assert (tmp / "w_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = torch.load(tmp / "w.work" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["batch"] == 0 and len(checkpoint["history"]) == 2
    assert {"model", "optimizer", "scheduler", "rng", "best"} <= set(checkpoint)
    assert any("validation PSNR" in line for line in lines)
    assert any("The work folder" in line and "patches.h5" in line for line in lines)


@pytest.mark.parametrize("cancel_after", [4, 6])  # within the first epoch, and at its end
def test_cancel_then_resume_is_bit_identical(reference, tmp_path, scene, cancel_after):
    script = Script()
    with pytest.raises(Cancelled, match="resume"):
        run(tmp_path, scene, Feedback(log=script.log, is_cancelled=lambda: script.count() > cancel_after))
    checkpoint = torch.load(tmp_path / "w.work" / "checkpoint.pt", weights_only=True)
    assert checkpoint["iteration"] == cancel_after
    # no finished-looking weights or log beside the destination; the best so far waits in the work
    # folder (none before the first validation)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.work"]
    assert (tmp_path / "w.work" / "w.pt").is_file() == (cancel_after >= 6)
    result = run(tmp_path, scene)
    assert result["iterations"] == 12
    ref_tmp = reference[0]
    for ours, theirs in zip(final_state(tmp_path), final_state(ref_tmp)):
        assert_states_equal(ours, theirs)
    assert csv_rows(tmp_path) == csv_rows(ref_tmp)


def test_resume_after_a_crash_restarts_from_the_periodic_checkpoint(reference, tmp_path, scene):
    script = Script()

    def progress(_fraction):
        if script.count() == 5:  # progress comes after each mini-batch: crash after the fifth
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path, scene, Feedback(log=script.log, progress=progress))
    assert torch.load(tmp_path / "w.work" / "checkpoint.pt", weights_only=True)["iteration"] == 3
    run(tmp_path, scene)
    for ours, theirs in zip(final_state(tmp_path), final_state(reference[0])):
        assert_states_equal(ours, theirs)


def test_rerun_of_a_finished_run_returns_its_result(reference, tmp_path, scene):
    shutil.copytree(reference[0], tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "w.pt").read_bytes()
    result = run(tmp_path, scene)
    assert result["iterations"] == 12 and result["best"] == reference[1]["best"]
    assert (tmp_path / "w.pt").read_bytes() == before


@pytest.mark.parametrize("setting, value, named", [("lr", 3e-4, "LEARNING_RATE 0.0001 there, 0.0003 now"),
                                                    ("scale", 3, "SCALE 2 there, 3 now")])
def test_a_checkpoint_of_other_settings_is_refused_before_the_patches(reference, tmp_path, scene, setting, value,
                                                                      named):
    """The work folder of the same OUTPUT_WEIGHTS is kept whole: the patches of SCALE 3 would replace SCALE 2's."""
    shutil.copytree(reference[0], tmp_path, dirs_exist_ok=True)
    work = {p.name: p.read_bytes() for p in (tmp_path / "w.work").iterdir()}
    assert "patches.h5" in work
    logs = []
    with pytest.raises(InputError, match=re.escape(f"holds an unfinished training with other settings ({named}); "
                                                   "rerun with those settings to resume, choose another "
                                                   "OUTPUT_WEIGHTS, or delete the work folder")):
        run(tmp_path, scene, feedback=Feedback(log=logs.append), **{setting: value})
    assert logs == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "w.work").iterdir()} == work


def test_a_whole_config_trains_like_its_keyword_arguments(reference, tmp_path, scene):
    """train(paths, output, TrainConfig(...)) is the same run as the keyword form: the reference's
    checkpoint is resumed as its own (a finished run, so it returns at once with its result)."""
    shutil.copytree(reference[0], tmp_path, dirs_exist_ok=True)
    config = TrainConfig(**SETTINGS)
    result = train([scene], tmp_path / "w.pt", config)
    assert result["iterations"] == 12 and result["best"] == reference[1]["best"]


def test_per_band_mode_explicit_validation_and_fine_tuning(reference, tmp_path, scene):
    result = run(tmp_path, scene, band_steps="per_band", max_iterations=2, n_feats=16, delete_work=True,
                 validation=[(scene, Region(0, 0, 16, 16))], resume_from=reference[0] / "w.pt")
    assert result["iterations"] == 2 and result["band_steps"] == "per_band"
    header, _ = weights.read(tmp_path / "w.pt")
    assert header["band_steps"] == "per_band" and header["n_feats"] == 8  # the fine-tuned file's size rules
    assert "explicit windows" in header["split"] and "rows 0-15 cols 0-15" in header["split"]
    assert header["initialised_from"].startswith("fine-tuned from w.pt")
    rows = list(csv.DictReader(open(tmp_path / "w.csv", newline="")))
    assert [r["epoch"] for r in rows] == ["0.3333"]  # stopped after 2 of 6 mini-batches
    assert not (tmp_path / "w.work").exists()  # delete_work


# --- the step and the network it starts from ----------------------------------------------------

@pytest.mark.parametrize("spectral_weight", [0.0, 0.5])
def test_summed_steps_do_not_depend_on_the_band_chunk(spectral_weight):
    from dualsr_core.network.model import CoarSR, CoarSRConfig
    from dualsr_core.training.patches import Batch
    from dualsr_core.training.step import BandStepper, OptimisationStep

    rng = np.random.default_rng(0)
    bands = 9
    batch = Batch(rng.random((3, bands, 6, 6), dtype=np.float32), rng.random((3, bands, 12, 12), dtype=np.float32),
                  np.ones(bands, bool), np.arange(bands))
    results = []
    for mode, chunk in (("summed", 1), ("summed", 4), ("summed", bands), ("per_band", 1)):
        torch.manual_seed(0)
        model = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        step = OptimisationStep(BandStepper(model), None, optimizer, 6, 2, torch.device("cpu"), mode, chunk, False,
                                spectral_weight)
        loss = step(batch)
        results.append((loss, {k: v.clone() for k, v in model.state_dict().items()}))
    (loss1, state1), *summed, (loss_pb, state_pb) = results
    for loss, state in summed:
        assert loss == pytest.approx(loss1, rel=1e-5)
        for key in state1:
            torch.testing.assert_close(state[key], state1[key], rtol=1e-5, atol=1e-6)
    assert loss_pb != pytest.approx(loss1, rel=1e-6)  # per band: nine Adam steps, a different path
    assert any(not torch.equal(state_pb[k], state1[k]) for k in state1)


@pytest.mark.parametrize("native_bf16", [False, True])
def test_bf16_autocast_runs_only_where_the_cpu_has_native_bf16(monkeypatch, native_bf16):
    """amp asks for bf16 autocast; on a CPU without native bf16 (emulated, slower than fp32) the step
    is exactly the fp32 one, with it the convolutions run in bf16 and the step stays close to fp32."""
    from dualsr_core.network.engine import cpu_runs_bf16
    from dualsr_core.network.model import CoarSR, CoarSRConfig
    from dualsr_core.training import step as step_module
    from dualsr_core.training.patches import Batch

    if native_bf16 and not cpu_runs_bf16():
        pytest.skip("this CPU cannot run bf16 convolutions at all")
    monkeypatch.setattr(step_module, "cpu_has_fast_bf16", lambda: native_bf16)
    rng = np.random.default_rng(2)
    batch = Batch(rng.random((2, 5, 6, 6), dtype=np.float32), rng.random((2, 5, 12, 12), dtype=np.float32),
                  np.ones(5, bool), np.arange(5))
    results = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1))
        dtypes = set()
        model.last.register_forward_hook(lambda module, inputs, output, seen=dtypes: seen.add(output.dtype))
        step = step_module.OptimisationStep(step_module.BandStepper(model), None,
                                            torch.optim.SGD(model.parameters(), lr=0.1), 6, 2, torch.device("cpu"),
                                            "summed", 5, amp)
        results[amp] = (step.amp, step(batch), dtypes, model.state_dict())
    (_, fp32_loss, fp32_dtypes, fp32_state), (active, amp_loss, amp_dtypes, amp_state) = results.values()
    assert active is native_bf16 and fp32_dtypes == {torch.float32}
    if native_bf16:
        assert amp_dtypes == {torch.bfloat16} and amp_loss != fp32_loss
        assert amp_loss == pytest.approx(fp32_loss, rel=2e-2)
    else:
        assert amp_dtypes == {torch.float32} and amp_loss == fp32_loss
        assert all(torch.equal(amp_state[k], fp32_state[k]) for k in fp32_state)


def test_the_spectral_term_compares_band_to_band_changes():
    """spectral_gradient_l1 against the formula written out with numpy, across a chunk boundary,
    and its gradient reaches only the chunk's own predictions."""
    from dualsr_core.training.step import spectral_gradient_l1

    rng = np.random.default_rng(3)
    y, t = rng.random((2, 5, 4, 4)), rng.random((2, 5, 4, 4))
    dy, dt = np.diff(y, axis=1), np.diff(t, axis=1)
    whole = np.abs(dy - dt).sum() / y.size  # the first band adds zero but counts in the mean
    assert spectral_gradient_l1(torch.tensor(y), torch.tensor(t), None).item() == pytest.approx(whole)
    head = spectral_gradient_l1(torch.tensor(y[:, :2]), torch.tensor(t[:, :2]), None).item()
    tail = spectral_gradient_l1(torch.tensor(y[:, 2:]), torch.tensor(t[:, 2:]),
                                (torch.tensor(y[:, 1:2]), torch.tensor(t[:, 1:2]))).item()
    assert (2 * head + 3 * tail) / 5 == pytest.approx(whole)
    prediction = torch.tensor(y, requires_grad=True)
    spectral_gradient_l1(prediction, torch.tensor(t), None).backward()
    expected = np.zeros_like(y)  # d/dy_i of |(y_i - y_{i-1}) - (t_i - t_{i-1})|, y_{i-1} held fixed
    expected[:, 1:] = np.sign(dy - dt) / y.size
    np.testing.assert_allclose(prediction.grad.numpy(), expected)


def test_the_spectral_weight_changes_the_step_but_not_the_logged_l1():
    from dualsr_core.network.model import CoarSR, CoarSRConfig
    from dualsr_core.training.patches import Batch
    from dualsr_core.training.step import BandStepper, OptimisationStep

    rng = np.random.default_rng(5)
    batch = Batch(rng.random((2, 6, 6, 6), dtype=np.float32), rng.random((2, 6, 12, 12), dtype=np.float32),
                  np.ones(6, bool), np.arange(6))
    results = []
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        model = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = OptimisationStep(BandStepper(model), None, optimizer, 6, 2, torch.device("cpu"), "summed", 6, False,
                                weight)
        results.append((step(batch), model.state_dict()))
    (l1_plain, plain), (l1_spectral, spectral) = results
    assert l1_spectral == pytest.approx(l1_plain, rel=1e-6)  # the same L1 before the update
    assert any(not torch.allclose(plain[k], spectral[k]) for k in plain)


def test_a_step_on_a_band_window_trains_only_on_those_bands():
    """The loss of a windowed step is the mean L1 over the window's bands of the network's output,
    computed here band by band through the model itself with the PIL bicubic skip of tools/resize."""
    from dualsr_core.network.model import CoarSR, CoarSRConfig
    from dualsr_core.network.partition import neighbour_table
    from dualsr_core.tools.resize import resize
    from dualsr_core.training.patches import Batch
    from dualsr_core.training.step import BandStepper, OptimisationStep, band_window

    rng = np.random.default_rng(1)
    bands, window = 7, (2, 5)
    batch = Batch(rng.random((2, bands, 6, 6), dtype=np.float32), rng.random((2, bands, 12, 12), dtype=np.float32),
                  np.ones(bands, bool), np.arange(bands)[::-1].copy())
    torch.manual_seed(0)
    model = CoarSR(CoarSRConfig(scale=2, n_feats=8, n_blocks=1))
    expected, state = [], None
    table = neighbour_table(batch.order)
    with torch.no_grad():
        for i in range(*window):
            band = batch.order[i]
            lr = torch.from_numpy(batch.lr)
            skip = torch.from_numpy(resize(batch.lr[:, band], (12, 12), method="pil").astype(np.float32))
            y, state = model(lr[:, band:band + 1], lr[:, table[i, 0]], lr[:, table[i, 1]], skip[:, None], state)
            expected.append((y[:, 0] - torch.from_numpy(batch.hr[:, band])).abs().mean().item())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    step = OptimisationStep(BandStepper(model), None, optimizer, 6, 2, torch.device("cpu"), "per_band", 1, False)
    assert step(batch, window) == pytest.approx(np.mean(expected), rel=1e-5)

    config = TrainConfig(scale=2, seed=4, band_window=3)
    starts = {band_window(config, it, 10) for it in range(50)}
    assert all(w[1] - w[0] == 3 and 0 <= w[0] <= 7 for w in starts) and len(starts) > 3
    assert band_window(config, 7, 10) == band_window(TrainConfig(scale=4, seed=4, band_window=3), 7, 10)
    assert band_window(config, 7, 3) is None and band_window(TrainConfig(scale=2, band_window=None), 7, 10) is None


def test_zero_last_starts_as_the_bicubic_skip():
    from dualsr_core.training.step import initial_model

    model, source = initial_model(TrainConfig(scale=2, n_feats=8, n_blocks=1, zero_last=True), Feedback())
    x, g = torch.rand(2, 1, 6, 6), torch.rand(2, 3, 6, 6)
    bic = torch.rand(2, 1, 12, 12)
    y, _ = model(x, g, g, bic)
    assert torch.equal(y, bic) and "starts as bicubic" in source
    (y - 1).abs().mean().backward()  # and it can leave zero: g gets a gradient
    assert model.last.parametrizations.weight.original0.grad.abs().sum() > 0


# --- the command line ---------------------------------------------------------------------------

def test_command_line_train_and_error(tmp_path, scene, capsys):
    args = ["train", "--data", str(scene), "--scale", "2", "--output", str(tmp_path / "cli.pt"), "--epochs", "1",
            "--batch-size", "4", "--patch-size", "8", "--n-feats", "8", "--device", "cpu",
            "--max-iterations", "1", "--validation", f"{scene}:16,0,16,16", "--band-window", "4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"OUTPUT_WEIGHTS:\t{tmp_path / 'cli.pt'}" in out and "Best validation PSNR" in out
    header = weights.read(tmp_path / "cli.pt")[0]
    assert header["iterations"] == 1 and header["band_window"] == 4 and header["n_blocks"] == TrainConfig.n_blocks
    assert header["initialised_from"].endswith("starts as bicubic")  # the default zero_last
    assert main(["train", "--data", str(tmp_path / "missing"), "--scale", "2", "--output", str(tmp_path / "x.pt")]) == 1
    assert "Error: Training data" in capsys.readouterr().err and not (tmp_path / "x.work").exists()


@pytest.mark.slow
def test_distributed_two_cpu_processes(tmp_path, scene):
    """torchrun with 2 gloo processes: both share every batch; rank 0 writes the files."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "dualsr_core", "train", "--data", str(scene), "--scale", "2", "--output", str(tmp_path / "d.pt"),
               "--epochs", "1", "--batch-size", "2", "--patch-size", "8", "--n-feats", "8", "--n-blocks", "1",
               "--device", "cpu", "--max-iterations", "3"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    header, _ = weights.read(tmp_path / "d.pt")
    assert header["iterations"] == 3 and header["batch_size"] == 4


def test_the_header_of_the_weights_to_start_from_is_an_input(reference, tmp_path, scene):
    """OUTPUT_WEIGHTS w.pth beside WEIGHTS w.pt would publish its header as w.json, the start's own."""
    shutil.copyfile(reference[0] / "w.pt", tmp_path / "w.pt")
    shutil.copyfile(reference[0] / "w.json", tmp_path / "w.json")
    before = (tmp_path / "w.json").read_bytes()
    with pytest.raises(InputError, match=r"OUTPUT_WEIGHTS .*w\.json.* WEIGHTS"):
        train([str(scene)], tmp_path / "w.pth", 2, resume_from=str(tmp_path / "w.pt"), max_iterations=1)
    assert (tmp_path / "w.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.pt"]
