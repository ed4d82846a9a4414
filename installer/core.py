"""Plan and run the PyTorch install (and OpenVINO's, optional): standard library only, no QGIS.

The install goes into the plugin's own folder in the QGIS profile (`paths.packages_dir`), which
the plugin appends to sys.path: QGIS's own packages always come first. pip runs with `--target`
into a staging folder next to it, with a constraints file pinning the versions QGIS's Python
already has (numpy, scipy, GDAL, rasterio, h5py, ...), so nothing is resolved against another
numpy. Copies of packages QGIS already has are then removed from the staging folder (they would
never be imported and only mislead), the rest is moved into the target, and a fresh Python process
imports torch (and openvino) with the target appended, as the plugin does.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from platform import machine as host_machine

from . import paths

PYTORCH_INDEX = "https://download.pytorch.org/whl/{variant}"
# CUDA builds on the PyTorch index (newest last). A driver runs builds of its own CUDA major
# version (CUDA minor version compatibility), so the newest build not newer than the driver is chosen.
CUDA_TAGS = ((12, 6), (12, 8), (13, 0))
# Pure-Python helpers that recent torch releases ask for in versions newer than some QGIS builds
# carry (Debian 12: sympy 1.11, setuptools 66). They are not pinned, so pip can resolve; if QGIS
# has them, QGIS's copy is still the one imported (the target comes last on sys.path) and the
# verification reports the difference. torch imports and runs with them (measured: torch 2.13.0
# with Debian 12's sympy 1.11.1 and setuptools 66.1.1).
NOT_PINNED = frozenset({"sympy", "mpmath", "setuptools", "typing-extensions", "networkx", "filelock", "fsspec",
                        "jinja2", "markupsafe", "pip", "wheel"})
# Approximate (download MB, installed MB) of torch plus its dependencies. Linux CPU is measured
# (torch 2.13.0+cpu: 192 MB wheel, 761 MB installed); the others are rough figures from PyPI.
SIZES_MB = {
    ("linux", "cpu"): (200, 800),
    ("win32", "cpu"): (130, 550),
    ("darwin", "cpu"): (80, 350),
    ("linux", "cuda"): (2800, 5500),
    ("win32", "cuda"): (2600, 5000),
}
# OpenVINO runs the int8 path on CPUs. The version is dualsr_core/network/int8.py's (the one measured;
# a test keeps the two equal): the installer imports no torch, so it cannot import that module.
OPENVINO_VERSION = "2026.4.1"
OPENVINO = f"openvino=={OPENVINO_VERSION}"
# Approximate (download MB, installed MB) of openvino plus openvino-telemetry. Downloads are the
# wheel sizes on PyPI; Linux installed is measured (180 MB), the others are rough.
OPENVINO_SIZES_MB = {"linux": (60, 180), "win32": (85, 250), "darwin": (35, 110)}
# The platforms (platform.machine(), lower case) and Pythons that OpenVINO 2026.4.1 has wheels for:
# without one, pip would fail the whole install, torch included.
OPENVINO_MACHINES = {"linux": ("x86_64", "aarch64"), "win32": ("amd64",), "darwin": ("arm64",)}
OPENVINO_PYTHONS = ((3, 10), (3, 14))
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?w?(\.exe)?", re.I)
_VERSION = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


class InstallError(Exception):
    """The install cannot go on; the message says why in one sentence."""


class InstallCancelled(InstallError):
    """The user cancelled; nothing was changed in the target folder."""


class IndexUnreachable(InstallError):
    """The PyTorch index did not answer; pip never ran. The caller may offer PyPI's build instead."""


def canonical(name: str) -> str:
    """PEP 503 normalised project name (`Typing_Extensions` -> `typing-extensions`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """`torch==2.13.0` -> `torch`; a wheel path -> the project name from its file name."""
    if requirement.endswith(".whl"):
        return canonical(Path(requirement).name.split("-")[0])
    return canonical(re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0])


# ---------------------------------------------------------------------------------------------
# The Python that runs QGIS


def probe_python(python: str) -> tuple[tuple[int, int], str] | None:
    """(major.minor, sys.prefix) of the interpreter `python`, or None when it does not run."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2]); print(sys.prefix)"],
                             capture_output=True, text=True, timeout=60, env=_env_without_pythonpath(), **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != 2 or len(lines[0].split()) != 2:
        return None
    major, minor = lines[0].split()
    return (int(major), int(minor)), lines[1].strip()


def running_python() -> tuple[tuple[int, int], str]:
    """(major.minor, sys.prefix) of this process: the Python that runs QGIS when QGIS runs this code."""
    return tuple(sys.version_info[:2]), sys.prefix


def same_python(found, expected) -> bool:
    """Whether two (version, prefix) pairs name one interpreter installation."""
    return found is not None and found[0] == expected[0] and _same_path(found[1], expected[1])


