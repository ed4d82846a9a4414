"""Atomic outputs: the one way every file this project writes reaches its destination.

A file is written under a temporary name beside its destination, checked, flushed to disk and
only then renamed onto the destination, so a reader sees either the earlier file, byte for byte,
or the complete new one, never a half-written file:

    with atomic_path(destination, inputs=[input_path]) as tmp:
        write(tmp)

Before anything is written the destination is compared with the run's inputs: a destination that
is an input, or shares a file with one (a file a VRT reads, an ENVI header, a .aux.xml sidecar, a
style, a hard link), is refused. Temporary names carry the host and process id of their writer,
`.<name>.dualsr-tmp-<host>-<pid>-<n><suffix>`, so the next run in a folder can tell the
leftovers of a killed run (a dead process on this host) from a concurrent run's files and
remove them. Work folders (`work_folder`) follow the same scheme.
"""
from __future__ import annotations

import errno
import itertools
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

TEMP_MARK = ".dualsr-tmp-"
ENVI_SUFFIXES = (".img", ".bsq", ".bil", ".bip", ".dat")  # an ENVI raster, beside its .hdr
GDAL_SUFFIXES = (".tif", ".tiff", ".vrt")  # the other rasters a folder is searched for
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)" + re.escape(TEMP_MARK) + r"(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-\d+")
_counter = itertools.count()
_this_thread = threading.local()
_OS_REASONS = {
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose another folder",
    errno.EROFS: "the folder is on a read-only file system; choose another folder",
    errno.EACCES: "you have no permission to write there; choose another folder",
    errno.EPERM: "you have no permission to write there; choose another folder",
    errno.ENOENT: "the folder does not exist and cannot be created; choose another folder",
    errno.ENOTDIR: "a file stands where a folder is expected; choose another path",
    errno.EISDIR: "it is a folder; give a file name",
}


def sidecars(path: str | os.PathLike) -> list[Path]:
    """The files GDAL and QGIS keep beside a raster: its .aux.xml, and for ENVI its .hdr."""
    path = Path(path)
    files = [Path(f"{path}.aux.xml")]
    if path.suffix.lower() in ENVI_SUFFIXES:
        files.append(path.with_suffix(".hdr"))
    return files


def style_path(raster: str | os.PathLike) -> Path:
    """The default-style file QGIS looks for: the raster's name with its last suffix replaced by .qml."""
    return Path(raster).with_suffix(".qml")


def files_written(destination: Path, styled: bool) -> list[Path]:
    """The files a writer of `destination` produces: it, its sidecars and, when `styled`, its style."""
    return [destination, *sidecars(destination)] + ([style_path(destination)] if styled else [])


def files_of_input(path: str | os.PathLike) -> list[Path]:
    """Every file of an input that a writer could clobber: the files GDAL reads for it (io/raster.py's
    files_gdal_reads: a VRT's sources, any ENVI header form), its sidecars, and its style, which
    QGIS shows a raster with whether it exists yet or not."""
    from .products import files_of_product  # a sensor product's images beside its metadata
    from .raster import files_gdal_reads  # raster.py writes through this module

    path = Path(path)
    files = [path] if path.exists() else []
    for file in [*files, *files_gdal_reads(path), *files_of_product(path)]:
        for own in (file, *sidecars(file), style_path(file)):
            if own not in files:
                files.append(own)
    return files


def _same_file(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: not the same file
        return False


def refuse_inputs(destination: str | os.PathLike, inputs: Iterable, parameter: str = "OUTPUT",
                  styled: bool = False) -> None:
    """Raise InputError when `destination` (or a sidecar it would write) is an input's file.

    Args:
        destination: the file about to be written.
        inputs: paths or GDAL strings read by the run, or (parameter name, path) pairs for a clearer
            message; everything GDAL reads for them counts (`files_of_input`).
        parameter: the parameter that names `destination`, for the message.
        styled: the run also writes the destination's default style (io/style.py), which may not be
            an input's style either: out.img beside the input out.tif would write out.qml, the style
            QGIS opens out.tif with (replacing it where DualSR wrote it, creating it where none is).
    """
    destination = Path(destination)
    written = files_written(destination, styled)
    for item in inputs:
        name, source = item if isinstance(item, tuple) else ("an input", item)
        if source is None:
            continue
        for theirs in files_of_input(source):
            for ours in written:
                if not _same_file(ours, theirs):
                    continue
                if ours != destination:
                    what = f"would also write '{ours}', a file of {name} '{source}'"
                elif theirs == Path(source):
                    what = f"is {name} '{source}'"
                else:
                    what = f"is a file of {name} '{source}'"
                raise InputError(f"{parameter} '{destination}' {what}; inputs are never overwritten: choose "
                                 f"another file name for {parameter}.")


def describe_os_error(exc: OSError, path: str | os.PathLike, parameter: str = "OUTPUT") -> str:
    """One sentence for a failed write: what failed, why, and what to do."""
    path = Path(path)
    reason = _OS_REASONS.get(exc.errno, exc.strerror or str(exc))
    blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # creating the folders failed on a file (EEXIST) or went through one (ENOTDIR)
        reason = f"'{blocker}' is a file, not a folder; choose another path"
    elif exc.errno == errno.ENOENT and path.parent.is_dir():
        reason = "its folder takes no new files (a system folder such as /proc); choose another folder"
    return f"{parameter} '{path}' could not be written: {reason}."


def temporary_name(destination: Path) -> Path:
    """A temporary name beside `destination` that keeps its suffix (GDAL picks drivers by it)."""
    suffix = destination.suffix
    stem = destination.name[: -len(suffix)] if suffix else destination.name
    return destination.with_name(f".{stem}{TEMP_MARK}{_HOST}-{os.getpid()}-{next(_counter)}{suffix}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(folder: str | os.PathLike, log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the temporary files and work folders that dead processes of this host left in `folder`.

    Files of live processes (a concurrent run) and of other hosts (a shared file system) stay.
    Returns the paths removed; `log` gets one line when there were any.
    """
    folder = Path(folder)
    removed, folders = [], 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or match["host"] != _HOST or _process_alive(int(match["pid"])):
            continue
        is_folder = entry.is_dir() and not entry.is_symlink()
        try:
            shutil.rmtree(entry) if is_folder else entry.unlink()
        except OSError:
            continue  # someone else's to clean; never fail a run for it
        removed.append(entry)
        folders += is_folder
    if removed and log:
        counts = [f"{n} {kind}{'s' if n > 1 else ''}" for n, kind in
                  ((len(removed) - folders, "temporary file"), (folders, "work folder")) if n]
        log(f"Removed {' and '.join(counts)} left by an interrupted earlier run in {folder}: "
            f"{', '.join(p.name for p in removed[:5])}{' ...' if len(removed) > 5 else ''}")
    return removed


def prepare_folder(destination: str | os.PathLike, parameter: str = "OUTPUT",
                   log: Callable[[str], None] | None = None) -> Path:
    """Create the destination's folder, check that a file can be created in it, and sweep the
    leftovers of killed runs from it (`sweep_stale`, which tells `log`)."""
    destination = Path(destination)
    if destination.is_dir():
        raise InputError(f"{parameter} '{destination}' is a folder; give a file name.")
    missing = [folder for folder in (destination.parent, *destination.parent.parents) if not folder.exists()]
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        _created_folders().extend(reversed(missing))
        probe = temporary_name(destination)
        with open(probe, "wb"):
            pass
        probe.unlink()
    except OSError as exc:
        raise InputError(describe_os_error(exc, destination, parameter)) from exc
    sweep_stale(destination.parent, log)
    return destination.parent


def _created_folders() -> list[Path]:
    """The folders `prepare_folder` created in this thread (a QGIS run has its own), outermost first."""
    if not hasattr(_this_thread, "created"):
        _this_thread.created = []
    return _this_thread.created


@contextmanager
def folders_removed_on_failure() -> Iterator[None]:
    """A run: when it fails, the folders it created for its outputs are removed again where they are
    still empty, so a failed run leaves no trace."""
    created = _created_folders()
    start = len(created)
    try:
        yield
    except BaseException:
        for folder in reversed(created[start:]):
            try:
                folder.rmdir()
            except OSError:  # not empty (someone else's file), or already gone
                pass
        raise
    finally:
        del created[start:]


def remove_quietly(path: str | os.PathLike) -> None:
    """Remove a file or folder if it is there; a clean-up never hides the error that caused it."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        pass


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        _fsync(folder)
    except OSError:  # not every file system syncs folders (e.g. some network mounts)
        pass


@contextmanager
def atomic_path(destination: str | os.PathLike, inputs: Iterable = (), parameter: str = "OUTPUT",
                verify: Callable[[Path], None] | None = None, with_sidecars: bool = False,
                log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success move it (and its sidecars) onto `destination`.

    Args:
        destination: the file to produce.
        inputs: what the run reads (see `refuse_inputs`); the destination may not be one of them.
        parameter: the parameter naming the destination, for messages.
        verify: called with the finished temporary file; raises when the file is not complete.
        with_sidecars: the writer also writes the temporary file's sidecars (.aux.xml, ENVI .hdr),
            which move with it; a sidecar of an earlier destination that the new file lacks is
            removed, so no stale header or statistics describe the new file.
        log: gets a line when leftovers of a killed run were removed.
    Raises:
        InputError: the destination is an input, or the write failed for a reason the user can
            fix (full disk, read-only folder, no permission); the earlier destination is untouched.
    """
    destination = Path(destination)
    refuse_inputs(destination, inputs, parameter)
    folder = prepare_folder(destination, parameter, log)
    tmp = temporary_name(destination)
    pairs = list(zip(sidecars(tmp), sidecars(destination))) if with_sidecars else []
    try:
        yield tmp
        if not tmp.is_file():
            raise InputError(f"{parameter} '{destination}' was not written (no file was produced).")
        if verify is not None:
            verify(tmp)
        for path in (tmp, *(t for t, _ in pairs if t.exists())):
            _fsync(path)
        for temporary, final in pairs:
            if temporary.exists():
                os.replace(temporary, final)
            else:
                remove_quietly(final)
        os.replace(tmp, destination)
        _fsync_folder(folder)
    except OSError as exc:
        _discard(tmp, pairs)
        raise InputError(describe_os_error(exc, destination, parameter)) from exc
    except BaseException:
        _discard(tmp, pairs)
        raise


def _discard(tmp: Path, pairs: list[tuple[Path, Path]]) -> None:
    remove_quietly(tmp)
    for temporary in [*sidecars(tmp), *(t for t, _ in pairs)]:
        remove_quietly(temporary)


@contextmanager
def work_folder(beside: str | os.PathLike, purpose: str = "work") -> Iterator[Path]:
    """A temporary folder beside `beside` (same file system, so results can be renamed out of it),
    removed when the block ends, and by `sweep_stale` of a later run if this process is killed.
    Errors that name a file in it name `beside` instead."""
    beside = Path(beside)
    folder = temporary_name(beside.with_name(f"{beside.stem}-{purpose}"))
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise InputError(describe_os_error(exc, beside)) from exc
    try:
        yield folder
    except InputError as exc:
        if str(folder) not in str(exc):
            raise
        # A file written in the folder failed (a full disk, say): the user named `beside`, not this folder.
        raise InputError(re.sub(re.escape(f"'{folder}") + r"[^']*'", f"'{beside}'", str(exc))) from exc
    finally:
        remove_quietly(folder)
