"""int8 inference (network/int8.py): which precision `auto` picks, int8 against fp32, and the
accuracy budget on a real EnMAP tile."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dualsr_core.errors import InputError, MissingDependencyError
from dualsr_core.network import engine as engine_module
from dualsr_core.network import int8
from dualsr_core.network.engine import CoarseEngine, choose_precision
from dualsr_core.network.model import CoarSR, CoarSRConfig, fold_weight_norm
from dualsr_core.network.partition import neighbour_table
from dualsr_core.network.weights import load_model

CPU = torch.device("cpu")
needs_openvino = pytest.mark.skipif(not int8.openvino_available(), reason="OpenVINO is not installed")
ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"

CPUS = {  # /proc/cpuinfo flags of the CPU kinds this project meets
    "avx2 only": {"avx", "avx2", "fma"},
    "avx512 vnni": {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"},
    "sapphire rapids": {"avx2", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "amx_bf16", "amx_int8"},
    "zen4": {"avx2", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"},
    "no simd": {"sse2"},
}


@pytest.mark.parametrize("cpu, openvino, large, small", [
    ("avx2 only", True, "auto", "fp32"), ("avx512 vnni", True, "auto", "fp32"),
    ("sapphire rapids", True, "auto", "bf16"), ("zen4", True, "auto", "bf16"), ("no simd", True, "auto", "fp32"),
    ("avx2 only", False, "fp32", "fp32"), ("avx512 vnni", False, "fp32", "fp32"),
    ("sapphire rapids", False, "auto", "bf16"), ("zen4", False, "auto", "bf16"),
])
def test_auto_measures_large_jobs_and_takes_the_rule_on_small_ones(monkeypatch, cpu, openvino, large, small):
    monkeypatch.setattr(engine_module, "_cpu_flags", lambda: CPUS[cpu])
    monkeypatch.setattr(int8, "openvino_available", lambda: openvino)
    native_bf16 = cpu in ("sapphire rapids", "zen4")
    candidates = ["fp32"] + ["bf16"] * native_bf16 + ["int8"] * openvino
    assert engine_module.precision_candidates() == candidates
    precision, reason = choose_precision("auto", CPU, band_pixels=engine_module.MEASURE_MIN_BAND_PIXELS)
    assert precision == large and reason.startswith("auto: ")
    if large == "auto":
        assert reason == f"auto: {', '.join(candidates)} to be timed on the first tile"
        assert choose_precision("auto", CPU)[0] == "auto"  # size unknown: measured
    below = engine_module.MEASURE_MIN_BAND_PIXELS - 1
    precision, reason = choose_precision("auto", CPU, band_pixels=below)
    assert precision == small
    if len(candidates) > 1:
        assert reason == (f"auto: a job of {below:,} band-pixels is too small to repay timing "
                          f"{', '.join(candidates)}")


def _timed_engine(monkeypatch, seconds_per_trial, candidates, schedule="band"):
    """An engine on a CPU whose precisions take `seconds_per_trial[precision]` per trial run (None:
    the run raises, as a broken OpenVINO installation would)."""
    monkeypatch.setattr(engine_module, "precision_candidates", lambda: list(candidates))
    monkeypatch.setattr(engine_module, "_measured_precisions", {})
    runs = []

    def run(self, bands, order, table, chunk, state):
        precision = "int8" if self.int8_features is not None else "bf16" if self.dtype == torch.bfloat16 else "fp32"
        runs.append((precision, chunk))
        if seconds_per_trial[precision] is None:
            raise RuntimeError("Exception from src/inference: cannot compile\nstack")
        clock[0] += seconds_per_trial[precision]
        return None, None

    clock = [0.0]
    monkeypatch.setattr(engine_module.CoarseEngine, "_run", run)
    monkeypatch.setattr(engine_module.CoarseEngine, "_calibrate_int8", lambda *args: None)
    monkeypatch.setattr(engine_module.time, "perf_counter", lambda: clock[0])
    model = fold_weight_norm(CoarSR(CoarSRConfig(scale=2, n_feats=4, n_blocks=1))).eval()
    return lambda: CoarseEngine(model, CPU, "auto", schedule), runs


@pytest.mark.parametrize("seconds, expected, why", [
    ({"fp32": 1.0, "bf16": 0.4, "int8": 1.1}, "bf16", "the fastest"),
    ({"fp32": 1.0, "bf16": 1.2, "int8": 0.8}, "int8", "the fastest"),
    ({"fp32": 1.0, "bf16": 0.97, "int8": 1.3}, "fp32", "bf16 was fastest by less than 5%, within the noise of a run"),
    ({"fp32": 0.9, "bf16": 1.0, "int8": 1.3}, "fp32", "the fastest"),
])
def test_auto_keeps_the_fastest_measured_precision(monkeypatch, seconds, expected, why):
    make, runs = _timed_engine(monkeypatch, seconds, ["fp32", "bf16", "int8"])
    engine = make()
    assert engine.precision == "auto" and engine.needs_calibration
    order = [0, 1, 2]
    engine.calibrate(np.zeros((3, 8, 8), np.float32), order, neighbour_table(order))
    assert engine.precision == expected and not engine.needs_calibration
    # a warm-up each, then three interleaved rounds, band by band
    assert runs == [(p, 1) for p in ["fp32", "bf16", "int8"] * 4]
    figures = ", ".join(f"{p} {t:.2f} s ({seconds['fp32'] / t:.2f}x fp32)" for p, t in seconds.items())
    assert engine.precision_reason == (f"auto: chosen by measurement on {engine_module.PRECISION_TRIAL_BANDS} band(s) "
                                       f"of the first tile, best of 3: {figures}; {expected} is {why}")
    assert engine.dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)
    assert (engine.int8_features is not None) == (expected == "int8")


def test_a_candidate_that_fails_is_left_out_and_said(monkeypatch):
    make, runs = _timed_engine(monkeypatch, {"fp32": 1.0, "bf16": 0.9, "int8": None}, ["fp32", "bf16", "int8"],
                               schedule="batched")
    engine = make()
    order = list(range(6))
    engine.calibrate(np.zeros((6, 8, 8), np.float32), order, neighbour_table(order))
    assert engine.precision == "bf16" and engine.schedule == "batched"
    assert runs[:3] == [("fp32", 4), ("bf16", 4), ("int8", 4)] and ("int8", 4) not in runs[3:]
    assert engine.precision_reason == (
        "auto: chosen by measurement on 4 band(s) of the first tile, batched, best of 3: fp32 1.00 s (1.00x fp32), "
        "bf16 0.90 s (1.11x fp32), int8 left out (Exception from src/inference: cannot compile); bf16 is the fastest")


def test_auto_measures_once_per_process(monkeypatch):
    make, runs = _timed_engine(monkeypatch, {"fp32": 1.0, "bf16": 0.5}, ["fp32", "bf16"])
    order = [0, 1]
    first = make()
    first.calibrate(np.zeros((2, 8, 8), np.float32), order, neighbour_table(order))
    timed = len(runs)
    second = make()
    second.calibrate(np.zeros((2, 8, 8), np.float32), order, neighbour_table(order))
    assert len(runs) == timed, "the second engine of the process times nothing"
    assert second.precision == "bf16" and second.precision_reason.startswith(
        f"auto: chosen earlier in this process by measurement on {engine_module.PRECISION_TRIAL_BANDS} band(s)")


def test_int8_refusals_are_one_sentence(monkeypatch):
    with pytest.raises(InputError, match="PRECISION int8 runs on CPUs only"):
        choose_precision("int8", torch.device("cuda"))
    monkeypatch.setattr(int8, "openvino_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"PRECISION int8 needs the optional package OpenVINO: .*"
                                                     r"pip install openvino==2026\.4\.1"):
        choose_precision("int8", CPU)


def _cube(bands, size, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((bands, size // 4, size // 4)).astype(np.float32)
    cube = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # some structure for the network to work on
    return (0.05 + 0.35 * cube + 0.02 * rng.random(cube.shape)).astype(np.float32)


def _features_error_in_steps(model, cube):
    """RMS difference between the int8 and fp32 features, in rounding steps of the input of the
    last int8 convolution (the aggregation): rounding errors of a fraction of a step each, not a
    wrong scale or saturated sums (which give many steps)."""
    engine = CoarseEngine(model, CPU, "int8", "band")
    order = list(range(len(cube)))
    table = neighbour_table(order)
    engine.calibrate(cube, order, table)
    low, high = engine.int8_features.ranges["aggregate"]
    step = (max(high, 0) - min(low, 0)) / (int8.ACTIVATION_LEVELS - 1)
    t = torch.from_numpy(cube)
    x, g2, g3 = t[2:5].unsqueeze(1), t[table[2:5, 0]], t[table[2:5, 1]]
    quantized = engine.int8_features(x, g2, g3)[0]
    with torch.inference_mode():
        exact = engine.model.features(*(v.contiguous(memory_format=torch.channels_last) for v in (x, g2, g3)))[0]
    return float((quantized - exact).pow(2).mean().sqrt()) / step


@needs_openvino
@pytest.mark.parametrize("weights", ["random", "bundled x2"])
def test_int8_features_are_within_a_rounding_step_of_fp32(weights):
    torch.manual_seed(3)
    model = (load_model(None, 2)[0] if weights == "bundled x2"
             else fold_weight_norm(CoarSR(CoarSRConfig(2, n_feats=16, n_blocks=1))).eval())
    assert _features_error_in_steps(model, _cube(10, 40)) < 1.0


@needs_openvino
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="int8 convolutions checked on x86 CPUs only (AVX-512 VNNI, AVX2, SSE4.2)")
def test_the_compiled_features_run_their_quantized_convolutions_in_int8():
    """OpenVINO runs a FakeQuantize pattern it does not recognise as fp32 convolutions behind
    fake-quantize operations, slower than fp32, without a word: every convolution outside
    FP32_LAYERS must run in u8/i8 (on AVX2 too), the others in f32 (not bf16)."""
    model = load_model(None, 2)[0]
    engine = CoarseEngine(model, CPU, "int8", "band")
    order = list(range(4))
    engine.calibrate(_cube(4, 24), order, neighbour_table(order))
    precisions = []
    for op in engine.int8_features.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in ("Convolution", "GroupConvolution"):
            precision = info["runtimePrecision"].astype(str)
            precisions.append("int8" if precision in ("u8", "i8") else precision)
    kept = [name for name in engine.int8_features.ranges if name.startswith(int8.FP32_LAYERS)]
    quantized = len(engine.int8_features.ranges) - len(kept)
    assert sorted(precisions) == sorted(["f32"] * len(kept) + ["int8"] * quantized)


@needs_openvino
def test_int8_follows_fp32_with_either_schedule():
    model = load_model(None, 2)[0]
    cube = _cube(12, 36, seed=1)
    order = list(range(12))
    table = neighbour_table(order)
    fp32 = CoarseEngine(model, CPU, "fp32", "band").run(cube, order, table)
    residual = np.sqrt(np.mean((fp32 - CoarseEngine(model, CPU, "fp32").bicubic(cube)) ** 2))
    outputs = {}
    for schedule in ("band", "batched"):
        engine = CoarseEngine(model, CPU, "int8", schedule, band_chunk=4)
        outputs[schedule] = engine.run(cube, order, table)
        assert engine.precision == "int8" and outputs[schedule].dtype == np.float32
        error = np.sqrt(np.mean((outputs[schedule] - fp32) ** 2))
        assert 0 < error < 0.1 * residual  # a tenth of what the network adds to bicubic
    np.testing.assert_allclose(outputs["batched"], outputs["band"], atol=1e-5)


def _psnr(reference, estimate):
    return 10 * np.log10(1.0 / np.mean((reference.astype(np.float64) - estimate) ** 2))


@needs_openvino
def test_int8_costs_at_most_0_05_db_on_a_real_enmap_tile():
    """The shipped EnMAP sample (64 x 64, 224 bands), downsampled x2 by block averaging, super-resolved
    with the bundled x2 weights in fp32 and in int8; PSNR against the sample on its valid bands."""
    from dualsr_core.io.raster import RasterReader
    from dualsr_core.tools.tiling import Region

    with RasterReader(SAMPLE) as reader:
        hr, valid = reader.read(Region(0, 0, reader.height, reader.width))
    good = valid.all(axis=(1, 2)) & (hr.max(axis=(1, 2)) > 0)
    hr = hr[good][::4]  # every fourth good band: 50 bands, enough for the statistic, quick
    lr = hr.reshape(len(hr), 32, 2, 32, 2).mean(axis=(2, 4))
    order = list(range(len(lr)))
    table = neighbour_table(order)
    model = load_model(None, 2)[0]
    fp32 = CoarseEngine(model, CPU, "fp32").run(lr, order, table)
    in_int8 = CoarseEngine(model, CPU, "int8").run(lr, order, table)
    change = _psnr(hr, np.clip(in_int8, 0, None)) - _psnr(hr, np.clip(fp32, 0, None))
    assert abs(change) <= 0.05
    assert np.abs(in_int8 - fp32).max() > 0  # it did run in int8


# Run in a process of its own: openvino sends its telemetry when first imported. Process starts and
# socket connects are recorded, not raised, since the telemetry thread swallows exceptions.
TELEMETRY_PROBE = r"""
import json, multiprocessing, socket, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
attempts = []

