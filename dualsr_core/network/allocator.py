"""glibc malloc settings for running the network on a CPU.

One band of a 256-pixel tile allocates and frees dozens of feature maps of 10 to 60 MB. By default
glibc serves blocks that large with a fresh mmap() each time, or gives them back to the kernel as
soon as they are freed, so every feature map is page-faulted and zeroed again: measured on this
project's CPU, a fifth of the run time. While a run lasts, freed blocks stay in the heap and are
reused (the working set of a tile is bounded, so the heap is too); when the last run ends, the
thresholds are set back to glibc's initial 128 KiB and the free memory is returned to the system
(malloc_trim), which matters in a long-lived QGIS session. Setting them is not fully undone: per
mallopt(3), glibc's dynamic threshold (a freed mapped block raises the mmap threshold to its size,
up to 32 MiB, so later blocks of that size come from the heap) stays off for the rest of the process.
After the first run, every block above 128 KiB is mapped on its own and returned when freed: a
session's memory stays low, at the cost of page faults on large allocations elsewhere (numpy in
other plugins). Elsewhere than glibc (macOS, Windows, musl) nothing is changed.

Buffers that outlive the feature maps (a run of bands' output, blocks queued for the writer
thread) are mapped on their own (`outside_heap`): in the heap they would sit between feature maps
and make it grow past the working set, by an amount that depends on thread timing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys
import threading
from contextlib import contextmanager

import numpy as np

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 128 * 1024  # glibc's initial mmap and trim thresholds (fixed once set, see above)
RUN_MMAP_THRESHOLD = 1 << 30
RUN_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int

_lock = threading.Lock()
_runs = 0


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


_LIBC = _glibc()


def release_free_memory() -> None:
    """Give the free pages of every malloc arena back to the system (glibc); between tiles this keeps
    the resident size at what the next tile really touches."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


@contextmanager
def reuse_large_blocks():
    """Keep freed large blocks in the heap for reuse while inside; set glibc's initial thresholds
    again (fixed from now on: the dynamic threshold stays off) and trim when the last concurrent user
    leaves (two runs may overlap in QGIS's task manager)."""
    global _runs
    if _LIBC is None:
        yield
        return
    with _lock:
        _runs += 1
        if _runs == 1:
            _LIBC.mallopt(M_MMAP_THRESHOLD, RUN_MMAP_THRESHOLD)
            _LIBC.mallopt(M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                _LIBC.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)
                _LIBC.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD)
                _LIBC.malloc_trim(0)


def outside_heap(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A zero-filled array in an anonymous mapping of its own, unmapped when the array is released:
    for buffers that outlive the feature maps allocated around them."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, size), dtype).reshape(shape)
