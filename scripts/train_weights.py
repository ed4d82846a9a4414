"""make weights: re-create the shipped CoarSR weights from a folder of scenes, with a fixed seed.

Each scale is made by a recipe of stages (RECIPES below): "base" is the recipe of the first shipped
weights (trained from a bicubic start), "long" continues from a base with its own schedule (x2 from
its own base; x3 from the x2 base, whose layers all fit x3 except the upsampler, which is
transplanted sub-pixel by sub-pixel), "all" and "more" continue on all sixteen scenes, and x4 ends
with "graft" (the x2 network's layers before the upsampler on the x4 upsampler, trained briefly) and
"blend" (the graft's trained weights mixed with its start, no training). Every stage writes
build/weights/stages/coarsr_<stage>.pt (+ .json, .csv, _curve.png) and keeps its patches and
checkpoint in build/weights/<stage>/, so a killed run resumes exactly from its checkpoint; a stage
whose weights file exists without a checkpoint (placed there by --base-from) is taken as it is. The
last stage of each scale is copied to weights/coarsr_x<scale>.pt (+ .json, the training log .csv and
its curve .png).

On the shared data folder the fixed split of scripts/split.py is used (validation never trained
on); on a folder of your own scenes the trainer holds out a fraction of each scene instead.
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from dualsr_core.feedback import Feedback  # noqa: E402
from dualsr_core.training.trainer import train  # noqa: E402
from split import fixed_split  # noqa: E402

# The first shipped recipes (see weights/README.md for the measurements behind them).
COMMON = dict(n_feats=32, n_blocks=1, batch_size=8, patch_size=16, band_window=16, zero_last=True, lr=5e-4,
              positions_per_scale=48)
# x4 and x3: smaller low-resolution patches (x4 8 x 8 -> 32 x 32, x3 10 x 10 -> 30 x 30) so that the
# small scenes outside their validation windows (Urban: 34 rows) and their 0.75 and 0.5 copies still
# give patches; a larger batch for about the same pixels per step.
SMALL4 = {**COMMON, "patch_size": 8, "batch_size": 16}
SMALL3 = {**COMMON, "patch_size": 10, "batch_size": 16}

# scale -> stages in order: (stage name, trainer settings, stage to start from or None, how).
# "how": "resume" fine-tunes the start's network as it is; "transplant" builds a network of this
# scale from the start's layers (see transplant()).
# The "_all" stages continue the earlier shipped files on all sixteen training scenes, sampled in
# proportion to their area (AREA): four positions per 1000 trainable pixels of each rescaled copy
# gives about as many patch positions per epoch as the 48 per copy did on the first five scenes'
# larger ones, so an epoch visits every scene and lasts under half an hour on one CPU core.
# The "_more" stages continue x2_all and x3_all for longer, their validation having still been
# rising, with bf16 autocast where the CPU runs it natively (AMP: 1.6x to 2.0x faster steps, the same
# validation PSNR; weights/README.md).
AREA = {"positions_per_kilopixel": 4.0}
AMP = {"amp": True}
RECIPES = {
    2: [("x2_base", dict(COMMON, epochs=12), None, None),
        ("x2_long", dict(COMMON, lr=2.5e-4, epochs=6), "x2_base", "resume"),
        ("x2_all", dict(COMMON, **AREA, lr=2.5e-4, epochs=3), "x2_long", "resume"),
        ("x2_more", dict(COMMON, **AREA, **AMP, lr=2e-4, epochs=6), "x2_all", "resume")],
    3: [("x3_long", dict(SMALL3, lr=3e-4, epochs=6), "x2_base", "transplant"),
        ("x3_all", dict(SMALL3, **AREA, lr=2.5e-4, epochs=3), "x3_long", "resume"),
        ("x3_more", dict(SMALL3, **AREA, **AMP, lr=2e-4, epochs=9), "x3_all", "resume")],
    # On the first five scenes, continuing x2_long and x3_long at lower learning rates gained nothing,
    # and continuing x4_base raised PSNR but not SAM on every window; x4_all continued like x3_more
    # raised the mean gain but put Coarse's SAM on the Moffett window 0.5 degrees above bicubic's.
    # x4_graft gives x4_all the body of x2_more, the strongest network (all but the upsampler and the
    # last convolution), and trains it briefly; x4_blend keeps a fifth of its start (weights/README.md).
    4: [("x4_base", dict(SMALL4, epochs=8), None, None),
        ("x4_all", dict(SMALL4, **AREA, lr=2.5e-4, epochs=3), "x4_base", "resume"),
        ("x4_graft", dict(SMALL4, **AREA, **AMP, lr=2.5e-4, epochs=2), "x4_all", "graft"),
        ("x4_blend", {"trained_share": 0.8}, "x4_graft", "blend")],
}
# "graft" takes every layer before the upsampler from this stage (of scale 2).
GRAFT_BODY_FROM = "x2_more"
# --base-from places a folder's coarsr_x<scale>.pt as these stages: the ones the later stages continue.
BASE_STAGES = {2: "x2_all", 3: "x3_all", 4: "x4_all"}
STAGES = {name: (scale, config, start, how) for scale, stages in RECIPES.items()
          for name, config, start, how in stages}
# The transplanted network's last convolution is scaled by this factor (weight norm needs a non-zero
# filter). Measured on the validation windows before any x3 training: the x2 network transplanted
# as it is (1.0) already gains +1.02 dB over bicubic at x3; 0.5 +0.64, 0.25 +0.34, 1.3 +1.06.
TRANSPLANT_LAST_GAIN = 1.0


def transplant(source: Path, scale: int, destination: Path, last_gain: float = TRANSPLANT_LAST_GAIN) -> Path:
    """A weights file of `scale` built from the weights of another single-stage scale (x2 -> x3).

    Every tensor of the same shape is copied. The sub-pixel convolution is remapped: output
    channel c * r^2 + i * r + j of PixelShuffle(r) makes sub-pixel (i, j), and each x3 sub-pixel
    (rows/cols at 1/6, 1/2, 5/6 of the LR pixel) takes the x2 sub-pixel nearest to it (1/4 or
    3/4), the middle one the mean of both. The last convolution is scaled by `last_gain`.
    """
    import torch

    from dualsr_core.network import weights
    from dualsr_core.network.model import CoarSR, CoarSRConfig

    header, state = weights.read(source)
    r_from = int(header["scale"])
    if r_from not in (2, 3) or scale not in (2, 3):
        raise SystemExit(f"transplant only maps between single-stage upsamplers (x2, x3), not x{r_from} -> x{scale}.")
    config = CoarSRConfig(scale=scale, n_feats=int(header["n_feats"]), n_blocks=int(header["n_blocks"]),
                          n_asfm=int(header["n_asfm"]))
    model = CoarSR(config, weight_normed=False)
    target = model.state_dict()
    copied = {k: v.float() for k, v in state.items() if k in target and target[k].shape == v.shape}
    target.update(copied)
    f = config.n_feats
    nearest = {3: {2: [[0], [0, 1], [1]]}, 2: {3: [[0, 1], [1, 2]]}}[scale][r_from]  # rows of the target
    for suffix in ("weight", "bias"):
        old = state[f"upsample.0.{suffix}"].float()
        old = old.reshape(f, r_from, r_from, *old.shape[1:])
        new = torch.stack([torch.stack([old[:, rows][:, :, cols].mean(dim=(1, 2)) for cols in nearest], dim=1)
                           for rows in nearest], dim=1)
        target[f"upsample.0.{suffix}"] = new.reshape(f * scale * scale, *old.shape[3:])
    target["last.weight"] = target["last.weight"] * last_gain
    target["last.bias"] = target["last.bias"] * last_gain
    model.load_state_dict(target)
    return save_start(destination, model, header,
                      f"transplanted from {source.name} (sha256 {header['sha256'][:12]}, x{r_from}): {len(copied)} "
                      f"tensors copied, sub-pixel convolution remapped, last convolution x {last_gain}")


def graft(body: Path, head: Path, destination: Path) -> Path:
    """A weights file with the layers of `body` (x2) before the upsampler and the upsampler and last
    convolution of `head` (the scale made): both networks share every layer but those."""
    from dualsr_core.network import weights
    from dualsr_core.network.model import CoarSR

    (body_header, body_state), (header, state) = weights.read(body), weights.read(head)
    body_size, size = weights.network_config(body_header), weights.network_config(header)
    if body_size.scale != 2 or (body_size.n_feats, body_size.n_blocks, body_size.n_asfm) != (
            size.n_feats, size.n_blocks, size.n_asfm):
        raise SystemExit(f"graft needs an x2 body of the same network size as {head.name}; {body.name} is x"
                         f"{body_size.scale} with {body_size.n_feats} features, {body_size.n_blocks} blocks and "
                         f"{body_size.n_asfm} ASFMs.")
    model = CoarSR(size, weight_normed=False)
    grafted = {k: (v if k.startswith(("upsample.", "last.")) else body_state[k]).float() for k, v in state.items()}
    model.load_state_dict(grafted)
    return save_start(destination, model, header,
                      f"grafted: every layer before the upsampler from {body.name} (sha256 "
                      f"{body_header['sha256'][:12]}), upsampler and last convolution from {head.name} "
                      f"(sha256 {header['sha256'][:12]})")


def save_start(destination: Path, model, header: dict, initialised_from: str) -> Path:
    """Write a stage's starting weights (fp32) with the data facts of the `header` they came from."""
    from dualsr_core.network import weights

    fields = ("training_data", "scenes", "split", "paper", "seed", "dualsr_version")
    weights.save(destination, model, {**{k: header[k] for k in fields if k in header},
                                      "initialised_from": initialised_from}, half=False)
    return destination


