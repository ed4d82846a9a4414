"""make bench-quality: PSNR, SSIM, SAM and ERGAS of bicubic, DualSR Coarse and Coarse+Fine on the
validation windows of the fixed split (scripts/split.py), per scene and on average.

Each window's high-resolution truth is degraded by MATLAB's antialiased bicubic imresize (the
training degradation); the result is compared with the truth on good bands and valid pixels, as
reflectance with data range 1.0 (PSNR = 10 log10(1 / MSE)). "bicubic" is MATLAB's bicubic
upsampling of the low-resolution window. Coarse+Fine is reported for x4 (with the x2
weights for the reference) and for x2 and x3 (back-projection onto the input: x3 has no half-scale
network). Coarse runs in fp32; the PSNR change of bf16 is printed per scale (where the device runs
bf16 convolutions: oneDNN needs AVX512 or AVX-NE-CONVERT on a CPU), and that of int8 (on a CPU with
OpenVINO; calibrated on each window, as a run calibrates on its first tile). `--weights` measures
another folder of coarsr_x<scale>.pt files (candidates) instead of the bundled ones.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from dualsr_core.evaluation import metrics  # noqa: E402
from dualsr_core.network import int8, partition  # noqa: E402
from dualsr_core.tools import resize  # noqa: E402
from dualsr_core.network.torch_support import select_device  # noqa: E402
from dualsr_core.stages.fine import back_project  # noqa: E402
from dualsr_core.errors import InputError  # noqa: E402
from dualsr_core.network.engine import CoarseEngine  # noqa: E402
from dualsr_core.training.patches import validation_crop  # noqa: E402
from dualsr_core.io.scenes import load_scene  # noqa: E402
from dualsr_core.network.weights import load_model  # noqa: E402
from bench import flops_per_pixel  # noqa: E402
from train_weights import fixed_split_keeping_mtimes  # noqa: E402

METHODS = ("bicubic", "coarse", "coarse+fine")


def scores(hr, sr, mask, scale, good):
    hr, sr = hr[good].astype(np.float64), np.clip(sr[good], 0, None).astype(np.float64)
    return {"psnr": metrics.psnr(hr, sr, data_range=1.0, mask=mask),
            "ssim": metrics.ssim(hr, sr, data_range=1.0, mask=mask) if min(hr.shape[1:]) >= 11 else float("nan"),
            "sam": metrics.sam(hr, sr, mask=mask), "ergas": metrics.ergas(hr, sr, scale=scale, mask=mask)}


def super_resolve(engine, lr, order):
    out = np.zeros((lr.shape[0], lr.shape[1] * engine.scale, lr.shape[2] * engine.scale), np.float32)
    out[order] = engine.run(lr, list(order), partition.neighbour_table(list(order)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--weights", type=Path, default=ROOT / "weights",
                        help="folder of coarsr_x<scale>.pt files (default: the bundled weights)")
    parser.add_argument("--fp32-only", action="store_true",
                        help="skip the bf16 and int8 comparisons (int8 compiles once per window): a quicker "
                             "comparison of candidate weights")
    args = parser.parse_args()
    split = fixed_split_keeping_mtimes(args.data, ROOT / "build" / "weights" / "mosaics")
    if split is None:
        raise SystemExit(f"{args.data} does not hold the shared scenes (enmap_potsdam/...): no fixed validation split.")
    _, validation = split
    device = select_device("auto")
    scenes = {path: load_scene(path) for path, _ in validation}
    print("Data range 1.0 (reflectance). PSNR and SSIM: higher is better; SAM (degrees) and ERGAS: lower is better.")

    def weights_file(scale):
        return args.weights / f"coarsr_x{scale}.pt"

    for scale in args.scales:
        if not weights_file(scale).is_file():
            print(f"\nx{scale}: no weights ({weights_file(scale)}), skipped")
            continue
        model = load_model(weights_file(scale), scale)[0]  # each engine prepares its own copy
        flops = flops_per_pixel(model.config)
        engine = CoarseEngine(model, device, "fp32")
        bf16_error = ""
        try:
            engine_bf16 = None if args.fp32_only else CoarseEngine(model, device, "bf16")
            bf16_error = "--fp32-only"
        except InputError as exc:  # a CPU that cannot run bf16 convolutions (AVX2 only)
            engine_bf16, bf16_error = None, str(exc)
        measure_int8 = device.type == "cpu" and int8.openvino_available() and not args.fp32_only
        int8_changes = []
        half = None
        if scale in (4, 8) and weights_file(scale // 2).is_file():
            half = CoarseEngine(load_model(weights_file(scale // 2), scale // 2)[0], device, "fp32")
        bf16_changes = []
        rows = []
        for path, region in validation:
            scene = scenes[path]
            crop = validation_crop(scene, region, scale)
            lr, hr, mask, good = crop["lr"], crop["hr"], crop["mask"], scene.good_bands
            order = scene.order
            results = {"bicubic": resize.resize(lr, hr.shape[1:], "matlab"), "coarse": super_resolve(engine, lr, order)}
            if engine_bf16 is not None:
                try:
                    in_bf16 = scores(hr, super_resolve(engine_bf16, lr, order), mask, scale, good)["psnr"]
                    bf16_changes.append(in_bf16 - scores(hr, results["coarse"], mask, scale, good)["psnr"])
                except RuntimeError as exc:  # e.g. "bf16 path needs the cpu support ..." on AVX2 CPUs
                    engine_bf16, bf16_error = None, str(exc).splitlines()[0]
            if measure_int8:  # a new engine per window: calibrated on it, as a run calibrates on its first tile
                engine_int8 = CoarseEngine(model, device, "int8")
                in_int8 = scores(hr, super_resolve(engine_int8, lr, order), mask, scale, good)["psnr"]
                int8_changes.append(in_int8 - scores(hr, results["coarse"], mask, scale, good)["psnr"])
            if scale in (2, 3) or half is not None:
                reference = lr if scale in (2, 3) else super_resolve(half, lr, order)
                fine, _ = back_project(results["coarse"][good], reference[good], 1)
                results["coarse+fine"] = np.zeros_like(results["coarse"])
                results["coarse+fine"][good] = fine
            rows.append((scene.name, hr.shape[1:], {m: scores(hr, sr, mask, scale, good) for m, sr in results.items()}))
        print(f"\nx{scale} ({len(rows)} validation windows)")
        print(f"{'scene':28s} {'size':>9s} {'method':12s} {'PSNR':>7s} {'SSIM':>7s} {'SAM':>7s} {'ERGAS':>7s} "
              f"{'gain':>6s}")
        for name, shape, by_method in rows:
            for method, s in by_method.items():
                gain = s["psnr"] - by_method["bicubic"]["psnr"]
                print(f"{name:28s} {shape[0]:>4d}x{shape[1]:<4d} {method:12s} {s['psnr']:7.2f} {s['ssim']:7.4f} "
                      f"{s['sam']:7.3f} {s['ergas']:7.3f} {gain:+6.2f}")
        for method in METHODS:
            values = [r[2][method] for r in rows if method in r[2]]
            if values:
                mean = {k: float(np.nanmean([v[k] for v in values])) for k in values[0]}
                gain = mean["psnr"] - float(np.mean([r[2]["bicubic"]["psnr"] for r in rows if method in r[2]]))
                print(f"{'mean':28s} {'':9s} {method:12s} {mean['psnr']:7.2f} {mean['ssim']:7.4f} "
                      f"{mean['sam']:7.3f} {mean['ergas']:7.3f} {gain:+6.2f}")
        for method in ("coarse", "coarse+fine"):
            above = [f"{name} {m[method]['sam']:.3f} against {m['bicubic']['sam']:.3f}" for name, _, m in rows
                     if method in m and not m[method]["sam"] < m["bicubic"]["sam"]]
            if any(method in m for _, _, m in rows):
                print(f"{method.title()} SAM below bicubic on every window: {not above}"
                      + (f" (not on {'; '.join(above)})" if above else ""))
        fine_ok = all(r[2]["coarse+fine"]["psnr"] >= r[2]["coarse"]["psnr"] for r in rows if "coarse+fine" in r[2])
        print(f"Fine never below Coarse in PSNR: {fine_ok}")
        if engine_bf16 is not None:
            low, high = min(bf16_changes), max(bf16_changes)
            print(f"Coarse in bf16 instead of fp32: PSNR change {low:+.4f} to {high:+.4f} dB")
        else:
            print(f"Coarse in bf16: not measured on this device ({bf16_error})")
        if measure_int8:
            print(f"Coarse in int8 instead of fp32: PSNR change {min(int8_changes):+.4f} to "
                  f"{max(int8_changes):+.4f} dB (budget: within 0.05 dB on every window)")
        else:
            print("Coarse in int8: not measured (" + ("--fp32-only" if args.fp32_only else
                                                       "needs a CPU device and OpenVINO") + ")")
        print(f"Inference: {flops / 1e6:.3f} M FLOPs per low-resolution pixel and band")


if __name__ == "__main__":
    main()
