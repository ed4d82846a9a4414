"""The settings of a training run, with the one set of defaults the core, the command line and QGIS share.

The defaults are the recipe of the first stage of the bundled x2 weights (x2_base in scripts/train_weights.py):
CoarSR with 32 features, 1 residual block and 2 ASFMs; 16 x 16 low-resolution patches in batches of 8;
Adam at 5e-4, halved every third of the epochs; each mini-batch on a random run of 16 consecutive bands;
the last convolution started at zero, so that the untrained network is the bicubic skip. Every default is
also a class attribute (`TrainConfig.n_feats` is 32), which is how the command line and the QGIS
algorithm read them.

Torch-free: the QGIS algorithm reads the defaults when it is loaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..options import SCALES
from ..tools.checks import WHOLE, positive_integer, positive_number
from ..tools.tiling import Region

BAND_STEPS = ("summed", "per_band")


@dataclass
class TrainConfig:
    """Everything `train` needs besides the scenes, the output file and the feedback.

    Attributes:
        scale: 2, 3, 4 or 8.
        epochs: passes over the patches.
        batch_size: patches per mini-batch (per process).
        patch_size: LR patch side; HR patches are patch_size * scale.
        lr: Adam's learning rate, halved every max(1, epochs // 3) epochs.
        val_fraction: without `validation`, a window of about this fraction of each scene's area
            is held out for validation (never sampled for training); 0 disables validation.
        device: 'auto', 'cpu' or 'cuda'.
        n_feats, n_blocks, n_asfm: network size (ignored with `resume_from`: its header rules).
        resume_from: weights file to fine-tune from.
        seed: seeds patches, initialisation and batch order.
        workdir: folder of patches.h5 and checkpoint.pt (default `<output stem>.work` beside the
            output). A checkpoint found there is resumed exactly.
        validation: explicit (scene path, Region or (row0, col0, height, width)) validation windows
            (replaces val_fraction).
        max_iterations: stop after this many mini-batches in all (then validate and checkpoint).
        half: store the weights as fp16.
        band_steps: 'summed' or 'per_band' (see training/step.py).
        checkpoint_every: also checkpoint every this many mini-batches.
        band_chunk: bands per batched pass in 'summed' mode (default: by device).
        amp: bf16 autocast where it is native (CUDA, or a CPU with AVX512-BF16 or AMX); fp32 elsewhere.
        positions_per_scale, positions_per_kilopixel, max_patches_per_scene: patch sampling (see
            `patches.build_patches`); positions_per_kilopixel, when given, samples every scene in
            proportion to its area instead of a fixed count per scene.
        zero_last: start the last convolution at zero (g = 0 and bias 0 under weight norm), so the
            untrained network outputs exactly the bicubic skip; the reference uses PyTorch's
            default initialisation (False), whose random residual costs many iterations to undo.
        band_window: train each mini-batch on a random run of this many consecutive bands (in
            processing order; the run's first band starts a fresh state) instead of all bands. The
            state is detached between bands anyway, so this only shortens the recurrence the
            network sees, and it makes a step on a 200-band scene many times cheaper. The start
            is a pure function of (seed, iteration), so resuming stays exact. None: all bands.
        spectral_weight: weight of a spectral-gradient term added to the L1 loss (see
            training/step.py); 0, the paper's loss, trains on L1 alone.
        delete_work: remove the work folder (patches, checkpoint) once the weights are written.
    """

    scale: int
    epochs: int = 12
    batch_size: int = 8
    patch_size: int = 16
    lr: float = 5e-4
    val_fraction: float = 0.1
    device: str = "auto"
    n_feats: int = 32
    n_blocks: int = 1
    n_asfm: int = 2
    resume_from: str | os.PathLike | None = None
    seed: int = 1
    workdir: str | os.PathLike | None = None
    validation: list[tuple[str | os.PathLike, Region]] | None = None
    max_iterations: int | None = None
    half: bool = False
    band_steps: str = "summed"
    checkpoint_every: int = 200
    band_chunk: int | None = None
    amp: bool = False
    positions_per_scale: int = 48  # per rescaled copy of a scene; the reference CAVE script's 24 is patches.py's
    positions_per_kilopixel: float | None = None
    max_patches_per_scene: int | None = None
    zero_last: bool = True
    band_window: int | None = 16
    spectral_weight: float = 0.0
    delete_work: bool = False

    def check(self) -> TrainConfig:
        """Raise InputError, naming the parameter, for a value training cannot use; returns self (torch-free)."""
        if self.scale not in SCALES:
            raise InputError(f"SCALE is {self.scale} but must be one of {', '.join(map(str, SCALES))}.")
        for name, value in (("EPOCHS", self.epochs), ("BATCH_SIZE", self.batch_size),
                            ("PATCH_SIZE", self.patch_size), ("checkpoint_every", self.checkpoint_every)):
            positive_integer(value, name, InputError, message=WHOLE)
        positive_number(self.lr, "LEARNING_RATE", error=InputError,
                        message="{name} is {value} but must be a positive number such as 1e-4.")
        if not 0 <= self.val_fraction < 0.5:
            raise InputError(f"VAL_FRACTION is {self.val_fraction} but must be at least 0 and below 0.5 "
                             "(0 disables validation).")
        positive_number(self.spectral_weight, "SPECTRAL_WEIGHT", error=InputError, zero_allowed=True,
                        message="{name} is {value} but must be a number of at least 0 (0: L1 alone).")
        if self.band_steps not in BAND_STEPS:
            raise InputError(f"band_steps is '{self.band_steps}' but must be one of {', '.join(BAND_STEPS)}.")
        if self.max_iterations is not None:
            positive_integer(self.max_iterations, "max_iterations", InputError,
                             message="{name} is {value} but must be a whole number of at least 1 (or None for "
                                     "no limit).")
        if self.positions_per_kilopixel is not None:
            positive_number(self.positions_per_kilopixel, "positions_per_kilopixel", error=InputError,
                            message="{name} is {value} but must be a positive number (or None for a fixed "
                                    "count per scene).")
        for name, value in (("band_window", self.band_window), ("band_chunk", self.band_chunk)):
            if value is not None:
                positive_integer(value, name, InputError, message=WHOLE)
        return self

    def work_folder(self, output_weights: str | os.PathLike) -> Path:
        """The folder of the patches and the checkpoint."""
        output = Path(output_weights)
        return Path(self.workdir) if self.workdir else output.with_name(output.stem + ".work")

    def validation_windows(self) -> list[tuple[Path, Region]]:
        """The explicit validation windows as (resolved path, Region)."""
        return [(Path(p).resolve(), _region(r)) for p, r in (self.validation or [])]


def _region(value) -> Region:
    if isinstance(value, Region):
        return value
    try:
        return Region(*(int(v) for v in value))
    except (TypeError, ValueError) as exc:
        raise InputError(f"Validation window {value!r} must be a Region or (row0, col0, height, width).") from exc
