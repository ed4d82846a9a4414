"""make bench: inference speed and memory, printed as tables (nothing is asserted).

1. the machine's conv peak: one 3x3 64->64 convolution on 128x128 (fp32 NCHW, fp32 channels-last,
   bf16 channels-last where the CPU runs bf16, int8 through OpenVINO where it is installed), under
   the allocator settings of a run (dualsr_core/network/allocator.py);
2. FLOPs per low-resolution pixel per band (torch's FLOP counter) of the shipped weights and of the
   paper configuration;
3. BANDS bands of 128x128 at x4 with the paper configuration and random weights: the plain
   band-by-band model (as the reference runs it: weight norm live, fp32, NCHW; once more with only
   the allocator settings of a run) against the project's engine in fp32, bf16 and int8 with each
   schedule: seconds, GFLOP/s, fraction of the matching conv peak, speed-up and max abs difference
   to the plain model;
4. seconds and peak RSS of dualsr:coarse through qgis_process for growing rasters and band counts,
   each case twice, and precision auto against fp32;
5. the projected time of a 1000 x 1000 x 224 scene with each shipped weights file (x2, x3, x4);
6. scenes per minute of `python -m dualsr_core batch` (Dask LocalCluster) with 1 and 2 workers, and
   of the same scenes one after the other in one process without Dask;
7. the int8 runtimes side by side, each in a process of its own: torch, OpenVINO and ONNX Runtime
   (where installed), fp32 and int8;
8. peak RSS of dualsr:coarse per precision on the smallest and the largest of --sizes (8 bands).

Compared runs are interleaved and medians are quoted: this machine is noisy run to run.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dualsr_core.network.torch_support import select_device, usable_cores  # noqa: E402
from dualsr_core.network.allocator import reuse_large_blocks  # noqa: E402
from dualsr_core.stages.coarse import DEFAULT_TILE  # noqa: E402
from dualsr_core.network import int8  # noqa: E402
from dualsr_core.network.engine import CoarseEngine, cpu_fast_int8, cpu_has_fast_bf16, cpu_runs_bf16  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig, fold_weight_norm  # noqa: E402
from dualsr_core.network.partition import neighbour_table  # noqa: E402
from dualsr_core.tools.resize import pil_weights  # noqa: E402
from dualsr_core.tools.tiling import network_cells  # noqa: E402
from dualsr_core.network.weights import BUNDLED_DIR, load_model  # noqa: E402

PAPER = CoarSRConfig(4, 64, 2, 2)


def median_time(functions: dict, repeats: int) -> dict:
    """Median seconds of each function, calling them in turn (interleaved) `repeats` times."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def conv_peak(repeats: int) -> dict:
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    conv_cl = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 64, 128, 128)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 128 * 128

    def run(module, tensor, bf16, n=10):
        def go():
            with reuse_large_blocks(), torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                for _ in range(n):
                    module(tensor)
        return go

    runs = {"fp32 NCHW": run(conv, x, False), "fp32 channels-last": run(conv_cl, x_cl, False)}
    if cpu_runs_bf16():
        runs["bf16 channels-last"] = run(conv_cl, x_cl, True)
    if int8.openvino_available():
        runs["int8 OpenVINO"] = int8_conv(conv, x)
    for go in runs.values():
        go()
    seconds = median_time(runs, repeats)
    return {name: 10 * flops / s / 1e9 for name, s in seconds.items()}


def int8_conv(conv: torch.nn.Conv2d, x: torch.Tensor, n: int = 10):
    """The same convolution in int8 through OpenVINO, `n` times in a chain within one model (input and
    weights fake-quantized, as the engine quantizes): inside a network an int8 convolution reads the
    int8 output of the one before, where a lone call would be timed converting its input and output."""
    class Chain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = int8._QuantizedConv(conv, 0.0, 1.0)

        def forward(self, tensor):
            for _ in range(n):
                tensor = torch.sigmoid(self.conv(tensor))  # stays in [0, 1], the calibrated range
            return tensor

    request = int8.compile_for_cpu(Chain().eval(), (x,), torch.get_num_threads()).create_infer_request()
    values = x.numpy()
    return lambda: request.infer([values])


def cpu_precisions() -> list[str]:
    """The precisions this CPU runs: fp32, bf16 where oneDNN runs it, int8 where OpenVINO is installed."""
    return ["fp32"] + ["bf16"] * cpu_runs_bf16() + ["int8"] * int8.openvino_available()