def refuse(what):
    def record(*_args, **_kwargs):
        attempts.append(what)
        raise OSError(what + " refused by the test")
    return record

multiprocessing.Process.start = refuse("a process")
socket.socket.connect = refuse("a socket")
from dualsr_core.network.engine import CoarseEngine
from dualsr_core.network.partition import neighbour_table
from dualsr_core.network.weights import load_model
engine = CoarseEngine(load_model(None, 2)[0], torch.device("cpu"), "int8")
order = list(range(6))
engine.calibrate(np.random.default_rng(0).random((6, 24, 24), np.float32), order, neighbour_table(order))
time.sleep(1)  # a telemetry thread would have tried by now
print(json.dumps({"calibrated": engine.int8_features.calibrated, "attempts": attempts}))
"""


@needs_openvino
@pytest.mark.parametrize("consent", [None, "1"], ids=["never asked", "opted in"])
def test_int8_sends_no_telemetry_unless_the_user_opted_in(tmp_path, consent):
    """Importing openvino sends usage telemetry to Intel, counting a user who never answered as
    consenting; the int8 path counts no answer as no, and leaves an explicit opt-in alone."""
    if consent is not None:
        (tmp_path / "intel").mkdir()
        (tmp_path / "intel" / "openvino_telemetry").write_text(consent)
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", TELEMETRY_PROBE, str(ROOT)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["calibrated"]
    if consent is None:
        assert result["attempts"] == []
        assert not (tmp_path / "intel").exists()  # not even a client id written
    else:
        assert result["attempts"]  # the probe sees telemetry where the user asked for it