def refuse_other_python(python: str, found, expected) -> InstallError:
    """The one sentence that refuses an interpreter that is not the one running QGIS."""
    what = "does not run" if found is None else \
        f"is Python {'.'.join(map(str, found[0]))} with prefix {found[1]}"
    return InstallError(
        f"{python} {what}, but QGIS runs Python {'.'.join(map(str, expected[0]))} with prefix {expected[1]}; "
        "packages installed with it would not load in QGIS, so give QGIS's own python (DUALSR_PYTHON) or none.")


def find_python(executable: str | None = None, platform: str | None = None, prefix: str | None = None,
                exec_prefix: str | None = None, version=None, environ=None, exists=os.path.isfile,
                probe=probe_python, qgis_prefix: str | None = None) -> str:
    """Return the python executable of the interpreter that runs QGIS (and this code), never one from PATH.

    Embedded in QGIS, `sys.executable` is only a guess: on Linux Python looks `python3` up on PATH
    (a pyenv shim when the shell had one first), on Windows it is `qgis-bin.exe` and in the macOS
    bundle `QGIS.app/Contents/MacOS/QGIS`. So every candidate (`sys.executable` when it is named
    python, then the layouts under `sys.prefix` / `sys.exec_prefix`, QGIS's prefix `qgis_prefix`
    (QgsApplication.prefixPath()), OSGeo4W's `apps/Python3XX` and `bin`, the bundle's `bin`) is
    run, and taken only when it reports this Python's major.minor and `sys.prefix`.
    `DUALSR_PYTHON` names it instead, and is checked the same way.
    """
    executable = sys.executable if executable is None else executable
    platform = platform or sys.platform
    prefix = sys.prefix if prefix is None else prefix
    exec_prefix = sys.exec_prefix if exec_prefix is None else exec_prefix
    version = tuple((version or sys.version_info)[:2])
    environ = os.environ if environ is None else environ
    windows = platform.startswith("win")
    join = _join_for(platform)
    expected = (version, prefix)

    override = environ.get("DUALSR_PYTHON")
    if override:
        if not exists(override):
            raise InstallError(f"DUALSR_PYTHON is '{override}' but no such file exists.")
        found = probe(override)
        if not same_python(found, expected):
            raise refuse_other_python(override, found, expected)
        return override

    name = _basename(executable, windows)
    candidates = []
    if _PYTHON_NAME.fullmatch(name):
        if name.lower().startswith("pythonw"):  # the windowed Python prints nothing: use its console twin
            candidates.append(join(_dirname(executable, windows), "python.exe" if windows else "python3"))
        else:
            candidates.append(executable)
    major, minor = version
    if windows:
        for folder in (prefix, exec_prefix):
            candidates.append(join(folder, "python.exe"))
        root = environ.get("OSGEO4W_ROOT")
        if root:
            candidates += [join(root, "apps", f"Python{major}{minor}", "python.exe"), join(root, "bin", "python.exe")]
        if qgis_prefix:  # OSGeo4W and the standalone installer: <root>/apps/qgis beside <root>/apps/Python3XX
            candidates.append(join(_dirname(qgis_prefix, windows), f"Python{major}{minor}", "python.exe"))
        bindir = _dirname(executable, windows) if executable else ""
        if bindir:
            candidates += [join(bindir, "python.exe"), join(bindir, "python3.exe"),
                           join(_dirname(bindir, windows), "apps", f"Python{major}{minor}", "python.exe")]
    else:
        for folder in (prefix, exec_prefix) + ((qgis_prefix,) if qgis_prefix else ()):
            candidates += [join(folder, "bin", f"python{major}.{minor}"), join(folder, "bin", "python3")]
        bindir = _dirname(executable, windows) if executable else ""
        if bindir:  # macOS QGIS.app/Contents/MacOS/QGIS -> Contents/MacOS/bin/python3
            candidates += [join(bindir, "bin", f"python{major}.{minor}"), join(bindir, "bin", "python3"),
                           join(bindir, f"python{major}.{minor}"), join(bindir, "python3")]
    seen = set()
    for candidate in candidates:
        if candidate in seen or not exists(candidate):
            continue
        seen.add(candidate)
        if same_python(probe(candidate), expected):
            return candidate
    raise InstallError(
        f"Could not find the Python {major}.{minor} that runs QGIS (sys.executable is '{executable}', "
        f"sys.prefix is '{prefix}'); set DUALSR_PYTHON to its python executable and try again.")


