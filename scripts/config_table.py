"""The network-size table of weights/README.md: validation gain over bicubic against CPU speed.

Each configuration is trained at x2 for the same number of mini-batches with the shipped training
settings (scripts/train_weights.py) on the fixed split, and timed on one 128 x 128 tile of 16 bands
band by band in fp32 and bf16; the time of a 256 x 256 x 200 scene at x2 is projected from that.
Configurations too slow to train here are timed only.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import torch  # noqa: E402
from split import fixed_split  # noqa: E402
from train_weights import COMMON  # noqa: E402

from dualsr_core.network.engine import CoarseEngine  # noqa: E402
from dualsr_core.network.model import CoarSR, CoarSRConfig, fold_weight_norm  # noqa: E402
from dualsr_core.network.partition import neighbour_table  # noqa: E402
from dualsr_core.network.torch_support import select_device  # noqa: E402
from dualsr_core.training.trainer import train  # noqa: E402

TRAINED = [(32, 1), (48, 1), (64, 1), (32, 2)]
TIMED_ONLY = [(64, 2)]


def seconds_per_band(config: CoarSRConfig, precision: str) -> float:
    model = fold_weight_norm(CoarSR(config)).eval()
    engine = CoarseEngine(model, torch.device("cpu"), precision, "band")
    cube = np.random.default_rng(0).random((16, 128, 128), dtype=np.float32)
    order = list(range(16))
    engine.run(cube[:2], [0, 1], neighbour_table([0, 1]))
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        engine.run(cube, order, neighbour_table(order))
        runs.append((time.perf_counter() - start) / 16)
    return statistics.median(runs)


def fmt(value, digits: int) -> str:
    return "not trained" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    select_device("cpu")
    split = fixed_split(args.data, ROOT / "build" / "weights" / "mosaics")
    if split is None:
        raise SystemExit("the config table needs the shared data layout")
    scenes, validation = split
    rows = []
    for feats, blocks in TRAINED + TIMED_ONLY:
        config = CoarSRConfig(2, feats, blocks)
        gain = psnr = None
        train_seconds = None
        if (feats, blocks) in TRAINED:
            work = ROOT / "build" / "table" / f"f{feats}_b{blocks}"
            result = train([str(s) for s in scenes], work / "w.pt", 2, n_feats=feats, n_blocks=blocks, seed=1,
                           workdir=work / "work", validation=validation, max_iterations=args.iterations, epochs=12,
                           **{k: v for k, v in COMMON.items()})
            psnr = result["best"]["psnr"]
            gain = psnr - result["best"]["bicubic_psnr"]
            train_seconds = result["seconds"]
        fp32, bf16 = seconds_per_band(config, "fp32"), seconds_per_band(config, "bf16")
        # 256 x 256 in tiles of 128 with the receptive-radius overlap, 200 bands
        area = 4 * ((128 + 2 * config.receptive_radius) / 128) ** 2
        rows.append((feats, blocks, sum(p.numel() for p in CoarSR(config, weight_normed=False).parameters()),
                     psnr, gain, train_seconds, fp32, bf16, area * 200 * fp32 / 60, area * 200 * bf16 / 60))
        print(rows[-1], flush=True)
    print(f"\nx2, {args.iterations} mini-batches each (batch {COMMON['batch_size']}, LR patch {COMMON['patch_size']}, "
          f"band window {COMMON['band_window']}); validation = the fixed split, mean over its windows")
    print("| features | blocks | parameters | val PSNR (dB) | gain over bicubic (dB) | training (s) "
          "| s / band / 128x128 tile fp32 | bf16 | 256x256x200 at x2, fp32 (min) | bf16 (min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for f, b, n, psnr, gain, secs, fp32, bf16, t32, t16 in rows:
        print(f"| {f} | {b} | {n:,} | {fmt(psnr, 2)} | {fmt(gain, 2)} | {fmt(secs, 0)} | {fp32:.3f} | {bf16:.3f} "
              f"| {t32:.1f} | {t16:.1f} |")


if __name__ == "__main__":
    main()