def blend(trained: Path, start: Path, trained_share: float, destination: Path, validation: list[dict]) -> Path:
    """trained_share x the trained weights + the rest x the weights its training started from (the
    weight-space ensembling of Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022),
    with its validation metrics (the trainer's, on `validation` items)."""
    import copy

    import torch

    from dualsr_core.network import weights
    from dualsr_core.network.model import CoarSR, add_weight_norm
    from dualsr_core.training.loop import validate
    from dualsr_core.training.report import metrics_of

    (header, state), (start_header, start_state) = weights.read(trained), weights.read(start)
    model = CoarSR(weights.network_config(header), weight_normed=False)
    model.load_state_dict({k: trained_share * v.float() + (1 - trained_share) * start_state[k].float()
                           for k, v in state.items()})
    metrics = validate(add_weight_norm(copy.deepcopy(model)), validation, torch.device("cpu"))  # as in training
    weights.save(destination, model, {
        **{k: v for k, v in header.items() if k not in ("sha256", "format", "dtype", "validation")},
        "blend": f"{trained_share} x {trained.name} (sha256 {header['sha256'][:12]}) + {1 - trained_share:.2g} x its "
                 f"start {start.name} (sha256 {start_header['sha256'][:12]})",
        "validation": metrics_of(metrics)}, half=True)
    return destination


