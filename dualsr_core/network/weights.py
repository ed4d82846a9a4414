"""Weights files: a torch state dict plus a JSON-able header, in one `.pt` file.

Layout: {"header": {...}, "state_dict": {name: tensor}}. The state dict holds plain (weight norm
folded) tensors, possibly fp16 to keep files small. The header says what the weights are:
format, model configuration, scale, bands and data they were trained on, training settings and
validation metrics, and the sha256 of the state dict so a damaged file is caught. Files load with
`torch.load(weights_only=True)`: no pickled code ever runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from ..errors import WeightsError
from ..io.atomic import atomic_path
from .torch_support import require_torch

FORMAT = "dualsr-coarsr-weights/1"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "weights"  # the plugin folder's weights/
REQUIRED = ("format", "scale", "n_feats", "n_blocks", "n_asfm", "sha256")
WHOLE_NUMBERS = ("scale", "n_feats", "n_blocks", "n_asfm")  # header fields that build the network


def bundled_path(scale: int) -> Path:
    """Path of the weights shipped with the plugin for `scale` (it may not exist)."""
    return BUNDLED_DIR / f"coarsr_x{scale}.pt"


def state_sha256(state_dict) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict, in sorted key order."""
    torch = require_torch()
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save(path: str | os.PathLike, model, header: dict, half: bool = False, inputs=(),
         parameter: str = "OUTPUT_WEIGHTS") -> dict:
    """Write a folded model and its header atomically; also write `<name>.json` beside it.

    Args:
        path: destination `.pt` file.
        model: a CoarSR (weight norm folded or not: a folded copy is stored).
        header: extra JSON-able facts (training data, metrics, ...); configuration, format and
            sha256 are filled in here.
        half: store tensors as fp16 (halves the file; inference runs in fp32 or bf16 anyway).
        inputs, parameter: the run's inputs, which `path` may not be, and the parameter naming it.
    """
    torch = require_torch()
    from torch.nn.utils import parametrize

    from .model import CoarSR, fold_weight_norm

    # Fold a copy built from the state dict: the caller's model (maybe mid-training) stays as it is.
    normed = any(parametrize.is_parametrized(m) for m in model.modules())
    copy = CoarSR(model.config, weight_normed=normed)
    copy.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    state = {k: (v.half() if half and v.is_floating_point() else v).detach()
             for k, v in fold_weight_norm(copy).state_dict().items()}
    full = {**header, **model.config.as_dict(), "format": FORMAT, "dtype": "float16" if half else "float32",
            "sha256": state_sha256(state)}
    json.dumps(full)  # fail here, not at load, if the header is not JSON-able
    path = Path(path)
    with atomic_path(path, inputs, parameter) as tmp:
        torch.save({"header": full, "state_dict": state}, tmp)
    with atomic_path(path.with_suffix(".json"), inputs, parameter) as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return full


def read(path: str | os.PathLike, expected_scale: int | None = None,
         parameter: str = "WEIGHTS", reference_of: int | None = None, scale_name: str = "SCALE") -> tuple[dict, dict]:
    """Read and check a weights file; return (header, state_dict).

    Raises WeightsError, naming `parameter`, when the file is missing, not a weights file, damaged
    (sha256), or made for another scale than `expected_scale`; `reference_of` is the SCALE whose
    reference (at half of it) the weights are for, so that the message advises the right scale, and
    `scale_name` names SCALE (--scale on the command line).
    """
    torch = require_torch()
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{parameter} '{path}' is a folder; give a .pt file written by DualSR Train.")
    if not path.is_file():
        raise WeightsError(f"{parameter} file '{path}' does not exist.")
    try:
        with warnings.catch_warnings():  # torch's own advice about weights_only; our message says it all
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        # Not torch's text: it suggests weights_only=False, which would run the file's code.
        raise WeightsError(f"{parameter} file '{path}' is not a DualSR weights file: it is damaged, not a torch "
                           "file, or holds Python objects, which are never loaded; use a .pt file written by "
                           "DualSR Train.") from exc
    if not isinstance(payload, dict) or "header" not in payload or "state_dict" not in payload:
        raise WeightsError(f"{parameter} file '{path}' is a torch file but not a DualSR weights file "
                           "(no header/state_dict); use weights written by DualSR Train.")
    header, state = payload["header"], payload["state_dict"]
    if not isinstance(header, dict) or not isinstance(state, dict) or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{parameter} file '{path}' is a torch file but not a DualSR weights file (its header "
                           "or state dict is not a table of names); use weights written by DualSR Train.")
    missing = [key for key in REQUIRED if key not in header]
    if missing or header["format"] != FORMAT:
        raise WeightsError(f"{parameter} file '{path}' has an unknown header (missing "
                           f"{', '.join(missing) or 'nothing'}, format {header.get('format')!r}, expected "
                           f"{FORMAT!r}); use weights written by DualSR Train.")
    for key in WHOLE_NUMBERS:
        if isinstance(header[key], bool) or not isinstance(header[key], int) or header[key] < 1:
            raise WeightsError(f"{parameter} file '{path}' has an unreadable header: {key} is {header[key]!r}, "
                               "not a whole number; use weights written by DualSR Train.")
    if state_sha256(state) != header["sha256"]:
        raise WeightsError(f"{parameter} file '{path}' is damaged: its sha256 does not match its header; "
                           "copy or train it again.")
    if expected_scale is not None and header["scale"] != int(expected_scale):
        raise WeightsError(_scale_mismatch(path, header["scale"], int(expected_scale), parameter, reference_of,
                                           scale_name))
    return header, state


