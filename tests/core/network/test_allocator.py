"""The glibc allocator settings of a run: freed large blocks kept for reuse inside, returned after."""
import numpy as np
import pytest

from dualsr_core.network import allocator

pytestmark = pytest.mark.skipif(allocator._LIBC is None, reason="glibc only")

BLOCK = 256 * 2**20


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def touch_and_free():
    block = np.ones(BLOCK, np.uint8)  # every page written, so resident
    del block


def test_default_allocator_returns_a_freed_large_block_at_once():
    before = resident_mb()
    touch_and_free()
    assert resident_mb() - before < 64


def test_inside_a_run_freed_blocks_stay_for_reuse_and_are_returned_when_it_ends():
    before = resident_mb()
    with allocator.reuse_large_blocks():
        touch_and_free()
        kept = resident_mb()
        with allocator.reuse_large_blocks():  # a second, overlapping run
            pass
        touch_and_free()  # reused: no second block
        still = resident_mb()
    after = resident_mb()
    assert kept - before > 200
    assert still - before < kept - before + 64
    assert after - before < 64


def test_release_free_memory_returns_what_a_run_freed():
    with allocator.reuse_large_blocks():
        before = resident_mb()
        touch_and_free()
        allocator.release_free_memory()
        assert resident_mb() - before < 64


def test_an_outside_heap_buffer_is_returned_to_the_system_when_released_even_inside_a_run():
    with allocator.reuse_large_blocks():
        before = resident_mb()
        block = allocator.outside_heap((BLOCK // 4,), np.float32)
        block[:] = 1.5
        assert block.flags.writeable and block.dtype == np.float32
        assert resident_mb() - before > 200
        assert float(block[::4096].sum()) == 1.5 * len(block[::4096])
        del block
        assert resident_mb() - before < 64


def test_outside_heap_takes_any_shape_including_empty():
    cube = allocator.outside_heap((3, 5, 7), np.uint16)
    cube[...] = np.arange(105, dtype=np.uint16).reshape(3, 5, 7)
    assert cube.shape == (3, 5, 7) and cube.dtype == np.uint16 and cube[2, 4, 6] == 104
    assert allocator.outside_heap((0, 5), np.float32).shape == (0, 5)


MALLINFO_PROBE = """
import ctypes, sys
from dualsr_core.network import allocator
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                "fordblks keepcost".split()]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def mapped():  # is a fresh 24 MiB block (below glibc's 32 MiB dynamic maximum) mapped on its own?
    before = libc.mallinfo2().hblks
    block = libc.malloc(24 * 2**20)
    result = libc.mallinfo2().hblks > before
    libc.free(block)
    return result
if sys.argv[1] == "run":
    with allocator.reuse_large_blocks():
        pass
print(mapped(), mapped())
"""


@pytest.mark.parametrize("after_a_run, expected", [(False, "True False"), (True, "True True")])
def test_after_a_run_glibc_dynamic_threshold_stays_off_as_the_module_says(after_a_run, expected):
    """mallopt(3): setting a threshold turns the dynamic one off for the process. Untouched, a freed
    mapped block raises the threshold, so the next one comes from the heap; after a run, never."""
    import subprocess
    import sys
    from pathlib import Path

    if not hasattr(allocator._LIBC, "mallinfo2"):
        pytest.skip("glibc without mallinfo2 (before 2.33)")
    def probe(mode):
        return subprocess.run([sys.executable, "-c", MALLINFO_PROBE, mode], check=True, capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parents[3]).stdout.split()

    if not after_a_run and probe("fresh") == ["True", "True"]:
        # glibc turns the dynamic threshold off when the environment sets a malloc parameter
        # (GLIBC_TUNABLES, MALLOC_TOP_PAD_, ...); seen on a CI machine: there is no untouched state to show
        pytest.skip("this environment already turns glibc's dynamic mmap threshold off")
    assert probe("run" if after_a_run else "fresh") == expected.split()