def validation_items(patches: Path, scenes: list, windows: list, scale: int) -> list[dict]:
    """The trainer's validation items: the crops stored in a stage's patch file (windows on training
    scenes), then, as the trainer adds them, those of the windows on other scenes."""
    from types import SimpleNamespace

    from dualsr_core.feedback import Feedback
    from dualsr_core.io.scenes import scene_names
    from dualsr_core.training.loop import TrainingScenes, extra_validation
    from dualsr_core.training.patches import PatchDataset

    dataset = PatchDataset(patches)
    try:
        items = dataset.validation()
    finally:
        dataset.close()
    training = {Path(p).resolve() for p in scenes}
    windows = [(Path(p).resolve(), region) for p, region in windows]
    extra = list(dict.fromkeys(p for p, _ in windows if p not in training))
    others = TrainingScenes(names=[], windows=windows, named_windows=[],
                            extra_names=dict(zip(extra, scene_names(extra))), auto_fraction=0.0)
    return items + extra_validation(SimpleNamespace(scale=scale), others, Feedback())


def fixed_split_keeping_mtimes(data: Path, work: Path):
    """fixed_split, but a mosaic rewritten with the same bytes keeps its modification time: the
    patch files identify a scene by path, size and mtime, and would otherwise be sampled again
    on every restart."""
    before = {p: (p.read_bytes(), p.stat()) for p in work.glob("*.vrt")}
    split = fixed_split(data, work)
    for path, (content, stat) in before.items():
        if path.is_file() and path.read_bytes() == content:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return split


