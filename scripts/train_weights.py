"""make weights: re-create the shipped CoarSR weights from a folder of scenes, with a fixed seed.

On the shared data folder the fixed split of scripts/split.py is used (validation never trained
on); on a folder of your own scenes the trainer holds out a fraction of each scene instead. The
weights go to weights/coarsr_x<scale>.pt (+ .json, the training log .csv and its curve .png);
patches and checkpoints go to build/weights/ (a killed run resumes from its checkpoint when started
again).
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from dualsr_core.feedback import Feedback  # noqa: E402
from dualsr_core.training.trainer import train  # noqa: E402
from split import fixed_split  # noqa: E402

# The shipped configuration (see weights/README.md for the measurements behind it).
COMMON = dict(batch_size=8, patch_size=16, band_window=16, zero_last=True, lr=5e-4, positions_per_scale=48)
SHIPPED = {
    2: dict(n_feats=32, n_blocks=1, epochs=12, **COMMON),
    3: dict(n_feats=32, n_blocks=1, epochs=12, **COMMON),
    # x4: 8 x 8 low-resolution patches (32 x 32 high-resolution), so that the small scenes and their
    # 0.75 and 0.5 copies still give patches; twice the batch for the same pixels per step.
    4: dict(n_feats=32, n_blocks=1, epochs=8, **{**COMMON, "patch_size": 8, "batch_size": 16}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--out", type=Path, default=ROOT / "weights")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "weights")
    parser.add_argument("--features", type=int, help="override the shipped feature count")
    parser.add_argument("--blocks", type=int, help="override the shipped block count")
    parser.add_argument("--epochs", type=int, help="override the shipped epoch count")
    parser.add_argument("--max-iterations", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"DATA folder {args.data} does not exist.")
    split = fixed_split(args.data, args.work / "mosaics")
    scenes, validation = split if split else ([args.data], None)
    args.out.mkdir(parents=True, exist_ok=True)
    for scale in args.scales:
        config = dict(SHIPPED[scale])
        for key, value in (("n_feats", args.features), ("n_blocks", args.blocks), ("epochs", args.epochs)):
            if value:
                config[key] = value
        work = args.work / f"x{scale}_f{config['n_feats']}_b{config['n_blocks']}"
        output = args.out / f"coarsr_x{scale}.pt"
        print(f"== x{scale}: {config} -> {output}", flush=True)
        result = train([str(s) for s in scenes], output, scale, seed=args.seed, workdir=work, half=True,
                       validation=validation, max_iterations=args.max_iterations, device="auto",
                       feedback=Feedback(log=lambda m: print(m, flush=True), warn=lambda m: print("warning:", m)),
                       **config)
        print(json.dumps({k: result[k] for k in ("best", "iterations", "seconds")}, indent=1), flush=True)


if __name__ == "__main__":
    main()
