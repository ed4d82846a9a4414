"""Training of CoarSR (docs/method.md#training), resumable and reproducible: the entry point.

`train` checks the settings (a `TrainConfig`), finds the scenes, builds or checks the patches and
hands them to the loop. The package:

* config.py: `TrainConfig`, the settings and their one set of defaults (torch-free);
* patches.py: the training and validation patches of the scenes, in an HDF5 file;
* step.py: the network training starts from and one optimisation step on a mini-batch;
* loop.py: epochs, validation, the best weights, several processes;
* checkpoint.py: checkpoints with every random generator, for exact resumption;
* report.py: the CSV log, the training curve and the work-folder report.

Files: `<workdir>/patches.h5` (the patches, resumable), `<workdir>/checkpoint.pt` (every epoch,
every `checkpoint_every` batches and on cancel; loads with `torch.load(weights_only=True)`), the
best weights by validation PSNR in `output_weights` (+ `.json`), `<output>.csv` and
`<output>_curve.png` beside them, published only when the run ends as asked.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from ..errors import Cancelled, InputError
from ..feedback import Feedback
from ..io.atomic import describe_os_error, prepare_folder, refuse_inputs, remove_quietly
from ..io.scenes import find_scenes, scene_names
from ..network.torch_support import require_torch
from .config import TrainConfig
from .report import report_work_folder


def train(scene_paths, output_weights, scale: int | TrainConfig, feedback: Feedback | None = None,
          **settings) -> dict:
    """Train CoarSR on hyperspectral scenes and write the best weights by validation PSNR.

    Args:
        scene_paths: scene files and/or folders (see `scenes.find_scenes`).
        output_weights: the weights file to write (`.pt`).
        scale: 2, 3, 4 or 8, with the other settings as keyword arguments (the fields of
            `TrainConfig`, e.g. epochs=20, n_feats=32); or a whole TrainConfig.
        feedback: progress (per batch), cancel (per batch) and log callbacks.
    Returns:
        dict with OUTPUT_WEIGHTS, CSV, CURVE, CHECKPOINT, PATCHES, best (validation metrics of the
        saved weights), best_epoch, epochs_done, iterations, seconds, band_steps, device.
    """
    if isinstance(scale, TrainConfig):
        config = dataclasses.replace(scale, **settings)
    else:
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(TrainConfig)})
        if unknown:
            raise TypeError(f"train() got unexpected keyword argument(s) {', '.join(unknown)}")
        config = TrainConfig(scale=scale, **settings)
    require_torch()
    from .checkpoint import refuse_other_settings  # torch from here on
    from .loop import Distributed, TrainingScenes, run
    from .patches import PatchDataset, build_patches

    feedback = feedback or Feedback()
    config.check()
    dist = Distributed(config.device)
    if not dist.is_main:  # one voice: rank 0 reports; cancel still reaches every process through rank 0
        feedback = Feedback(is_cancelled=feedback.is_cancelled)
    output = Path(output_weights)
    workdir = config.work_folder(output)
    files = {"OUTPUT_WEIGHTS": output, "CSV": output.with_suffix(".csv"),
             "CURVE": output.with_name(output.stem + "_curve.png"), "HEADER": output.with_suffix(".json"),
             "CHECKPOINT": workdir / "checkpoint.pt", "PATCHES": workdir / "patches.h5"}

    paths = find_scenes(scene_paths)
    if dist.is_main:
        inputs = [("a training scene", p) for p in paths] + [("WEIGHTS", config.resume_from)]
        if config.resume_from:  # its header, which w.pth as OUTPUT_WEIGHTS beside WEIGHTS w.pt would replace
            inputs.append(("WEIGHTS", Path(config.resume_from).with_suffix(".json")))
        for key in ("OUTPUT_WEIGHTS", "CSV", "CURVE", "HEADER"):
            refuse_inputs(files[key], inputs, "OUTPUT_WEIGHTS")
        prepare_folder(output, "OUTPUT_WEIGHTS")
        refuse_other_settings(files["CHECKPOINT"], config,
                              "another --workdir" if config.workdir else "another OUTPUT_WEIGHTS")
    with _work_folder(workdir, files["CHECKPOINT"], dist.is_main):
        names = scene_names(paths)
        by_path = {p: n for p, n in zip(paths, names)}
        windows = config.validation_windows()
        extra = list(dict.fromkeys(p for p, _ in windows if p not in by_path))
        extra_names = dict(zip(extra, scene_names(extra))) if extra else {}
        scenes = TrainingScenes(names=names, windows=windows,
                                named_windows=[(by_path.get(p) or extra_names[p], r) for p, r in windows],
                                extra_names=extra_names,
                                auto_fraction=0.0 if config.validation else float(config.val_fraction))
        if dist.is_main:
            feedback.log(f"{len(paths)} scene(s): {', '.join(names)}. Building or checking {files['PATCHES']}.")
            build_patches(paths, files["PATCHES"], config.scale, config.patch_size, config.seed,
                          feedback.scaled(0.0, 0.05), max_patches_per_scene=config.max_patches_per_scene,
                          holdout=scenes.named_windows, val_fraction=scenes.auto_fraction,
                          positions_per_scale=config.positions_per_scale,
                          positions_per_kilopixel=config.positions_per_kilopixel)
        dist.barrier()
        dataset = PatchDataset(files["PATCHES"], config.batch_size, config.seed, dist.rank, dist.world_size)
        try:
            result = run(config, dist, dataset, scenes, files, feedback)
        finally:
            dataset.close()
    if dist.is_main:
        report_work_folder(workdir, config.delete_work, feedback)
    return result


@contextlib.contextmanager
def _work_folder(workdir: Path, checkpoint: Path, is_main: bool):
    """Create the work folder; after a failure remove it again if this run created it and left no
    checkpoint in it. A cancelled or killed run keeps its checkpoint, from which a rerun resumes."""
    created = is_main and not workdir.exists()
    if is_main:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(describe_os_error(exc, workdir, "the work folder")) from exc
    try:
        yield
    except Cancelled:
        raise
    except BaseException:
        if created and not checkpoint.exists():
            remove_quietly(workdir)
        raise