def run_stage(name: str, args, scenes, validation, done: dict) -> Path:
    """Train (or resume, or take as found) stage `name` and the stages it starts from; its weights file."""
    if name in done:
        return done[name]
    scale, config, start, how = STAGES[name]
    work = args.work / name
    output = args.work / "stages" / f"coarsr_{name}.pt"
    if output.is_file() and not (work / "checkpoint.pt").is_file():
        print(f"== {name}: using {output} as found (no checkpoint of a run here)", flush=True)
        done[name] = output
        return output
    config = dict(config)
    for key, value in (("epochs", args.epochs), ("max_iterations", args.max_iterations)):
        if value:
            config[key] = value
    if start is not None:
        source = run_stage(start, args, scenes, validation, done)
        if how == "blend":
            trained_work = args.work / start
            print(f"== {name} (x{scale}): {config} of {source} and its start", flush=True)
            done[name] = blend(source, trained_work / f"start_{start}.pt", config["trained_share"], output,
                               validation_items(trained_work / "patches.h5", scenes, validation or [], scale))
            for suffix in (".csv", "_curve.png"):  # the training of the blended network
                shutil.copyfile(source.with_name(source.stem + suffix), output.with_name(output.stem + suffix))
            return output
        work.mkdir(parents=True, exist_ok=True)
        if how == "transplant":
            source = transplant(source, scale, work / f"start_{name}.pt")
        elif how == "graft":
            body = run_stage(GRAFT_BODY_FROM, args, scenes, validation, done)
            source = graft(body, source, work / f"start_{name}.pt")
        config["resume_from"] = str(source)
        config.pop("zero_last", None)
    print(f"== {name} (x{scale}): {config} -> {output}", flush=True)
    result = train([str(s) for s in scenes], output, scale, seed=args.seed, workdir=work, half=True,
                   validation=validation, device="auto", checkpoint_every=50,
                   feedback=Feedback(log=lambda m: print(m, flush=True), warn=lambda m: print("warning:", m)),
                   **config)
    print(json.dumps({k: result[k] for k in ("best", "iterations", "seconds")}, indent=1), flush=True)
    done[name] = output
    return output


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--out", type=Path, default=ROOT / "weights")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "weights")
    parser.add_argument("--base-from", type=Path,
                        help="take the stages the later ones continue (x2_all, x3_all, x4_all) from this "
                             "folder's coarsr_x<scale>.pt (the weights shipped before those stages) instead of "
                             "training them, when build/weights holds no run of them")
    parser.add_argument("--epochs", type=int, help="override every stage's epoch count")
    parser.add_argument("--max-iterations", type=int, help="stop every stage after this many mini-batches")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"DATA folder {args.data} does not exist.")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    split = fixed_split_keeping_mtimes(args.data, args.work / "mosaics")
    scenes, validation = split if split else ([args.data], None)
    if args.base_from:
        for scale, start in BASE_STAGES.items():
            source = args.base_from / f"coarsr_x{scale}.pt"
            target = args.work / "stages" / f"coarsr_{start}.pt"
            if source.is_file() and not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                for suffix in (".pt", ".json"):
                    shutil.copyfile(source.with_suffix(suffix), target.with_suffix(suffix))
    args.out.mkdir(parents=True, exist_ok=True)
    done = {}
    for scale in args.scales:
        final = run_stage(RECIPES[scale][-1][0], args, scenes, validation, done)
        shipped = args.out / f"coarsr_x{scale}.pt"
        for suffix in (".pt", ".json", ".csv", "_curve.png"):
            source = final.with_name(final.stem + suffix)
            if source.is_file():
                shutil.copyfile(source, shipped.with_name(shipped.stem + suffix))
        print(f"== x{scale}: {final} -> {shipped}", flush=True)


if __name__ == "__main__":
    main()