def _same_path(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _join_for(platform: str):
    if platform.startswith("win"):
        import ntpath

        return ntpath.join
    import posixpath

    return posixpath.join


def _basename(path: str, windows: bool) -> str:
    import ntpath
    import posixpath

    return (ntpath if windows else posixpath).basename(path)


def _dirname(path: str, windows: bool) -> str:
    import ntpath
    import posixpath

    return (ntpath if windows else posixpath).dirname(path)


# ---------------------------------------------------------------------------------------------
# GPU and wheel choice


@dataclass
class Gpu:
    name: str
    driver: str
    cuda: tuple[int, int] | None  # the newest CUDA version the driver supports


def cpu_fast_int8(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """'AMX' or 'VNNI' when the CPU has the int8 dot products that make the int8 path faster than
    fp32, else None (also off Linux, where this is not read). The same test as the engine's
    (dualsr_core/network/engine.py, which imports torch and so cannot be used here)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return None
    if "amx_int8" in flags:
        return "AMX"
    return "VNNI" if {"avx512_vnni", "avx_vnni"} & flags else None


def detect_nvidia_gpu(run=subprocess.run, which=shutil.which, platform: str | None = None) -> Gpu | None:
    """The first NVIDIA GPU that `nvidia-smi` reports, or None (no driver, no GPU, macOS)."""
    platform = platform or sys.platform
    if platform == "darwin":
        return None
    exe = which("nvidia-smi")
    if exe is None and platform.startswith("win"):
        for candidate in (r"C:\Windows\System32\nvidia-smi.exe",
                          r"C:\Program Files\NVIDIA Corporation\NVSMI\nvidia-smi.exe"):
            if os.path.isfile(candidate):
                exe = candidate
                break
    if exe is None:
        return None
    try:
        query = run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True,
                    text=True, timeout=30, **_no_window())
        banner = run([exe], capture_output=True, text=True, timeout=30, **_no_window())
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line for line in query.stdout.splitlines() if line.strip()] if query.returncode == 0 else []
    if not lines:
        return None
    name, _, driver = lines[0].rpartition(",")
    match = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", banner.stdout or "")
    cuda = (int(match.group(1)), int(match.group(2))) if match else None
    return Gpu(name.strip(), driver.strip(), cuda)


def cuda_tag(driver_cuda: tuple[int, int] | None) -> str | None:
    """The PyTorch CUDA build (`cu126`, ...) for a driver, or None when no build suits it."""
    if driver_cuda is None:
        return None
    usable = [t for t in CUDA_TAGS if t <= driver_cuda]
    same_major = [t for t in CUDA_TAGS if t[0] == driver_cuda[0]]
    if usable:
        tag = max(usable)
    elif same_major:  # minor version compatibility: a 12.x driver runs any 12.x build
        tag = min(same_major)
    else:
        return None
    return f"cu{tag[0]}{tag[1]}"


def openvino_wheel(platform: str, machine: str, version) -> bool:
    """Whether OpenVINO OPENVINO_VERSION has a wheel for this platform, machine and Python (None: unknown, yes)."""
    if version is not None and not OPENVINO_PYTHONS[0] <= tuple(version[:2]) <= OPENVINO_PYTHONS[1]:
        return False
    return machine.lower() in OPENVINO_MACHINES.get(_platform_key(platform), ())


def _platform_key(platform: str) -> str:
    return "win32" if platform.startswith("win") else platform if platform == "darwin" else "linux"


BUILD_NAMES = {"cpu": "CPU build", "cuda": "CUDA build"}


def pypi_torch_build(platform: str, machine: str) -> str:
    """The torch build PyPI serves: CUDA on Linux x86_64 (it pulls NVIDIA's libraries), CPU elsewhere."""
    return "cuda" if _platform_key(platform) == "linux" and machine.lower() in ("x86_64", "amd64") else "cpu"


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass
class Plan:
    """What will be installed where, and how big it is."""

    python: str
    target: Path
    requirements: list[str]
    variant: str  # "cpu" or "cuda"
    index_url: str | None  # an extra index (the PyTorch one) besides pip's configured index, or None
    gpu: Gpu | None = None
    download_mb: int | None = None
    disk_mb: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def staging(self) -> Path:
        return self.target.parent / f".{self.target.name}.partial"

    def installs(self, name: str) -> bool:
        return any(requirement_name(r) == name for r in self.requirements)

    def size(self) -> str:
        return f"about {self.download_mb:,} MB to download, {self.disk_mb:,} MB on disk" if self.download_mb else \
            "size unknown"

    def describe(self) -> str:
        build = " (CUDA build)" if self.variant == "cuda" else " (CPU build)"
        packages = ", ".join(r + build if requirement_name(r) == "torch" else r for r in self.requirements)
        lines = [f"Packages: {packages} and the dependencies QGIS does not have yet",
                 f"Into: {self.target} (a folder of this plugin; QGIS's own packages are left untouched)",
                 f"With: {self.python} -m pip"]
        if self.index_url:
            lines.append(f"From: {self.index_url} and pip's usual index (PyPI)")
        if self.gpu and self.installs("torch"):
            cuda = ".".join(map(str, self.gpu.cuda)) if self.gpu.cuda else "unknown"
            lines.append(f"GPU: {self.gpu.name} (driver {self.gpu.driver}, CUDA {cuda})")
        if self.download_mb:
            lines.append(f"Size: {self.size()}")
        lines += self.notes
        return "\n".join(lines)


def make_plan(profile_dir=None, target=None, requirements=None, variant: str = "auto", index_url: str | None = None,
              python: str | None = None, gpu="detect", platform: str | None = None, openvino: bool = False,
              have_torch="detect", machine: str | None = None, qgis_prefix: str | None = None, runs_qgis=None,
              probe=probe_python) -> Plan:
    """Decide the Python, the folder, the torch build and its index.

    `variant` is "auto" (CUDA when `nvidia-smi` finds an NVIDIA GPU, else CPU), "cpu" or "cuda".
    `index_url` None takes the PyTorch index of that build when torch is installed (macOS: PyPI
    only); "" uses only pip's configured index, whose torch is PyPI's build (`pypi_torch_build`):
    "auto" then takes that build and another one asked for is refused. `openvino` adds OpenVINO
    (the int8 path); with the default requirements and a torch that QGIS's Python already finds
    (in its own packages or in the target), OpenVINO is installed alone, so adding it later
    downloads no torch again. `python` must be the interpreter `runs_qgis` ((major.minor,
    sys.prefix), this process's by default); None finds it (`find_python`, with QGIS's
    `qgis_prefix`). `gpu`, `have_torch`, `machine` and `probe` may be given (tests) instead of
    running nvidia-smi, asking the Python and asking the platform module.
    """
    platform = platform or sys.platform
    machine = machine or host_machine()
    if variant not in ("auto", "cpu", "cuda"):
        raise InstallError(f"variant is '{variant}' but must be auto, cpu or cuda.")
    expected = runs_qgis or running_python()
    if python:
        found = probe(python)
        if not same_python(found, expected):
            raise refuse_other_python(python, found, expected)
    else:
        python = find_python(version=expected[0], prefix=expected[1], platform=platform, probe=probe,
                             qgis_prefix=qgis_prefix)
    version = expected[0]
    if target is None:
        target = paths.packages_dir(profile_dir if profile_dir is not None else paths.default_profile_dir(), version)
    notes = []
    if openvino and not openvino_wheel(platform, machine, version):
        raise InstallError(f"OpenVINO {OPENVINO_VERSION} has no wheel for Python {'.'.join(map(str, version))} on "
                           f"{platform} {machine}; install without OpenVINO.")
    requirements = list(requirements or [])
    if not requirements:
        if openvino and (_finds(python, target, "torch") if have_torch == "detect" else have_torch):
            notes.append("Note: PyTorch is already installed for QGIS, so only OpenVINO is installed.")
        else:
            requirements = ["torch"]
    names = {requirement_name(r) for r in requirements}
    if openvino and "openvino" not in names:
        requirements.append(OPENVINO)
        names.add("openvino")
    torch = "torch" in names
    if gpu == "detect":
        gpu = detect_nvidia_gpu(platform=platform)
    tag = cuda_tag(gpu.cuda) if gpu else None
    if torch and index_url == "":
        pypi = pypi_torch_build(platform, machine)
        if variant not in ("auto", pypi):
            raise InstallError(
                f"The {BUILD_NAMES[variant]} of PyTorch is not on PyPI for {platform} {machine} (PyPI has the "
                f"{BUILD_NAMES[pypi]}); install from the PyTorch index (without --no-pytorch-index) or choose "
                f"the {BUILD_NAMES[pypi]}.")
        variant = pypi
        if pypi == "cuda":
            notes.append("Note: PyPI's torch for Linux is the CUDA build, with NVIDIA's libraries.")
    if variant == "auto":
        variant = "cuda" if tag else "cpu"
        if gpu and not tag and torch:
            notes.append(f"Note: the NVIDIA driver {gpu.driver} is too old for PyTorch's CUDA builds; installing the "
                         "CPU build (update the driver to use the GPU).")
    if variant == "cuda" and platform == "darwin":
        raise InstallError("variant is 'cuda' but macOS has no CUDA builds of PyTorch; choose cpu.")
    if variant == "cuda" and not tag:
        tag = f"cu{CUDA_TAGS[-1][0]}{CUDA_TAGS[-1][1]}"
    if index_url is None and platform != "darwin" and torch:
        index_url = PYTORCH_INDEX.format(variant=tag if variant == "cuda" else "cpu")
    key = _platform_key(platform)
    sizes = [SIZES_MB.get((key, variant)) if torch else None,
             OPENVINO_SIZES_MB.get(key) if "openvino" in names else None]
    known = [s for s in sizes if s]
    download_mb, disk_mb = (sum(s[0] for s in known), sum(s[1] for s in known)) if known else (None, None)
    if all(sizes):
        notes.append("OpenVINO {} (int8 inference on CPUs) is about {:,} MB of that download and {:,} MB on disk."
                     .format(OPENVINO_VERSION, *sizes[1]))
    return Plan(python=python, target=Path(target), requirements=requirements, variant=variant,
                index_url=index_url or None, gpu=gpu, download_mb=download_mb, disk_mb=disk_mb, notes=notes)


_FINDS = ("import importlib.util, sys; sys.path.append(sys.argv[1]); "
          "print(importlib.util.find_spec(sys.argv[2]) is not None)")


def _finds(python: str, target, module: str) -> bool:
    """Whether `python`, with `target` appended as the plugin does, finds `module` (without importing it)."""
    try:
        out = subprocess.run([python, "-c", _FINDS, str(target), module], capture_output=True, text=True, timeout=60,
                             env=_env_without_pythonpath(), **_no_window())
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "True"


# ---------------------------------------------------------------------------------------------
# Running it

INDEX_TIMEOUT_S = 5
# pip's defaults (5 retries, 15 s timeout) spent about 260 s per unreachable index before falling
# back to PyPI; the index is checked first instead, and pip gives up at once on a dead connection.
PIP_NETWORK_ARGS = ["--retries", "0", "--timeout", "20"]


def index_problem(index_url: str, timeout: float = INDEX_TIMEOUT_S) -> str | None:
    """Why the package index cannot give torch's page (one phrase), or None when it can."""
    import urllib.error
    import urllib.parse
    import urllib.request

    page = index_url.rstrip("/") + "/torch/"
    if page.startswith("file:"):  # a folder of wheels: pip reads it if it is there
        folder = urllib.request.url2pathname(urllib.parse.urlparse(index_url).path)
        return None if os.path.isdir(folder) else f"no folder {folder}"
    try:
        with urllib.request.urlopen(page, timeout=timeout) as response:
            response.read(1)
    except urllib.error.HTTPError as exc:
        return f"it answered HTTP {exc.code} for {page}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def torch_build(folder: Path) -> str | None:
    """'cpu' or 'cuda' for the torch pip put into `folder` (None: no torch there).

    PyPI's Linux torch carries no "+cu" label, so its CUDA version in torch/version.py and the
    nvidia-* projects beside it are what tell.
    """
    version_file = Path(folder) / "torch" / "version.py"
    if not version_file.is_file():
        return None
    match = re.search(r"^cuda\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", version_file.read_text(encoding="utf-8",
                                                                              errors="replace"), re.M)
    nvidia = any(_dist_name_version(info)[0].startswith("nvidia-") for info in _dist_infos(Path(folder)))
    return "cuda" if match or nvidia else "cpu"


def folder_mb(folder: Path) -> int:
    """Size of the files under `folder`, in MB."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()) // 2**20


def _known_version(version: str) -> bool:
    """Debian's mpmath reports 0.0.0: a version that says nothing is not shown or compared."""
    return bool(version) and version != "0.0.0"

_LIST_DISTRIBUTIONS = r"""
import json, os, sys
skip = {os.path.normcase(os.path.abspath(p)) for p in sys.argv[1:]}
sys.path[:] = [p for p in sys.path if os.path.normcase(os.path.abspath(p or '.')) not in skip]
import importlib.metadata as md
found = {}
for dist in md.distributions():
    name = dist.metadata['Name']
    if name and name not in found:
        found[name] = [dist.version, str(dist.locate_file(''))]
print(json.dumps(found))
"""

_VERIFY = r"""
import importlib, json, os, sys
target = os.path.abspath(sys.argv[1])
sys.path.append(target)   # as the plugin does: last, so QGIS's own packages win
try:  # importing openvino sends usage telemetry unless refused; no answer is no, as in dualsr_core's int8.py
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    _check = OptInChecker.check

    def _unanswered_is_no(self, *args, **kwargs):
        result = _check(self, *args, **kwargs)
        return ConsentCheckResult.DECLINED if result == ConsentCheckResult.NO_FILE else result

    OptInChecker.check = _unanswered_is_no
except ImportError:
    pass
report = {}
for name in sys.argv[2:]:
    try:
        module = importlib.import_module(name)
        report[name] = {'ok': True, 'version': getattr(module, '__version__', ''),
                        'file': os.path.abspath(getattr(module, '__file__', None) or '')}
        if name == 'torch':
            x = module.nn.functional.conv2d(module.ones(1, 1, 4, 4), module.ones(1, 1, 3, 3))
            report[name]['conv2d'] = float(x.sum())
            report[name]['cuda'] = bool(module.cuda.is_available())
        if name == 'openvino':   # the int8 path compiles for the CPU device: its plugin must load
            report[name]['devices'] = list(module.Core().available_devices)
            if 'CPU' not in report[name]['devices']:
                raise RuntimeError('OpenVINO lists no CPU device')
    except Exception as exc:
        report[name] = {'ok': False, 'error': f'{type(exc).__name__}: {exc}'}
try:
    import numpy
except ImportError:
    numpy = None
if numpy is not None:
    report['numpy (QGIS)'] = {'ok': True, 'version': numpy.__version__, 'file': os.path.abspath(numpy.__file__)}
print('DUALSR-VERIFY ' + json.dumps(report))
"""


@dataclass
class Result:
    target: Path
    modules: dict  # import name -> {'ok', 'version', 'file', ...} from a fresh process
    kept: dict  # project name -> version QGIS already has (copies removed from the target)
    notes: list[str]
    installed: str = ""  # what pip put into the target: "torch 2.13.0+cpu (CPU build)", ...
    added_mb: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.modules) and all(m["ok"] for m in self.modules.values())

    def summary(self) -> str:
        lines = [f"Installed: {self.installed}; {self.added_mb:,} MB added to {self.target}"] if self.installed else []
        for name, m in self.modules.items():
            if m["ok"]:
                lines.append(f"{name} {m['version']} imports in a fresh process from {m['file']}")
            else:
                lines.append(f"{name} does not import in a fresh process: {m['error']}")
        return "\n".join(lines + self.notes)


class Installer:
    """Runs a Plan. `log(line)` receives pip's output as it comes; `cancel()` kills pip (any thread)."""

    def __init__(self, plan: Plan, log=print, check_modules=None, extra_pip_args=()):
        self.plan = plan
        self.log = log
        self.check_modules = list(check_modules or [_import_name(r) for r in plan.requirements])
        self.extra_pip_args = list(extra_pip_args)
        self._cancelled = threading.Event()
        self.notes = []
        self._process = None
        self._lock = threading.Lock()

    # -- cancel --------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            _kill_tree(process)

    def _check_cancel(self) -> None:
        if self._cancelled.is_set():
            raise InstallCancelled("Cancelled: pip was stopped and the packages folder was left as it was.")

    # -- run -----------------------------------------------------------------------------------
    def run(self) -> Result:
        plan = self.plan
        staging = plan.staging
        self.log(plan.describe())
        self._check_index()
        self._check_space()
        pip = self.pip_command()
        installed = self.installed_distributions()
        for requirement in plan.requirements:
            name = requirement_name(requirement)
            if name in installed:
                version, where = installed[name]
                raise InstallError(
                    f"{name} {version} is already installed in QGIS's Python ({where}); it would hide a copy in "
                    f"{plan.target}. Use or remove that one instead.")
        with FolderLock(plan.target):
            shutil.rmtree(staging, ignore_errors=True)  # left by a crashed run
            staging.mkdir(parents=True)
            try:
                constraints = staging.parent / f".{plan.target.name}.constraints.txt"
                pins = self.pins(installed, plan.requirements)
                constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())), encoding="utf-8")
                try:
                    self._pip(pip, staging, constraints)
                finally:
                    constraints.unlink(missing_ok=True)
                self._check_cancel()
                self._check_build(staging)
                kept = self.remove_copies(staging, installed)
                self._check_cancel()
                installed_text, added_mb = self.describe_staged(staging), folder_mb(staging)
                self.merge(staging, plan.target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        result = self.verify(kept)
        result.installed, result.added_mb = installed_text, added_mb
        for line in result.summary().splitlines():
            self.log(line)
        return result

    def _check_index(self) -> None:
        """Once, for a few seconds: pip would otherwise retry a dead PyTorch index for minutes and
        then take PyPI's torch, another build than the plan's."""
        if not (self.plan.index_url and self.plan.installs("torch")):
            return
        self.log(f"Checking that {self.plan.index_url} can be reached...")
        problem = index_problem(self.plan.index_url)
        if problem:
            raise IndexUnreachable(f"The PyTorch index {self.plan.index_url} cannot be reached ({problem}); "
                                   "nothing was installed.")

    def _check_build(self, staging: Path) -> None:
        """pip takes the highest torch of all indexes: refuse a CUDA build where the CPU build was asked."""
        if self.plan.variant != "cpu" or torch_build(staging) != "cuda":
            return
        version = next((v for n, v in map(_dist_name_version, _dist_infos(staging)) if n == "torch"), "")
        source = self.plan.index_url or "pip's index"
        raise InstallError(f"pip chose torch {version}, a CUDA build ({folder_mb(staging):,} MB), where the CPU "
                           f"build was asked (from {source}); nothing was installed.")

    def describe_staged(self, staging: Path) -> str:
        """The requested projects pip put into `staging`, with versions, and torch's build."""
        versions = dict(map(_dist_name_version, _dist_infos(staging)))
        asked = [requirement_name(r) for r in self.plan.requirements]
        build = torch_build(staging)
        return ", ".join(f"{name} {versions[name]}" + (f" ({BUILD_NAMES[build]})" if name == "torch" and build else "")
                         for name in asked if name in versions)

    def _check_space(self) -> None:
        if not self.plan.disk_mb:
            return
        folder = self.plan.target
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        free_mb = shutil.disk_usage(folder).free // 2**20
        if free_mb < self.plan.disk_mb * 1.2:
            raise InstallError(f"Only {free_mb:,} MB are free on the disk of {self.plan.target}; the install needs "
                               f"about {self.plan.disk_mb:,} MB. Free some space and try again.")

    def pip_command(self) -> list[str]:
        """`python -m pip`, or pip run from the pip wheel that ships with Python when pip is not installed."""
        python = self.plan.python
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                               **_no_window())
        if probe.returncode == 0:
            return [python, "-m", "pip"]
        where = subprocess.run([python, "-c", "import ensurepip, os; print(os.path.dirname(ensurepip.__file__))"],
                               capture_output=True, text=True, **_no_window())
        folders = [Path(where.stdout.strip()) / "_bundled"] if where.returncode == 0 else []
        folders.append(Path("/usr/share/python-wheels"))  # Debian and Ubuntu
        for folder in folders:
            wheels = sorted(folder.glob("pip-*.whl")) if folder.is_dir() else []
            if wheels:
                return [python, str(wheels[-1] / "pip")]
        raise InstallError(f"pip is not available for {python}; install it (Debian/Ubuntu: sudo apt install "
                           "python3-pip) and try again.")

    def installed_distributions(self) -> dict:
        """{project name: (version, location)} of what QGIS's Python imports, without our folder."""
        out = subprocess.run([self.plan.python, "-c", _LIST_DISTRIBUTIONS, str(self.plan.target),
                              str(self.plan.staging)], capture_output=True, text=True, **_no_window())
        if out.returncode != 0:
            raise InstallError(f"Could not list the packages of {self.plan.python}: {_last_line(out.stderr)}")
        found = {}
        for name, (version, where) in json.loads(out.stdout).items():
            found.setdefault(canonical(name), (version, where))
        return found

    @staticmethod
    def pins(installed: dict, requirements) -> dict:
        """Versions pip must keep: everything QGIS's Python has, except the helpers in NOT_PINNED."""
        asked = {requirement_name(r) for r in requirements}
        pins = {}
        for name, (version, _) in installed.items():
            version = version.split("+")[0]  # a local label (Debian's +dfsg) is not on any index
            if name in NOT_PINNED or name in asked or not _VERSION.fullmatch(version):
                continue
            pins[name] = version
        return pins

    def _pip(self, pip, staging: Path, constraints: Path) -> None:
        args = pip + ["install", "--target", str(staging), "--constraint", str(constraints), "--no-input",
                      "--progress-bar", "off", "--disable-pip-version-check", "--no-warn-script-location"]
        if self.plan.index_url:
            args += ["--extra-index-url", self.plan.index_url]
        args += PIP_NETWORK_ARGS + self.extra_pip_args + self.plan.requirements
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PYTHONPATH",
                                                                 "PIP_REQUIRE_VIRTUALENV")}
        env["PYTHONUNBUFFERED"] = "1"
        self.log("$ " + " ".join(args))
        self._check_cancel()
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, errors="replace", bufsize=1, env=env, **_new_group())
        with self._lock:
            self._process = process
        lines = []
        try:
            for line in process.stdout:
                line = line.rstrip()
                if line:
                    lines.append(line)
                    self.log(line)
            code = process.wait()
        finally:
            with self._lock:
                self._process = None
            if process.poll() is None:
                _kill_tree(process)
            process.stdout.close()
        self._check_cancel()
        if code != 0:
            errors = [x for x in lines if x.startswith("ERROR")] or lines[-1:] or [f"exit code {code}"]
            raise InstallError(f"pip failed (exit code {code}): {errors[0]}")

    def remove_copies(self, staging: Path, installed: dict) -> dict:
        """Remove from `staging` every project QGIS's Python already has; return {name: QGIS's version}."""
        kept = {}
        for info in _dist_infos(staging):
            name, version = _dist_name_version(info)
            if name in installed:
                _remove_distribution(staging, info)
                kept[name] = installed[name][0]
                theirs = f"{name} {installed[name][0]}" if _known_version(installed[name][0]) else f"its own {name}"
                self.log(f"Not installed: {name} {version}, QGIS already has {theirs}")
        self.notes = _unmet(staging, kept)
        return kept

    def merge(self, staging: Path, target: Path) -> None:
        """Move what pip put in `staging` into `target`, replacing older versions of the same projects."""
        target.mkdir(parents=True, exist_ok=True)
        old = {_dist_name_version(info)[0]: info for info in _dist_infos(target)}
        for info in _dist_infos(staging):
            name = _dist_name_version(info)[0]
            if name in old:
                _remove_distribution(target, old[name])
        for entry in sorted(staging.iterdir()):
            dest = target / entry.name
            if entry.name == "bin" and dest.is_dir():
                for script in entry.iterdir():
                    _replace(script, dest / script.name)
                continue
            _replace(entry, dest)

    def verify(self, kept: dict) -> Result:
        """Import the requested modules in a fresh Python with the target appended to sys.path."""
        out = subprocess.run([self.plan.python, "-c", _VERIFY, str(self.plan.target), *self.check_modules],
                             capture_output=True, text=True, env=_env_without_pythonpath(), **_no_window())
        line = next((x for x in out.stdout.splitlines() if x.startswith("DUALSR-VERIFY ")), None)
        if line is None:
            modules = {m: {"ok": False, "error": _last_line(out.stderr) or f"exit code {out.returncode}"}
                       for m in self.check_modules}
        else:
            modules = json.loads(line[len("DUALSR-VERIFY "):])
        notes = []
        numpy = modules.pop("numpy (QGIS)", None)
        if numpy and _inside(numpy["file"], self.plan.target):
            modules["numpy"] = {"ok": False, "error": f"numpy is imported from {numpy['file']}, not QGIS's"}
        elif numpy:
            notes.append(f"numpy {numpy['version']} is still QGIS's ({os.path.dirname(numpy['file'])})")
        for name, m in modules.items():
            if m["ok"] and not _inside(m["file"], self.plan.target):
                notes.append(f"Note: {name} came from {m['file']}, not from {self.plan.target}")
        return Result(self.plan.target, modules, kept, self.notes + notes)