def flops_per_pixel(config: CoarSRConfig) -> float:
    model = fold_weight_norm(CoarSR(config)).eval()
    h = w = 32
    args = (torch.rand(1, 1, h, w), torch.rand(1, 3, h, w), torch.rand(1, 3, h, w),
            torch.rand(1, 1, h * config.scale, w * config.scale), torch.rand(1, config.n_feats, h, w))
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(*args)
    return counter.get_total_flops() / (h * w)


def plain_band_by_band(model: CoarSR, cube: np.ndarray, table: np.ndarray, scale: int) -> np.ndarray:
    """The reference way: one band after the other through forward(), fp32, NCHW, weight norm live."""
    h, w = cube.shape[1:]
    wy = torch.from_numpy(pil_weights(h, h * scale).toarray()).float()
    wx = torch.from_numpy(pil_weights(w, w * scale).toarray()).float()
    bands = torch.from_numpy(cube)
    out, state = [], None
    with torch.no_grad():
        for i in range(cube.shape[0]):
            y, state = model(bands[i][None, None], bands[table[i, 0]][None], bands[table[i, 1]][None],
                             (wy @ bands[i] @ wx.T)[None, None], state)
            out.append(y[0, 0].numpy())
    return np.stack(out)


def run_engine(engine: CoarseEngine, cube: np.ndarray, order: list, table: np.ndarray) -> np.ndarray:
    """The engine as super_resolve runs it: with the allocator settings of a run (allocator.py)."""
    with reuse_large_blocks():
        return engine.run(cube, order, table)


def engine_table(n_bands: int, repeats: int, peaks: dict):
    torch.manual_seed(0)
    live = CoarSR(PAPER).eval()  # weight norm live, as the reference runs it
    folded = fold_weight_norm(CoarSR(PAPER))
    folded.load_state_dict(_folded_state(live))
    cube = np.random.default_rng(0).random((n_bands, 128, 128), dtype=np.float32)
    order = list(range(n_bands))
    table = neighbour_table(order)
    device = torch.device("cpu")
    engines = {f"engine {p} {s}": CoarseEngine(folded, device, p, s, band_chunk=8)
               for p in cpu_precisions() for s in ("band", "batched")}
    results = {}
    runs = {"plain band-by-band": lambda: results.__setitem__("plain", plain_band_by_band(live, cube, table, 4))}

    def plain_reusing_blocks():  # the allocator settings alone, without the engine
        with reuse_large_blocks():
            results["plain, allocator"] = plain_band_by_band(live, cube, table, 4)
    runs["plain, allocator"] = plain_reusing_blocks
    for name, engine in engines.items():
        runs[name] = (lambda n=name, e=engine: results.__setitem__(n, run_engine(e, cube, order, table)))
    seconds = median_time(runs, repeats)
    flops = flops_per_pixel(PAPER) * 128 * 128 * n_bands
    print(f"\n3. {n_bands} bands of 128 x 128 at x4, paper configuration (64 features, 2 blocks, 2 ASFMs), "
          f"random weights, {flops / 1e9:.0f} GFLOP; median of {repeats} interleaved runs")
    print(f"{'run':28s} {'seconds':>8s} {'GFLOP/s':>8s} {'of peak':>8s} {'speed-up':>8s} {'max |diff|':>10s}")
    for name, s in seconds.items():
        peak = (peaks["bf16 channels-last"] if "bf16" in name else peaks["int8 OpenVINO"] if "int8" in name
                else peaks["fp32 channels-last"] if "engine" in name else peaks["fp32 NCHW"])
        diff = 0.0 if name == "plain band-by-band" else float(np.abs(results[name] - results["plain"]).max())
        rate = flops / s / 1e9
        print(f"{name:28s} {s:8.2f} {rate:8.1f} {rate / peak:8.0%} {seconds['plain band-by-band'] / s:8.2f} "
              f"{diff:10.2e}")
    return seconds


def _folded_state(model: CoarSR) -> dict:
    copy = CoarSR(model.config)
    copy.load_state_dict(model.state_dict())
    return fold_weight_norm(copy).state_dict()


def write_cube(path: Path, bands: int, size: int, interleave: str = "band"):
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(1)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=bands, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(300000, 5800000, 30, 30), tiled=True,
                       compress="deflate", interleave=interleave) as ds:
        for b in range(bands):
            ds.write((rng.random((size, size)) * 3000 + 1000).astype("uint16"), b + 1)


