"""Lazy access to torch, and device and thread selection.

Nothing else in dualsr_core imports torch at module level unless it is only reached after
`require_torch()`, so the plugin and `qgis_process help` load without torch installed.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from ..errors import InputError, MissingDependencyError
from ..options import DEVICES

INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "installer" / "install.py"
_INSTALL_HINT = (
    "In QGIS use Plugins > DualSR > Install PyTorch...; from a shell run "
    "'{python} {script}' (the Python that runs QGIS), "
    "or '{python} -m pip install torch' (see the plugin README)."
)


def running_python() -> str:
    """The python executable of the interpreter running this code, for install advice.

    Embedded in QGIS, `sys.executable` is only a guess (on Linux the first python3 on PATH, a pyenv
    shim say; on Windows qgis-bin.exe), so it counts only where it is a python inside this
    interpreter's prefix; otherwise the prefix's own python of this version is named.
    """
    executable = Path(sys.executable)
    prefixes = [Path(sys.prefix), Path(sys.exec_prefix)]
    if executable.name.lower().startswith("python") and \
            any(executable.parent in (prefix, prefix / "bin", prefix / "Scripts") for prefix in prefixes):
        return str(executable)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in prefixes:
        for candidate in (prefix / "bin" / f"python{version}", prefix / "bin" / "python3", prefix / "python.exe"):
            if candidate.is_file():
                return str(candidate)
    return sys.executable


def torch_status() -> tuple[bool, str]:
    """Return (True, version) when torch imports, else (False, a message saying how to install it)."""
    try:
        torch = importlib.import_module("torch")
    except (ImportError, OSError) as exc:  # OSError: a broken install ("DLL load failed" on Windows)
        hint = _INSTALL_HINT.format(python=running_python(), script=INSTALL_SCRIPT)
        return False, f"PyTorch is not importable ({exc}). {hint}"
    return True, torch.__version__


def require_torch():
    """Return the torch module or raise MissingDependencyError naming the install command."""
    ok, message = torch_status()
    if not ok:
        raise MissingDependencyError(message)
    import torch

    return torch


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity and cgroup quota), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            quota, period = f.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def select_device(name: str = "auto"):
    """Resolve DEVICE ('auto', 'cpu' or 'cuda') to a torch.device.

    'auto' takes CUDA when a GPU is visible and the CPU otherwise; 'cuda' without a GPU is an
    error rather than a silent fall-back, so a user who asked for the GPU learns it is absent.
    """
    torch = require_torch()
    if name not in DEVICES:
        raise InputError(f"DEVICE is '{name}' but must be one of {', '.join(DEVICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "DEVICE is 'cuda' but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
            "Choose 'auto' or 'cpu', or install a CUDA build of PyTorch."
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu" and torch.get_num_threads() > usable_cores():
        # torch counts the machine's cores, not this process's share (affinity, container quota);
        # a smaller count chosen by the caller (two trainings side by side) is kept.
        torch.set_num_threads(usable_cores())
    return torch.device(name)
