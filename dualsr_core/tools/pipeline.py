"""Overlap reading and writing with compute: a bounded queue on each side of the network.

Tiles are read (and nodata filled) one or two ahead in a background thread, and written in another,
so the disk and the CPU or GPU work at the same time. Queues are bounded, so memory stays at a few
tiles whatever the raster size. An exception in a thread is raised in the caller.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items`, computed `depth` ahead in a background thread."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Queue an item unless the consumer has stopped; False when it has."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="dualsr-read", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """Run `write(*args)` calls in order in a background thread, at most `depth` pending.

    Use as a context manager; leaving it waits for every pending write and raises the first
    error of the thread. After an error, further submits raise it at once.
    """

    def __init__(self, write: Callable, depth: int = 2):
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="dualsr-write", daemon=True)

    def _loop(self):
        while True:
            args = self._queue.get()
            if args is _DONE:
                return
            if self._error is None:
                try:
                    self._write(*args)
                except BaseException as exc:
                    self._error = exc

    def submit(self, *args):
        if self._error is not None:
            raise self._error
        self._queue.put(args)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._queue.put(_DONE)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error
        return False
