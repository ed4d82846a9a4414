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