def qgis_runs(sizes: list[int], band_counts: list[int], tile: int, scale: int):
    print(f"\n4. dualsr:coarse through qgis_process, x{scale}, tile {tile}, bundled weights, precision auto "
          "unless marked fp32, each case twice (peak RSS must repeat); uint16 GeoTIFF input, band-interleaved "
          "unless marked 'pixel' (a pixel-interleaved file stores every band in each block, so its block cache "
          "grows with the band count)")
    print("   (start-up: a 16 x 16 x 8 input, whose time is subtracted in the last column)")
    print(f"{'input':>24s} {'seconds':>8s} {'peak RSS MB':>12s} {'us / LR px / band':>18s} {'start-up excluded':>18s}")
    cases = [(16, 8, "band", "auto")] + [(s, band_counts[0], "band", "auto") for s in sizes]
    cases += [(sizes[0], b, "band", "auto") for b in band_counts[1:]] + [(sizes[0], band_counts[-1], "pixel", "auto")]
    cases += [(sizes[0], band_counts[0], "band", "fp32")]
    cases = [case for case in cases for _ in range(2 if case[0] > 16 else 1)]
    start_up = 0.0
    seconds_of = {}
    with tempfile.TemporaryDirectory() as folder:
        for size, bands, interleave, precision in cases:
            src = Path(folder) / f"in_{size}_{bands}_{interleave}.tif"
            write_cube(src, bands, size, interleave)
            seconds, rss_mb = qgis_coarse(src, Path(folder) / "out.tif", scale, tile, precision)
            start_up = start_up or seconds
            per = seconds / (size * size * bands) * 1e6
            net = (seconds - start_up) / (size * size * bands) * 1e6
            name = f"{size}x{size}x{bands}" + (" pixel" if interleave == "pixel" else "") + (
                " fp32" if precision == "fp32" else "")
            print(f"{name:>24s} {seconds:8.1f} {rss_mb:12.0f} {per:18.3f} {net:18.3f}")
            seconds_of.setdefault((size, bands, interleave, precision), []).append(seconds - start_up)
            src.unlink()
    auto, fp32 = (min(seconds_of[(sizes[0], band_counts[0], "band", p)]) for p in ("auto", "fp32"))
    print(f"   {sizes[0]}x{sizes[0]}x{band_counts[0]}: precision auto {fp32 / auto:.2f} times as fast as fp32 "
          "(start-up excluded, best of two)")


