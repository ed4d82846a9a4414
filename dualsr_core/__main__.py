"""Command line of dualsr_core: `python -m dualsr_core <command> ...`.

Each command registers its sub-parser in an `add_<command>_parser(subparsers)` function and sets
`func`, which takes the parsed arguments and a Feedback that prints. A DualSRError ends the
program with its one-line message and exit code 1. Ctrl-C during training asks the trainer to stop
at the next mini-batch (it writes a checkpoint first); a second Ctrl-C stops at once.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .batch.cli import add_batch_parser
from .errors import DualSRError
from .feedback import Feedback
from .options import DEVICES, SCALES


def _print(message: str) -> None:
    print(message, flush=True)


def _printing_feedback(stop_flag: list) -> Feedback:
    shown = [-1]

    def progress(fraction: float) -> None:
        percent = int(100 * fraction)
        if percent // 5 > shown[0] // 5:
            shown[0] = percent
            _print(f"{percent}%")

    return Feedback(progress=progress, is_cancelled=lambda: bool(stop_flag), log=_print,
                    warn=lambda m: _print(f"Warning: {m}"))


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """The `train` command: train CoarSR weights on scenes (dualsr_core.training.trainer.train); its
    defaults are TrainConfig's, the same as the core's and QGIS's."""
    from .training.config import BAND_STEPS
    from .training.config import TrainConfig as D  # the defaults, as class attributes

    p = subparsers.add_parser("train", help="train CoarSR weights on hyperspectral scenes",
                              description="Train CoarSR on hyperspectral scenes (rasters or .mat files). "
                                          "Rerun the same command to resume from the checkpoint in the work folder.")
    p.add_argument("--data", nargs="+", required=True, metavar="FOLDER_OR_FILE",
                   help="scene files or folders searched recursively (.tif .tiff .vrt .mat, ENVI .img/.dat with .hdr)")
    p.add_argument("--scale", type=int, required=True, choices=SCALES)
    p.add_argument("--output", required=True, help="weights file to write (.pt)")
    p.add_argument("--epochs", type=int, default=D.epochs)
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--patch-size", type=int, default=D.patch_size, help="LR patch side (HR side = patch size x scale)")
    p.add_argument("--lr", type=float, default=D.lr, help="Adam learning rate, halved every epochs/3 epochs")
    p.add_argument("--n-feats", type=int, default=D.n_feats)
    p.add_argument("--n-blocks", type=int, default=D.n_blocks)
    p.add_argument("--n-asfm", type=int, default=D.n_asfm)
    p.add_argument("--device", default=D.device, choices=DEVICES)
    p.add_argument("--resume", default=None, metavar="WEIGHTS", help="weights file to fine-tune from")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--max-iterations", type=int, default=D.max_iterations, help="stop after this many mini-batches")
    p.add_argument("--val-fraction", type=float, default=D.val_fraction,
                   help="area of each scene held out for validation (0 disables validation)")
    p.add_argument("--validation", nargs="+", default=None, metavar="FILE:ROW,COL,HEIGHT,WIDTH",
                   help="explicit validation windows (replace --val-fraction)")
    p.add_argument("--workdir", default=None, help="folder of patches.h5 and checkpoint.pt (default OUTPUT.work)")
    p.add_argument("--band-steps", default=D.band_steps, choices=BAND_STEPS,
                   help="one optimiser step per mini-batch on the mean band loss, or one per band (reference)")
    p.add_argument("--checkpoint-every", type=int, default=D.checkpoint_every, help="mini-batches between checkpoints")
    p.add_argument("--positions-per-scale", type=int, default=D.positions_per_scale,
                   help="random patch positions per rescaled copy of a scene")
    p.add_argument("--positions-per-kilopixel", type=float, default=D.positions_per_kilopixel,
                   help="sample every scene in proportion to its area: positions per 1000 trainable pixels of "
                        "each rescaled copy (replaces --positions-per-scale)")
    p.add_argument("--max-patches-per-scene", type=int, default=D.max_patches_per_scene,
                   help="keep at most this many training patches of each scene (default: all)")
    p.add_argument("--half", action="store_true", default=D.half, help="store the weights as fp16")
    p.add_argument("--amp", action="store_true", default=D.amp,
                   help="bf16 autocast where it is native (CUDA, or a CPU with AVX512-BF16 or AMX); fp32 elsewhere")
    p.add_argument("--band-window", type=int, default=D.band_window,
                   help="train each mini-batch on a random run of this many consecutive bands (0: all bands)")
    p.add_argument("--spectral-weight", type=float, default=D.spectral_weight,
                   help="weight of a spectral-gradient term added to the L1 loss (0: L1 alone, as the paper)")
    p.add_argument("--zero-last", action=argparse.BooleanOptionalAction, default=D.zero_last,
                   help="start the last convolution at zero, so the untrained network equals bicubic "
                        "(--no-zero-last: PyTorch's default initialisation, as the reference)")
    p.add_argument("--delete-work", action="store_true", default=D.delete_work,
                   help="remove the work folder (patches, checkpoint) once the weights are written")
    p.set_defaults(func=_run_train)
    return p


def _window(text: str):
    from .errors import InputError
    from .tools.tiling import Region

    path, _, numbers = text.rpartition(":")
    try:
        values = [int(v) for v in numbers.split(",")]
        if not path or len(values) != 4:
            raise ValueError
    except ValueError as exc:
        raise InputError(f"--validation '{text}' must look like FILE:ROW,COL,HEIGHT,WIDTH "
                         "(pixels, 0-based).") from exc
    return path, Region(*values)


def _run_train(args, feedback: Feedback) -> int:
    from .network.torch_support import require_torch

    require_torch()
    from .training.trainer import train

    result = train(args.data, args.output, args.scale, epochs=args.epochs, batch_size=args.batch_size,
                   patch_size=args.patch_size, lr=args.lr, val_fraction=args.val_fraction, device=args.device,
                   n_feats=args.n_feats, n_blocks=args.n_blocks, n_asfm=args.n_asfm, resume_from=args.resume,
                   seed=args.seed, workdir=args.workdir,
                   validation=[_window(w) for w in args.validation] if args.validation else None,
                   max_iterations=args.max_iterations, feedback=feedback, half=args.half,
                   band_steps=args.band_steps, checkpoint_every=args.checkpoint_every, amp=args.amp,
                   zero_last=args.zero_last, band_window=args.band_window or None,
                   spectral_weight=args.spectral_weight,
                   positions_per_scale=args.positions_per_scale,
                   positions_per_kilopixel=args.positions_per_kilopixel,
                   max_patches_per_scene=args.max_patches_per_scene,
                   delete_work=args.delete_work)
    best = result["best"] or {}
    if best.get("psnr") is not None:
        _print(f"Best validation PSNR {best['psnr']:.3f} dB (bicubic {best['bicubic_psnr']:.3f} dB) "
               f"at epoch {result['best_epoch']:g}.")
    _print(f"OUTPUT_WEIGHTS:\t{result['OUTPUT_WEIGHTS']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dualsr_core", description="DualSR hyperspectral super-resolution.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(subparsers)
    add_batch_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_flag: list = []

    def on_interrupt(_signum, _frame):
        if stop_flag:
            raise KeyboardInterrupt
        stop_flag.append(True)
        _print("Stopping at the next step (Ctrl-C again to stop at once)...")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    try:
        return args.func(args, _printing_feedback(stop_flag))
    except DualSRError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