class FolderLock:
    """One install at a time per folder (the dialog and the shell command may both run).

    An OS file lock, so a crashed install never leaves the folder locked.
    """

    def __init__(self, target):
        self.path = Path(target).parent / f".{Path(target).name}.lock"
        self.file = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            if sys.platform.startswith("win"):
                import msvcrt

                msvcrt.locking(self.file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise InstallError(f"Another install into {self.path.parent} is running; wait until it ends and "
                               "try again.") from None
        return self

    def __exit__(self, *exc):
        try:
            if sys.platform.startswith("win"):
                import msvcrt

                self.file.seek(0)
                msvcrt.locking(self.file.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        self.file.close()  # also releases the POSIX lock


def restart_needed(target, module: str = "torch", modules=None) -> bool:
    """Whether QGIS must restart before the plugin can use `module` from `target` in this process.

    No restart when `module` was never imported here (a failed import leaves nothing behind) and
    the copy the import system now finds is the one in `target`.
    """
    import importlib.util

    modules = sys.modules if modules is None else modules
    if any(name == module or name.startswith(module + ".") for name in modules):
        return True
    paths.activate(target)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return True
    return spec is None or not _inside(spec.origin or "", target)


def _unmet(staging: Path, kept: dict) -> list[str]:
    """Notes for requirements of the new packages that the versions QGIS keeps do not meet."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            return []
    notes = []
    for info in _dist_infos(staging):
        owner = _dist_name_version(info)[0]
        metadata = info / "METADATA"
        lines = metadata.read_text(encoding="utf-8", errors="replace").splitlines() if metadata.is_file() else []
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            try:
                req = Requirement(line.split(":", 1)[1].strip())
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
                name = canonical(req.name)
                qgis_version = kept.get(name, "").split("+")[0]
                if _known_version(qgis_version) and not req.specifier.contains(qgis_version, prereleases=True):
                    notes.append(f"Note: {owner} asks for {name}{req.specifier} but QGIS's {name} {kept[name]} comes "
                                 f"first on sys.path and is the one used.")
            except Exception:  # an unparsable requirement or version: no note rather than no install
                continue
    return notes


def _import_name(requirement: str) -> str:
    name = requirement_name(requirement)
    return {"tomli-w": "tomli_w", "pyyaml": "yaml", "pillow": "PIL"}.get(name, name.replace("-", "_"))


def _inside(path: str, folder) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def _dist_infos(folder: Path):
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.endswith((".dist-info", ".egg-info"))) \
        if folder.is_dir() else []


def _dist_name_version(info: Path) -> tuple[str, str]:
    metadata = info / ("METADATA" if info.name.endswith(".dist-info") else "PKG-INFO")
    name = version = ""
    if metadata.is_file():
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name:") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:") and not version:
                version = line.split(":", 1)[1].strip()
            elif not line.strip():
                break
    if not name:
        name, _, version = info.name.rsplit(".", 1)[0].partition("-")
    return canonical(name), version


def _remove_distribution(folder: Path, info: Path) -> None:
    """Delete a distribution's files (from its RECORD) and its metadata folder, all inside `folder`."""
    record = info / "RECORD"
    tops = set()
    if record.is_file():
        for row in record.read_text(encoding="utf-8", errors="replace").splitlines():
            rel = row.rsplit(",", 2)[0].strip('"') if row.strip() else ""
            path = (folder / rel).resolve() if rel else None
            if path is None or not _inside(str(path), folder):
                continue
            if path.is_file() or path.is_symlink():
                path.unlink()
            parts = Path(rel).parts
            if parts and parts[0] not in ("..", "bin"):
                tops.add(parts[0])
    shutil.rmtree(info, ignore_errors=True)
    for top in tops:  # packages emptied by the removal (only __pycache__ left)
        path = folder / top
        if path.is_dir() and not any(p.is_file() and "__pycache__" not in p.parts for p in path.rglob("*")):
            shutil.rmtree(path, ignore_errors=True)


def _replace(src: Path, dest: Path) -> None:
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    os.replace(src, dest)


def _last_line(text: str) -> str:
    lines = [x for x in (text or "").splitlines() if x.strip()]
    return lines[-1].strip() if lines else ""


def _env_without_pythonpath() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _no_window() -> dict:
    """On Windows, no console window pops up over QGIS for each subprocess."""
    return {"creationflags": 0x08000000} if sys.platform.startswith("win") else {}  # CREATE_NO_WINDOW


def _new_group() -> dict:
    if sys.platform.startswith("win"):
        return {"creationflags": 0x08000000 | subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _kill_tree(process: subprocess.Popen) -> None:
    """Stop pip and whatever it started (build backends), then reap it."""
    try:
        if sys.platform.startswith("win"):
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, **_no_window())
        else:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
