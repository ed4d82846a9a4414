"""Training patches of CoarSR in an HDF5 file, and the batches and validation crops read from it.

Patch generation follows the reference data scripts (docs/method.md#training-patches): for each scene and
each augmentation scale c in (1, 0.75, 0.5) the scene is resized by c (MATLAB bicubic), random
HR patches of side P = patch_size * scale are cut, each in five versions (original, rot90,
rot180, rot270 counter-clockwise, up-down flip), and LR = MATLAB imresize(HR, 1/scale) of every
version. Here the positions are distinct random top-left corners among the admissible ones: a
patch never touches an invalid pixel or a held-out window, also through the support of the
resize kernel, so training never sees validation pixels.

Layout: one group per scene, `lr` (N,L,p,p) and `hr` (N,L,P,P) float32, one patch per chunk, lzf;
`origin` (N,4) int32 = (augmentation-scale index, row, column at that scale, version); attributes
`name`, `source`, `good_bands`, `order` (good bands in processing order), `complete`. Each held-out
window of the scene is stored as a validation crop in `<scene>/val/<k>` (`lr`, `hr`, `mask`). Band
counts differ between scenes, so datasets are per scene and batches never mix scenes.

The build writes scene by scene and marks a scene complete only when it is written; a rerun skips
complete scenes. Patches depend only on the seed: scene k draws from numpy's Generator seeded with
(seed, 0, k); batch order of epoch e draws from (seed, 1, e).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..feedback import Feedback
from ..io.products.base import require_h5py
from ..io.scenes import Scene, load_scene, scene_names
from ..tools import resize
from ..tools.nodata import fill_invalid, spread_invalid
from ..tools.tiling import Region

FORMAT = "dualsr-patches/1"
AUGMENT_SCALES = (1.0, 0.75, 0.5)
VERSIONS = ("original", "rot90", "rot180", "rot270", "flipud")
POSITIONS_PER_SCALE = 24  # the reference CAVE script's count
SSIM_MIN_SIDE = 11        # an HR validation crop smaller than this has no SSIM


def augment(hr: np.ndarray) -> np.ndarray:
    """The five versions (VERSIONS) of an HR patch (L,P,P): (5,L,P,P), exact rotations and flip."""
    return np.stack([hr, np.rot90(hr, 1, axes=(1, 2)), np.rot90(hr, 2, axes=(1, 2)),
                     np.rot90(hr, 3, axes=(1, 2)), hr[:, ::-1, :]])


def degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR = MATLAB imresize(hr, 1/scale), antialiased bicubic, of (...,H,W) float32."""
    return resize.imresize(np.ascontiguousarray(hr, dtype=np.float32), 1.0 / scale, method="matlab")


def _touched(bad: np.ndarray, c: float) -> np.ndarray:
    """Pixels of imresize(., c) whose kernel support reaches a True pixel of `bad` (H,W)."""
    if c == 1.0:
        return bad
    h, w = bad.shape
    return spread_invalid(bad, resize.matlab_weights(h, math.ceil(h * c), c),
                          resize.matlab_weights(w, math.ceil(w * c), c))


def _admissible(bad: np.ndarray, side: int) -> np.ndarray:
    """(K,2) top-left corners of side x side windows that contain no True pixel of `bad`."""
    h, w = bad.shape
    if h < side or w < side:
        return np.empty((0, 2), dtype=np.int64)
    integral = np.zeros((h + 1, w + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(bad, axis=0), axis=1)
    sums = (integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side])
    return np.argwhere(sums == 0)


