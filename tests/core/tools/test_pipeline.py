"""Background reading and writing: order kept, bounded, errors raised in the caller."""
import threading
import time

import pytest

from dualsr_core.tools.pipeline import BackgroundWriter, prefetch


def test_prefetch_keeps_order_and_stays_bounded():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    seen = []
    for item in prefetch(items(), depth=2):
        time.sleep(0.002)
        assert len(produced) - len(seen) <= 4  # the buffer, one in hand and one being made
        seen.append(item)
    assert seen == list(range(20))


def test_prefetch_raises_the_producer_error():
    def items():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(items()))


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    for item in prefetch(iter(range(1000)), depth=2):
        if item == 3:
            break
    assert threading.active_count() == before


def test_writer_runs_in_order_and_raises_errors():
    written = []
    with BackgroundWriter(lambda a, b: written.append((a, b))) as writer:
        for i in range(10):
            writer.submit(i, -i)
    assert written == [(i, -i) for i in range(10)]

    def failing(value):
        if value == 2:
            raise ValueError("bad block")

    with pytest.raises(ValueError, match="bad block"):
        with BackgroundWriter(failing) as writer:
            for i in range(5):
                writer.submit(i)
                time.sleep(0.01)


def test_consumer_error_with_a_full_queue_does_not_hang():
    # The producer finishes (and wants to queue its end marker) while the consumer fails.
    def consume():
        for item in prefetch(iter(range(3)), depth=1):
            time.sleep(0.2)
            raise RuntimeError(f"failed on {item}")

    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="failed on 0"):
        consume()
    assert time.perf_counter() - started < 5