def qgis_coarse(src: Path, out: Path, scale: int, tile: int, precision: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `dualsr:coarse` run through qgis_process, measured from a
    parent process of its own (RUSAGE_CHILDREN holds the largest child's peak). The output is removed."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "r.returncode); sys.stderr.write(r.stdout[-2000:] if r.returncode else '')")
    command = [sys.executable, "-c", probe, "qgis_process.bin", "run", "dualsr:coarse", "--", f"INPUT={src}",
               f"SCALE={scale}", f"TILE_SIZE={tile}", f"PRECISION={precision}", f"OUTPUT={out}"]
    done = subprocess.run(command, capture_output=True, text=True)
    seconds, rss_kb, code = done.stdout.split()
    if code != "0":
        print(done.stderr)
    out.unlink(missing_ok=True)
    return float(seconds), int(rss_kb) / 1024


def memory_by_precision(sizes: list[int], bands: int, tile: int, scale: int):
    """Peak RSS of the same run at the smallest and the largest size, per precision: every read of a
    raster at least one tile large is one tile, so the two should be close (docs/benchmarks.md#memory)."""
    precisions = cpu_precisions() + ["auto"]
    small, large = min(sizes), max(sizes)
    print(f"\n8. peak RSS per precision, dualsr:coarse x{scale} through qgis_process, tile {tile}, {bands} bands, "
          f"{small} x {small} against {large} x {large} (uint16 GeoTIFF, band-interleaved)")
    print(f"{'precision':>10s} {'small s':>8s} {'small MB':>9s} {'large s':>8s} {'large MB':>9s} "
          f"{'large / small':>14s}")
    with tempfile.TemporaryDirectory() as folder:
        sources = {size: Path(folder) / f"in_{size}.tif" for size in (small, large)}
        for size, src in sources.items():
            write_cube(src, bands, size)
        for precision in precisions:
            (s_small, m_small), (s_large, m_large) = (qgis_coarse(sources[size], Path(folder) / "out.tif", scale,
                                                                  tile, precision) for size in (small, large))
            print(f"{precision:>10s} {s_small:8.1f} {m_small:9.0f} {s_large:8.1f} {m_large:9.0f} "
                  f"{m_large / m_small:14.2f}")


def projections(repeats: int, tile: int):
    print(f"\n5. projected time of a 1000 x 1000 x 224 scene (one {tile} x {tile} tile of 8 bands measured, "
          "overlap included)")
    print(f"{'weights':24s} {'config':18s} {'precision':9s} {'s / tile-band':>13s} {'projected':>10s}")
    files = sorted(BUNDLED_DIR.glob("coarsr_x*.pt"))
    cube = np.random.default_rng(0).random((8, tile, tile), dtype=np.float32)
    order = list(range(8))
    table = neighbour_table(order)
    for path in files:
        model, header = load_model(path, int(path.stem.split("x")[-1]))
        overlap = model.config.receptive_radius
        tiles = len(network_cells(1000, tile, overlap)) ** 2
        for precision in cpu_precisions():
            engine = CoarseEngine(model, torch.device("cpu"), precision, "band")
            engine.calibrate(cube, order, table)  # int8: ranges and compilation, once per run
            run_engine(engine, cube[:2], [0, 1], neighbour_table([0, 1]))
            s = median_time({"run": lambda e=engine: run_engine(e, cube, order, table)}, repeats)["run"] / 8
            total = s * tiles * 224
            config = f"{header['n_feats']} feat, {header['n_blocks']} blk"
            print(f"{path.name:24s} {config:18s} {precision:9s} {s:13.3f} {total / 60:8.1f} min")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bands", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--band-counts", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile size (default: the product default)")
    parser.add_argument("--sections", default="12345678", help="which sections to run, e.g. 45")
    parser.add_argument("--batch-scenes", type=int, default=8,
                        help="section 6: how many scenes (--batch-side squared, the first of --band-counts bands)")
    parser.add_argument("--batch-side", type=int, default=128, help="section 6: scene side in pixels")
    args = parser.parse_args()
    select_device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads ({usable_cores()} usable cores), "
          f"fast bf16: {cpu_has_fast_bf16()}, fast int8 (VNNI or AMX): {cpu_fast_int8()}, CPU: {_cpu_name()}")
    if "1" in args.sections or "3" in args.sections:
        peaks = conv_peak(max(5, args.repeats))
        print("\n1. conv peak, 3x3 64->64 on 128x128 (GFLOP/s)")
        for name, value in peaks.items():
            print(f"   {name:20s} {value:7.1f}")
    if "2" in args.sections:
        flop_table()
    if "3" in args.sections:
        engine_table(args.bands, args.repeats, peaks)
    if "4" in args.sections:
        qgis_runs(args.sizes, args.band_counts, args.tile, 2)
    if "5" in args.sections:
        projections(args.repeats, args.tile)
    if "6" in args.sections:
        batch_throughput(args.batch_scenes, args.batch_side, args.band_counts[0], args.tile)
    if "7" in args.sections:
        int8_runtimes(args.repeats)
    if "8" in args.sections:
        memory_by_precision(args.sizes, 8, args.tile, 2)


RUNTIMES = ("torch fp32 (engine)", "OpenVINO fp32", "OpenVINO int8", "ONNX Runtime fp32", "ONNX Runtime int8 QDQ")


def int8_runtimes(repeats: int):
    """OpenVINO and ONNX Runtime side by side: the bundled x2 weights' `features` on one band of a
    default tile (overlap included). Each runtime is timed in a fresh process of its own, in turn,
    `repeats` rounds: in one process the thread pools of two runtimes (torch's OpenMP, OpenVINO's
    TBB) spin against each other and slow whichever runs next."""
    import concurrent.futures
    import multiprocessing

    side = DEFAULT_TILE
    times = {name: [] for name in RUNTIMES}
    notes = {}
    context = multiprocessing.get_context("spawn")
    for _ in range(repeats):
        for name in RUNTIMES:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                seconds, note = pool.submit(_runtime_seconds, name, side).result()
            if seconds is None:
                notes[name] = note
            else:
                times[name].append(seconds)
    print(f"\n7. int8 runtimes: bundled x2 features on one band of {side} x {side}, {torch.get_num_threads()} "
          f"threads, each runtime in a process of its own, median of 5 runs, best of {repeats} processes")
    base = min(times[RUNTIMES[0]])
    for name in RUNTIMES:
        if times[name]:
            print(f"   {name:22s} {min(times[name]):7.3f} s  {base / min(times[name]):5.2f} x torch fp32")
        else:
            print(f"   {name:22s} not measured: {notes[name]}")


def _runtime_seconds(name: str, side: int):
    """(median seconds of 5 runs after 3 warm-ups, None) for one runtime, or (None, why not)."""
    select_device("cpu")
    model, _ = load_model(BUNDLED_DIR / "coarsr_x2.pt", 2)
    engine = CoarseEngine(model, torch.device("cpu"), "fp32", "band")
    rng = np.random.default_rng(0)
    x, g2, g3 = (torch.from_numpy((0.05 + 0.3 * rng.random((1, c, side, side))).astype(np.float32)) for c in (1, 3, 3))
    ranges = int8.input_ranges(engine.model, x, g2, g3)
    feed = [t.numpy() for t in (x, g2, g3)]
    threads = torch.get_num_threads()
    if name.startswith("torch"):
        inputs = [t.contiguous(memory_format=torch.channels_last) for t in (x, g2, g3)]

        def run():
            return engine.model.features(*inputs)
    elif name.startswith("OpenVINO"):
        if not int8.openvino_available():
            return None, "OpenVINO is not installed"
        module = int8._Features(int8.fake_quantized(engine.model, ranges if "int8" in name else {})).eval()
        request = int8.compile_for_cpu(module, (x, g2, g3), threads).create_infer_request()

        def run():
            return request.infer(feed)
    else:
        try:
            import onnxruntime
            from onnxruntime import quantization  # needs the onnx package
        except ImportError as exc:
            return None, str(exc)
        names = ["x", "g2", "g3"]
        inputs = dict(zip(names, feed))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fp32.onnx"
            torch.onnx.export(int8._Features(int8.fake_quantized(engine.model, {})).eval(), (x, g2, g3), path,
                              input_names=names, opset_version=17, dynamo=False)
            if "int8" in name:  # ONNX Runtime's own static quantization: QDQ, per-channel 7-bit s8, u8
                class Calibration(quantization.CalibrationDataReader):
                    def __init__(self):
                        self.batches = iter([inputs])

                    def get_next(self):
                        return next(self.batches, None)

                quantized = Path(folder) / "int8.onnx"
                quantization.quantize_static(path, quantized, Calibration(), quant_format=quantization.QuantFormat.QDQ,
                                             per_channel=True, reduce_range=True,
                                             activation_type=quantization.QuantType.QUInt8,
                                             weight_type=quantization.QuantType.QInt8)
                path = quantized
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run():
            return session.run(None, inputs)
    with torch.inference_mode():
        for _ in range(3):
            run()
        seconds = median_time({"run": run}, 5)["run"]
    return seconds, None


def batch_throughput(scenes: int, size: int, bands: int, tile: int):
    """Scenes per minute through the batch command (bundled x2 weights, precision auto) with 1 and 2
    local workers; 'run' excludes the cluster's start, 'wall' includes it and the workers' imports."""
    import io

    from dualsr_core.batch.runner import run_batch
    from dualsr_core.stages.coarse import super_resolve

    print(f"\n6. batch: {scenes} scenes of {size} x {size} x {bands} (uint16) at x2, tile {tile}, bundled weights, "
          "precision auto; scenes per minute")
    print(f"{'how':36s} {'run s':>7s} {'wall s':>7s} {'scenes/min (run)':>17s} {'scenes/min (wall)':>18s}")
    weights = ROOT / "weights" / "coarsr_x2.pt"  # the bundled x2 weights
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for k in range(scenes):
            write_cube(inputs / f"scene{k}.tif", bands, size)
        started = time.perf_counter()
        for k in range(scenes):
            super_resolve(inputs / f"scene{k}.tif", Path(folder) / f"one_{k}.tif", 2, weights=weights, tile_size=tile)
        seconds = time.perf_counter() - started
        print(f"{'one process, no Dask':36s} {seconds:7.1f} {seconds:7.1f} {60 * scenes / seconds:17.2f} "
              f"{60 * scenes / seconds:18.2f}")
        for workers in (1, 2):
            started = time.perf_counter()
            summary = run_batch([inputs], Path(folder) / f"out{workers}", 2, weights=weights, tile_size=tile,
                                workers=workers, progress_stream=io.StringIO())
            wall = time.perf_counter() - started
            assert summary["done"] == scenes, summary
            name = f"batch, {workers} worker(s) x {max(1, usable_cores() // workers)} core(s)"
            print(f"{name:36s} {summary['seconds']:7.1f} {wall:7.1f} {60 * scenes / summary['seconds']:17.2f} "
                  f"{60 * scenes / wall:18.2f}")


def flop_table():
    print("\n2. FLOPs per low-resolution pixel per band (torch FLOP counter, 1 FLOP = 1 multiply or add)")
    configs = {"paper (x4, 64/2/2)": PAPER}
    for path in sorted(BUNDLED_DIR.glob("coarsr_x*.pt")):
        model, _ = load_model(path, int(path.stem.split("x")[-1]))
        configs[path.name] = model.config
    for name, config in configs.items():
        print(f"   {name:24s} x{config.scale} {config.n_feats:3d} features {config.n_blocks} blocks "
              f"{flops_per_pixel(config) / 1e6:8.2f} MFLOP")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


if __name__ == "__main__":
    main()
