"""CoarSR network: sizes from docs/method.md#network-size, shapes, weight-norm folding, receptive radius, schedules."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dualsr_core.network import engine as engine_module  # noqa: E402
from dualsr_core.network.engine import CoarseEngine  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig, add_weight_norm, fold_weight_norm  # noqa: E402
from dualsr_core.network.partition import neighbour_table  # noqa: E402
from dualsr_core.tools.resize import pil_weights  # noqa: E402


@pytest.mark.parametrize("scale, expected", [(2, 2233628), (3, 2418588), (4, 2381596), (8, 2529564)])
def test_parameter_count_matches_the_method_inventory(scale, expected):
    model = CoarSR(CoarSRConfig(scale))
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("options, message", [
    (dict(precision="fp16"), "PRECISION is 'fp16' but must be one of auto, fp32, bf16, int8."),
    (dict(schedule="fast"), "SCHEDULE is 'fast' but must be one of auto, band, batched."),
    (dict(band_chunk=0), "BAND_CHUNK is 0 but must be a whole number of at least 1."),
])
def test_engine_options_are_refused_in_one_sentence_naming_the_parameter(options, message):
    from dualsr_core.errors import InputError

    model = fold_weight_norm(CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1))).eval()
    with pytest.raises(InputError) as info:
        CoarseEngine(model, torch.device("cpu"), **{"precision": "fp32", "schedule": "band", **options})
    assert str(info.value) == message


def test_unsupported_scale_is_refused():
    with pytest.raises(ValueError, match="scale 5 is not supported"):
        CoarSRConfig(5)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_shapes(scale):
    model = CoarSR(CoarSRConfig(scale, n_feats=8, n_blocks=1))
    x = torch.rand(2, 1, 6, 7)
    y, state = model(x, torch.rand(2, 3, 6, 7), torch.rand(2, 3, 6, 7), torch.zeros(2, 1, 6 * scale, 7 * scale))
    assert y.shape == (2, 1, 6 * scale, 7 * scale)
    assert state.shape == (2, 8, 6, 7)
    y2, _ = model(x, torch.rand(2, 3, 6, 7), torch.rand(2, 3, 6, 7), torch.zeros(2, 1, 6 * scale, 7 * scale), state)
    assert y2.shape == y.shape


def test_bicubic_skip_is_added_unchanged():
    torch.manual_seed(0)
    model = CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1)).eval()
    x, g = torch.rand(1, 1, 5, 5), torch.rand(1, 3, 5, 5)
    bic = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        y0, _ = model(x, g, g, torch.zeros_like(bic))
        y1, _ = model(x, g, g, bic)
    assert torch.allclose(y1 - y0, bic, atol=1e-6)


def test_folding_weight_norm_keeps_outputs():
    torch.manual_seed(1)
    model = CoarSR(CoarSRConfig(4, n_feats=8, n_blocks=2)).eval()
    for p in model.parameters():  # move g away from the initial norm so folding has work to do
        p.data.add_(0.05 * torch.randn_like(p))
    args = (torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.rand(1, 1, 32, 32))
    with torch.no_grad():
        before, _ = model(*args)
        fold_weight_norm(model)
        after, _ = model(*args)
        add_weight_norm(model)
        again, _ = model(*args)
    assert not any("parametrizations" in k for k in fold_weight_norm(model).state_dict())
    assert torch.allclose(before, after, atol=1e-5)
    assert torch.allclose(before, again, atol=1e-5)


@pytest.mark.parametrize("scale, n_blocks", [(2, 1), (3, 1), (4, 1), (2, 2)])
def test_receptive_radius_bounds_the_influence_of_a_pixel(scale, n_blocks):
    config = CoarSRConfig(scale, n_feats=8, n_blocks=n_blocks)
    torch.manual_seed(2)
    model = CoarSR(config, weight_normed=False).eval()
    size, r = 64, config.receptive_radius
    x = torch.rand(1, 1, size, size)
    g = torch.rand(1, 3, size, size)
    bic = torch.zeros(1, 1, scale * size, scale * size)
    with torch.no_grad():
        base, _ = model(x, g, g, bic)
        x2 = x.clone()
        x2[..., 0, 0] += 1.0
        moved, _ = model(x2, g, g, bic)
    rows, cols = np.nonzero(((moved - base).abs()[0, 0] > 0).numpy())
    # in input pixels: within the radius, and reaching at least its last pixel but one (x4's second
    # sub-pixel stage counts a whole input pixel for half of one)
    reach = max(rows.max(), cols.max()) // scale
    assert r - 1 <= reach <= r


@pytest.mark.parametrize("post_ops", [True, False], ids=["fused", "separate"])
def test_prepared_engine_schedules_equal_the_plain_model(post_ops):
    # fused: ReLUs and additions inside oneDNN's convolutions (CPU); separate: as on CUDA
    torch.manual_seed(3)
    model = CoarSR(CoarSRConfig(4, n_feats=16, n_blocks=2))
    with torch.no_grad():  # learned scalars away from their initial ones, so folding them is tested
        for name, p in model.named_parameters():
            p.add_(0.3 * torch.randn_like(p) if name.endswith(("gamma", "beta", "rho")) else 0.01 * torch.randn_like(p))
    model = fold_weight_norm(model).eval()
    cube = np.random.default_rng(0).random((11, 12, 10)).astype(np.float32)
    order = list(range(11))
    table = neighbour_table(order)
    device = torch.device("cpu")
    engines = [CoarseEngine(model, device, "fp32", "band"),
               CoarseEngine(model, device, "fp32", "batched", band_chunk=4)]
    assert all(engine.model.use_post_ops(post_ops) == post_ops for engine in engines)
    band, batched = (engine.run(cube, order, table) for engine in engines)
    # plain reference loop written here: one band at a time through forward()
    state, plain = None, []
    wy = torch.from_numpy(pil_weights(12, 48).toarray()).float()
    wx = torch.from_numpy(pil_weights(10, 40).toarray()).float()
    with torch.no_grad():
        t = torch.from_numpy(cube)
        for i in order:
            bic = (wy @ t[i] @ wx.T)[None, None]
            y, state = model(t[i][None, None], t[table[i, 0]][None], t[table[i, 1]][None], bic, state)
            plain.append(y[0, 0].numpy())
    assert np.abs(band - np.stack(plain)).max() < 1e-5
    assert np.abs(batched - np.stack(plain)).max() < 1e-5


@pytest.mark.parametrize("band_s, batched_s, chosen", [
    ([1.0, 1.2, 1.0], [0.75, 0.76, 1.3], "band"),     # batched somewhat faster: not worth its memory
    ([1.0, 1.0, 1.1], [0.6, 0.65, 0.62], "batched"),  # clearly faster
    ([0.9, 0.9, 0.9], [1.0, 1.0, 1.0], "band"),
    ([2.0, 1.0, 1.0], [1.0, 1.0, 1.0], "band"),       # one slowed band trial does not decide
])
def test_auto_schedule_takes_batched_only_when_clearly_faster(monkeypatch, band_s, batched_s, chosen):
    model = fold_weight_norm(CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1))).eval()
    engine = CoarseEngine(model, torch.device("cpu"), "fp32", "auto", band_chunk=4)
    # start and end of each trial, band then batched, repeated
    clock = iter([t for pair in zip(band_s, batched_s) for seconds in pair for t in (0.0, seconds)])
    monkeypatch.setattr(engine_module.time, "perf_counter", lambda: next(clock))
    cube = np.random.default_rng(5).random((6, 8, 8)).astype(np.float32)
    order = list(range(6))
    engine.run(cube, order, neighbour_table(order))
    assert engine.schedule == chosen
    assert f"schedule '{chosen}' chosen by measurement on 4 bands" in engine.calibration
    assert next(clock, None) is None  # every trial was timed


def test_calibrate_settles_the_schedule_before_the_first_run(monkeypatch):
    model = fold_weight_norm(CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1))).eval()
    engine = CoarseEngine(model, torch.device("cpu"), "fp32", "auto", band_chunk=4)
    clock = iter([0.0, 1.0, 0.0, 0.5] * 3)  # batched twice as fast
    monkeypatch.setattr(engine_module.time, "perf_counter", lambda: next(clock))
    cube = np.random.default_rng(6).random((6, 8, 8)).astype(np.float32)
    order = list(range(6))
    engine.calibrate(cube, order, neighbour_table(order))
    assert engine.schedule == "batched"
    engine.run(cube, order, neighbour_table(order))  # no second timing: the clock is used up
    assert engine.schedule == "batched"


needs_bf16 = pytest.mark.skipif(not engine_module.cpu_runs_bf16(),
                                reason="this CPU cannot run bf16 convolutions (AVX2 only)")


@needs_bf16
def test_bf16_engine_follows_fp32_with_either_schedule():
    torch.manual_seed(4)
    model = fold_weight_norm(CoarSR(CoarSRConfig(2, n_feats=16, n_blocks=2))).eval()
    cube = np.random.default_rng(2).random((9, 20, 18)).astype(np.float32)
    order = list(range(9))
    table = neighbour_table(order)
    device = torch.device("cpu")
    fp32 = CoarseEngine(model, device, "fp32", "band").run(cube, order, table)
    for schedule in ("band", "batched"):
        bf16 = CoarseEngine(model, device, "bf16", schedule, band_chunk=4).run(cube, order, table)
        assert bf16.dtype == np.float32
        assert 0 < np.abs(bf16 - fp32).max() < 0.02


@pytest.mark.gpu
@pytest.mark.parametrize("precision, tolerance", [("fp32", 5e-3), ("bf16", 0.02)])
def test_engine_on_cuda_follows_the_cpu_with_either_schedule(cuda, precision, tolerance):
    """The bundled x2 network on CUDA against the CPU in fp32; CUDA's fp32 convolutions may run in
    TF32 (10-bit mantissa, as bf16 has 7), hence a tolerance rather than equality."""
    from dualsr_core.network.weights import load_model

    cube = (0.05 + 0.4 * np.random.default_rng(5).random((12, 40, 36))).astype(np.float32)
    order = list(range(12))
    table = neighbour_table(order)
    cpu = CoarseEngine(load_model(None, 2)[0], torch.device("cpu"), "fp32", "band").run(cube, order, table)
    for schedule in ("band", "batched"):
        gpu = CoarseEngine(load_model(None, 2)[0], cuda, precision, schedule, band_chunk=5).run(cube, order, table)
        assert gpu.dtype == np.float32 and gpu.shape == cpu.shape
        assert np.abs(gpu - cpu).max() < tolerance, schedule


@needs_bf16
def test_bf16_changes_only_the_residual_not_the_skip_image():
    # With a zero residual the output is the skip image; in bf16 it must keep fp32 resolution.
    model = CoarSR(CoarSRConfig(2, n_feats=8, n_blocks=1))
    with torch.no_grad():
        model.last.parametrizations.weight.original0.zero_()
        model.last.bias.zero_()
    model = fold_weight_norm(model).eval()
    cube = (0.3 + 0.01 * np.random.default_rng(1).random((5, 9, 9))).astype(np.float32)
    order = list(range(5))
    fp32 = CoarseEngine(model, torch.device("cpu"), "fp32", "band").run(cube, order, neighbour_table(order))
    bf16 = CoarseEngine(model, torch.device("cpu"), "bf16", "band").run(cube, order, neighbour_table(order))
    assert np.abs(bf16 - fp32).max() < 1e-6


def test_bf16_on_a_cpu_that_cannot_run_it_is_one_sentence(monkeypatch):
    from dualsr_core.errors import InputError

    monkeypatch.setattr(engine_module, "_cpu_flags", lambda: {"avx", "avx2", "fma"})
    monkeypatch.setattr(engine_module.int8, "openvino_available", lambda: False)  # auto would time int8
    with pytest.raises(InputError, match="PRECISION bf16 needs a CUDA GPU or a CPU with AVX-512"):
        engine_module.choose_precision("bf16", torch.device("cpu"))[0]
    assert engine_module.choose_precision("auto", torch.device("cpu"))[0] == "fp32"
    monkeypatch.setattr(engine_module, "_cpu_flags", lambda: {"avx512bw", "avx512vl", "avx512dq", "avx512_bf16"})
    assert engine_module.choose_precision("bf16", torch.device("cpu"))[0] == "bf16"
    assert engine_module.choose_precision("auto", torch.device("cpu"), band_pixels=10**6)[0] == "bf16"