def _holdout_mask(shape: tuple[int, int], regions: Sequence[Region]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for r in regions:
        mask[r.row0:r.row0 + r.height, r.col0:r.col0 + r.width] = True
    return mask


def auto_holdout(scene: Scene, val_fraction: float, scale: int) -> Region | None:
    """A square window of about `val_fraction` of the scene's area for validation, or None.

    The side is at least 11 pixels (SSIM's window) and a multiple of `scale`, at most 55% of the
    shorter side of the scene (so that training patches fit beside it). Of the four corners, the
    one with most valid pixels is taken (ties: bottom right, bottom left, top right, top left).
    """
    if val_fraction <= 0:
        return None
    h, w = scene.valid.shape
    side = max(math.sqrt(val_fraction * h * w), SSIM_MIN_SIDE)
    side = int(math.ceil(side / scale) * scale)
    if side > 0.55 * min(h, w):
        return None
    corners = [(h - side, w - side), (h - side, 0), (0, w - side), (0, 0)]
    counts = [scene.valid[r:r + side, c:c + side].sum() for r, c in corners]
    row0, col0 = corners[int(np.argmax(counts))]
    return Region(int(row0), int(col0), side, side)


def validation_crop(scene: Scene, region: Region, scale: int) -> dict:
    """HR window, its LR (MATLAB imresize by 1/scale) and valid mask, cropped to a multiple of scale.

    Invalid pixels are filled with the nearest valid pixel of their band before degrading, so the
    LR input holds no nodata; metrics use `mask`.
    """
    h, w = scene.valid.shape
    if region.row0 < 0 or region.col0 < 0 or region.row0 + region.height > h or region.col0 + region.width > w:
        raise InputError(f"Validation window {region} does not fit inside scene '{scene.name}' ({h} x {w} pixels).")
    rows, cols = region.height // scale * scale, region.width // scale * scale
    if rows < scale or cols < scale:
        raise InputError(f"Validation window {region} of scene '{scene.name}' is smaller than the scale ({scale}).")
    window = np.s_[region.row0:region.row0 + rows, region.col0:region.col0 + cols]
    hr = np.ascontiguousarray(scene.cube[(slice(None), *window)])
    mask = scene.valid[window]
    if not mask.any():
        raise InputError(f"Validation window {region} of scene '{scene.name}' holds no valid pixel.")
    filled = fill_invalid(hr.copy(), np.broadcast_to(mask, hr.shape)) if not mask.all() else hr
    return {"lr": degrade(filled, scale), "hr": hr, "mask": mask}


def _signature(scale, patch_size, seed, positions_per_scale, max_patches_per_scene,
               positions_per_kilopixel=None) -> dict:
    signature = {"format": FORMAT, "scale": int(scale), "patch_size": int(patch_size), "seed": int(seed),
                 "positions_per_scale": int(positions_per_scale),
                 "max_patches_per_scene": -1 if max_patches_per_scene is None else int(max_patches_per_scene),
                 "augment_scales": list(AUGMENT_SCALES), "versions": list(VERSIONS)}
    if positions_per_kilopixel is not None:  # absent from files made before area sampling, which stay valid
        signature["positions_per_kilopixel"] = float(positions_per_kilopixel)
    return signature


def build_patches(scenes: Sequence[str | os.PathLike | Scene], h5_path: str | os.PathLike, scale: int,
                  patch_size: int = 32, seed: int = 1, feedback: Feedback | None = None,
                  max_patches_per_scene: int | None = None,
                  holdout: Sequence[tuple[str, Region]] | None = None, val_fraction: float = 0.0,
                  positions_per_scale: int = POSITIONS_PER_SCALE,
                  positions_per_kilopixel: float | None = None) -> dict:
    """Write (or complete) the HDF5 training set of `scenes`.

    Args:
        scenes: scene files or loaded Scenes; files are loaded one at a time.
        h5_path: the HDF5 file; an existing one made with other settings is rebuilt.
        scale: super-resolution factor (2, 3, 4, 8).
        patch_size: LR patch side p; HR patches are p*scale.
        seed: patches are a pure function of it.
        feedback: progress, cancel (checked per patch position) and log callbacks.
        max_patches_per_scene: cap on the patches (versions included) of one scene.
        holdout: (scene name, Region) windows never sampled; each is stored as a validation crop.
        val_fraction: for scenes without a holdout window, hold out an automatic window of about
            this fraction of the area (`auto_holdout`); 0 holds out nothing.
        positions_per_scale: random positions per augmentation scale (5 patches each).
        positions_per_kilopixel: sample in proportion to area instead: each scene and augmentation
            scale gets this many positions per 1000 pixels it can train on (at least one where a
            patch fits), so a large scene gives more patches than a small one and every pixel is
            about equally likely to be seen; replaces positions_per_scale.
    Returns:
        {scene name: number of patches}.
    """
    h5py = require_h5py("Training")
    feedback = feedback or Feedback()
    if patch_size < 1 or positions_per_scale < 1 or (max_patches_per_scene is not None and max_patches_per_scene < 1):
        raise InputError(f"PATCH_SIZE ({patch_size}), positions per scale ({positions_per_scale}) and the patch "
                         f"cap ({max_patches_per_scene}) must be at least 1.")
    if positions_per_kilopixel is not None and not positions_per_kilopixel > 0:
        raise InputError(f"Positions per kilopixel is {positions_per_kilopixel} but must be above 0.")
    names = [s.name if isinstance(s, Scene) else None for s in scenes]
    paths = [s.path if isinstance(s, Scene) else Path(s) for s in scenes]
    fallback = scene_names(paths)
    names = [n or f for n, f in zip(names, fallback)]
    known = set(names)
    holdout = [(str(n), r) for n, r in (holdout or [])]
    unknown = sorted({n for n, _ in holdout} - known)
    if unknown:
        feedback.log(f"Holdout windows of scenes not in the training data are ignored here: {', '.join(unknown)}.")
    signature = _signature(scale, patch_size, seed, positions_per_scale, max_patches_per_scene,
                           positions_per_kilopixel)
    h5_path = Path(h5_path)
    h5_path.parent.mkdir(parents=True, exist_ok=True)
    f = _open_matching(h5py, h5_path, signature, feedback)
    counts = {}
    try:
        keys = [f"scene_{k:04d}" for k in range(len(scenes))]
        for stale in [k for k in f.keys() if k not in keys]:
            del f[stale]
        for k, (item, name, path) in enumerate(zip(scenes, names, paths)):
            windows = [r for n, r in holdout if n == name]
            meta = {"name": name, "source": _source_id(path),
                    "holdout": json.dumps([list(region_tuple(r)) for r in windows]),
                    "val_fraction": float(val_fraction) if not windows else 0.0}
            key = keys[k]
            group = f.get(key)
            if group is not None and group.attrs.get("complete", False) and all(
                    group.attrs.get(a) == v for a, v in meta.items()):
                counts[name] = int(group.attrs["count"])
                continue
            if group is not None:
                del f[key]
            scene = item if isinstance(item, Scene) else load_scene(path, name)
            if not windows:
                auto = auto_holdout(scene, val_fraction, scale)
                if auto is None and val_fraction > 0:
                    feedback.log(f"Scene '{name}' is too small to hold out a validation window: all of it trains.")
                windows = [auto] if auto is not None else []
            scene_feedback = feedback.scaled(k / len(scenes), (k + 1) / len(scenes))
            counts[name] = _write_scene(f.create_group(key), scene, meta, windows, k, signature, scene_feedback)
            f.flush()
            feedback.log(f"Scene '{name}': {counts[name]} patch pairs, {len(windows)} validation window(s).")
    finally:
        f.close()
    return counts


def _source_id(path) -> str:
    """The file's absolute path, size and modification time: a changed file is sampled again."""
    path = Path(path).resolve()
    if not path.is_file():
        return str(path)
    stat = path.stat()
    return f"{path} ({stat.st_size} bytes, mtime {stat.st_mtime_ns})"


def region_tuple(r: Region) -> tuple[int, int, int, int]:
    """(row0, col0, height, width) as plain ints (JSON and HDF5 attributes)."""
    return int(r.row0), int(r.col0), int(r.height), int(r.width)


def _open_matching(h5py, path: Path, signature: dict, feedback: Feedback):
    """Open the file for appending if it was made with `signature`, else start it afresh."""
    if path.exists():
        try:
            f = h5py.File(path, "a")
        except OSError:
            feedback.warn(f"Patch file '{path}' is damaged (an interrupted write?); rebuilding it.")
            path.unlink()
        else:
            if json.loads(f.attrs.get("signature", "{}")) == signature:
                return f
            f.close()
            feedback.log(f"Patch file '{path}' was made with other settings; rebuilding it.")
            path.unlink()
    f = h5py.File(path, "w")
    f.attrs["signature"] = json.dumps(signature)
    return f


def _write_scene(group, scene: Scene, meta: dict, windows: list[Region], index: int, signature: dict,
                 feedback: Feedback) -> int:
    scale, p = signature["scale"], signature["patch_size"]
    side = p * scale
    bands = scene.cube.shape[0]
    for attr, value in meta.items():
        group.attrs[attr] = value
    group.attrs["good_bands"] = scene.good_bands.astype(np.uint8)
    group.attrs["order"] = scene.order.astype(np.int64)
    group.attrs["windows"] = json.dumps([list(region_tuple(r)) for r in windows])
    val = group.create_group("val")
    for k, region in enumerate(windows):
        crop = validation_crop(scene, region, scale)
        sub = val.create_group(str(k))
        for name, array in crop.items():
            sub.create_dataset(name, data=array)
        sub.attrs["region"] = list(region_tuple(region))

    lr = group.create_dataset("lr", shape=(0, bands, p, p), maxshape=(None, bands, p, p), dtype="float32",
                              chunks=(1, bands, p, p), compression="lzf")
    hr = group.create_dataset("hr", shape=(0, bands, side, side), maxshape=(None, bands, side, side),
                              dtype="float32", chunks=(1, bands, side, side), compression="lzf")
    origin = group.create_dataset("origin", shape=(0, 4), maxshape=(None, 4), dtype="int32")
    rng = np.random.default_rng((signature["seed"], 0, index))
    bad = ~scene.valid | _holdout_mask(scene.valid.shape, windows)
    touched = [_touched(bad, c) for c in AUGMENT_SCALES]
    candidates = [_admissible(t, side) for t in touched]
    cap = signature["max_patches_per_scene"]
    density = signature.get("positions_per_kilopixel")
    if density is None:
        per_scale = [signature["positions_per_scale"]] * len(AUGMENT_SCALES)
    else:
        per_scale = [max(1, round(density * int((~t).sum()) / 1000)) for t in touched]
    usable = sum(len(corners) > 0 for corners in candidates)
    if cap > 0 and usable:  # spread the cap over the scales that have room
        per_scale = [min(n, math.ceil(cap / (len(VERSIONS) * usable))) for n in per_scale]
    plans = []
    for s, (c, corners, wanted) in enumerate(zip(AUGMENT_SCALES, candidates, per_scale)):
        chosen = corners[rng.choice(len(corners), min(wanted, len(corners)), replace=False)]
        plans.append((s, c, chosen))
    total = sum(len(chosen) for *_, chosen in plans)
    count = done = 0
    for s, c, chosen in plans:
        if not len(chosen):
            continue
        scaled = scene.cube if c == 1.0 else resize.imresize(scene.cube, c, method="matlab")
        for row, col in chosen:
            feedback.check_cancelled()
            versions = augment(scaled[:, row:row + side, col:col + side])
            if cap > 0:
                versions = versions[:cap - count]
            n = len(versions)
            if n:
                for ds in (lr, hr, origin):
                    ds.resize(count + n, axis=0)
                hr[count:count + n] = versions
                lr[count:count + n] = degrade(versions, scale)
                origin[count:count + n] = [(s, row, col, v) for v in range(n)]
                count += n
            done += 1
            feedback.progress(done / total)
    group.attrs["count"] = count
    group.attrs["complete"] = True
    return count


class Batch(NamedTuple):
    """One mini-batch of one scene: lr (B,L,p,p), hr (B,L,P,P) float32, good_bands (L,) bool, and
    order, the good bands in processing order (targets and neighbours are drawn from it)."""

    lr: np.ndarray
    hr: np.ndarray
    good_bands: np.ndarray
    order: np.ndarray


@dataclass(frozen=True)
class PatchScene:
    key: str
    name: str
    count: int
    good_bands: np.ndarray
    order: np.ndarray


class PatchDataset:
    """Mini-batches of the patch file, one scene per batch, in an order fixed by (seed, epoch).

    For each epoch every scene's patches are shuffled and cut into global batches of
    batch_size * world_size patches (a last, shorter batch is kept when it holds at least one
    patch per process), then the list of batches is shuffled. With several processes (DDP) every
    process walks the same batch list and takes patches rank, rank + world_size, ... of each, so
    all processes step through the same scene at the same time.

    Args:
        h5_path: a file written by `build_patches`.
        batch_size: patches per process and batch.
        seed: the order's seed.
        rank, world_size: this process's share.
    """

    def __init__(self, h5_path: str | os.PathLike, batch_size: int = 16, seed: int = 1, rank: int = 0,
                 world_size: int = 1):
        h5py = require_h5py("Training")
        if batch_size < 1:
            raise InputError(f"BATCH_SIZE must be at least 1, got {batch_size}.")
        self.path = Path(h5_path)
        self.batch_size, self.seed, self.rank, self.world_size = int(batch_size), int(seed), int(rank), int(world_size)
        self._file = h5py.File(self.path, "r")
        signature = json.loads(self._file.attrs["signature"])
        self.scale, self.patch_size = signature["scale"], signature["patch_size"]
        self.scenes = []
        for key in sorted(self._file.keys()):
            g = self._file[key]
            if g.attrs.get("complete", False):
                self.scenes.append(PatchScene(key, str(g.attrs["name"]), int(g.attrs["count"]),
                                              np.asarray(g.attrs["good_bands"], bool),
                                              np.asarray(g.attrs["order"], np.int64)))
        self._length = len(self.batches(0))

    def close(self):
        self._file.close()

    def __len__(self) -> int:
        """Batches per epoch (the same for every epoch)."""
        return self._length

    def batches(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """The epoch's global batches as (scene index, patch indices), in order."""
        rng = np.random.default_rng((self.seed, 1, int(epoch)))
        size = self.batch_size * self.world_size
        batches = []
        for s, scene in enumerate(self.scenes):
            perm = rng.permutation(scene.count)
            batches += [(s, perm[i:i + size]) for i in range(0, scene.count, size)
                        if len(perm[i:i + size]) >= self.world_size]
        return [batches[i] for i in rng.permutation(len(batches))]

    def iterate(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """This process's share of the epoch's batches, from batch `start` on."""
        for s, indices in self.batches(epoch)[start:]:
            yield self.read(s, indices[self.rank::self.world_size])

    def read(self, scene_index: int, indices: np.ndarray) -> Batch:
        """Patches `indices` of a scene, in that order."""
        scene = self.scenes[scene_index]
        group = self._file[scene.key]
        indices = np.asarray(indices)
        ascending, inverse = np.unique(indices, return_inverse=True)  # h5py reads increasing indices
        lr = group["lr"][ascending][inverse]
        hr = group["hr"][ascending][inverse]
        return Batch(lr, hr, scene.good_bands, scene.order)

    def validation(self) -> list[dict]:
        """The stored validation crops: dicts with name, region, lr, hr, mask, good_bands, order."""
        items = []
        for scene in self.scenes:
            val = self._file[scene.key]["val"]
            for k in sorted(val.keys(), key=int):
                sub = val[k]
                items.append({"name": scene.name, "region": Region(*(int(v) for v in sub.attrs["region"])),
                              "lr": sub["lr"][()], "hr": sub["hr"][()], "mask": sub["mask"][()],
                              "good_bands": scene.good_bands, "order": scene.order})
        return items