def _scale_mismatch(path: Path, trained: int, expected: int, parameter: str, reference_of: int | None,
                    scale_name: str) -> str:
    if reference_of is None:
        return (f"{parameter} file '{path}' was trained for scale x{trained} but {scale_name} is x{expected}. Choose "
                f"{scale_name} {trained} or weights for x{expected}.")
    return (f"{parameter} file '{path}' was trained for scale x{trained} but the reference of {scale_name} "
            f"{reference_of} is made at x{expected}. Choose {parameter} trained for x{expected}, or leave it empty for "
            f"the bundled x{expected} weights.")


def resolve(path: str | os.PathLike | None, scale: int, parameter: str = "WEIGHTS") -> Path:
    """The weights file to use: `path`, or the bundled file of `scale` when `path` is empty."""
    if path is not None and str(path) != "":
        return Path(path)
    path = bundled_path(scale)
    if not path.is_file():
        raise WeightsError(f"No bundled weights for scale x{scale} ({path.name} is not in the plugin's weights "
                           f"folder). Train some with dualsr:train and pass them as {parameter}.")
    return path


def check_weights(path: str | os.PathLike | None, scale: int, parameter: str = "WEIGHTS",
                  reference_of: int | None = None, scale_name: str = "SCALE") -> tuple[dict, dict]:
    """Read and check the weights a run will use (see `resolve` and `read`); return (header, state_dict)."""
    return read(resolve(path, scale, parameter), expected_scale=scale, parameter=parameter, reference_of=reference_of,
                scale_name=scale_name)


def network_config(header: dict):
    """The CoarSRConfig a weights header describes."""
    from .model import CoarSRConfig

    return CoarSRConfig(scale=int(header["scale"]), n_feats=int(header["n_feats"]), n_blocks=int(header["n_blocks"]),
                        n_asfm=int(header["n_asfm"]))


def load_model(path: str | os.PathLike | None, scale: int, device=None, parameter: str = "WEIGHTS"):
    """Build an inference-ready CoarSR (weight norm folded, eval mode) from a weights file.

    Args:
        path: weights file, or None for the bundled weights of `scale`.
        scale: the requested scale, checked against the file.
        device: torch device to move the model to.
        parameter: the parameter naming the file, for messages.
    Returns:
        (model, header)
    """
    from .model import CoarSR

    path = resolve(path, scale, parameter)
    header, state = read(path, expected_scale=scale, parameter=parameter)
    model = CoarSR(network_config(header), weight_normed=False)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightsError(f"{parameter} file '{path}' does not fit its own configuration: "
                           f"{_key_list('missing', missing)}{'; ' if missing and unexpected else ''}"
                           f"{_key_list('unexpected', unexpected)}; use weights written by DualSR Train.")
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{parameter} file '{path}' does not fit its own configuration: "
                           f"{_shape_mismatch(model, state)}; use weights written by DualSR Train.") from exc
    model.eval()
    if device is not None:
        model.to(device)
    return model, header


def _key_list(kind: str, keys: list[str], shown: int = 4) -> str:
    if not keys:
        return ""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} {kind} key(s) ({', '.join(keys[:shown])}{more})"


def _shape_mismatch(model, state: dict) -> str:
    """The tensors whose shapes differ from the network's, named with both shapes."""
    wrong = [f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}" for k, v in model.state_dict().items()
             if tuple(state[k].shape) != tuple(v.shape)]
    return "wrong shapes: " + ", ".join(wrong[:4]) + (f" and {len(wrong) - 4} more" if len(wrong) > 4 else "")
