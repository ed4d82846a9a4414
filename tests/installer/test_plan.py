"""Finding the Python that runs QGIS, the GPU, the torch build and the pins: platforms mocked, no pip run."""
import pytest

from installer import core, paths


def finder(files, versions=None, prefixes=None, prefix=None):
    """`exists` and `probe` over a fake file system: every file reports 3.12 and `prefix` unless told otherwise."""
    versions, prefixes = versions or {}, prefixes or {}
    return dict(exists=lambda p: p in files, probe=lambda p: (versions.get(p, (3, 12)), prefixes.get(p, prefix)))


def test_linux_python_is_sys_executable():
    assert core.find_python("/usr/bin/python3", "linux", "/usr", "/usr", (3, 11), {},
                            **finder({"/usr/bin/python3"}, {"/usr/bin/python3": (3, 11)}, prefix="/usr")) == \
        "/usr/bin/python3"


def test_linux_qgis_binary_falls_back_to_the_prefix_python():
    files = {"/usr/bin/qgis", "/usr/bin/python3.11"}
    assert core.find_python("/usr/bin/qgis", "linux", "/usr", "/usr", (3, 11), {},
                            **finder(files, {"/usr/bin/python3.11": (3, 11)}, prefix="/usr")) == "/usr/bin/python3.11"


def test_windows_osgeo4w_qgis_bin_exe():
    files = {r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python312\python.exe"}
    found = core.find_python(r"C:\OSGeo4W\bin\qgis-bin.exe", "win32", r"C:\OSGeo4W\apps\Python312",
                             r"C:\OSGeo4W\apps\Python312", (3, 12), {"OSGEO4W_ROOT": r"C:\OSGeo4W"},
                             **finder(files, prefix=r"C:\OSGeo4W\apps\Python312"))
    assert found == r"C:\OSGeo4W\apps\Python312\python.exe"


def test_windows_standalone_installer_without_osgeo4w_root():
    exe = r"C:\Program Files\QGIS 3.40.6\bin\qgis-bin.exe"
    python = r"C:\Program Files\QGIS 3.40.6\apps\Python312\python.exe"
    # sys.prefix as a short 8.3 path with nothing there: found next to the program instead
    found = core.find_python(exe, "win32", r"C:\PROGRA~1\QGIS34~1.6\apps\Python3", r"C:\PROGRA~1\QGIS34~1.6",
                             (3, 12), {}, **finder({exe, python}, prefix=r"C:\PROGRA~1\QGIS34~1.6\apps\Python3"))
    assert found == python


def test_windows_candidate_of_another_python_version_is_skipped():
    old = r"C:\OSGeo4W\apps\Python312\python.exe"
    osgeo_bin = r"C:\OSGeo4W\bin\python.exe"
    found = core.find_python(r"C:\OSGeo4W\bin\qgis-bin.exe", "win32", r"C:\OSGeo4W\apps\Python312",
                             r"C:\OSGeo4W\apps\Python312", (3, 12), {"OSGEO4W_ROOT": r"C:\OSGeo4W"},
                             **finder({old, osgeo_bin}, {old: (3, 9)}, prefix=r"C:\OSGeo4W\apps\Python312"))
    assert found == osgeo_bin


def test_windows_pythonw_uses_the_console_python():
    files = {r"C:\Py\pythonw.exe", r"C:\Py\python.exe"}
    assert core.find_python(r"C:\Py\pythonw.exe", "win32", r"C:\Py", r"C:\Py", (3, 12), {},
                            **finder(files, prefix=r"C:\Py")) == r"C:\Py\python.exe"


def test_macos_bundle():
    exe = "/Applications/QGIS.app/Contents/MacOS/QGIS"
    python = "/Applications/QGIS.app/Contents/MacOS/bin/python3"
    found = core.find_python(exe, "darwin", "/Applications/QGIS.app/Contents/Frameworks",
                             "/Applications/QGIS.app/Contents/Frameworks", (3, 12), {},
                             **finder({exe, python}, prefix="/Applications/QGIS.app/Contents/Frameworks"))
    assert found == python


def test_nothing_found_names_the_override():
    with pytest.raises(core.InstallError, match=r"qgis-bin\.exe.*set DUALSR_PYTHON"):
        core.find_python(r"C:\QGIS\bin\qgis-bin.exe", "win32", r"C:\QGIS\apps\Python312", r"C:\QGIS",
                         (3, 12), {}, **finder(set()))


def test_override_wins_and_must_exist():
    assert core.find_python("/x/qgis", "linux", "/x", "/x", (3, 12), {"DUALSR_PYTHON": "/opt/py"},
                            **finder({"/opt/py"}, prefix="/x")) == "/opt/py"
    with pytest.raises(core.InstallError, match="DUALSR_PYTHON is '/nope'"):
        core.find_python("/x/qgis", "linux", "/x", "/x", (3, 12), {"DUALSR_PYTHON": "/nope"}, **finder(set()))


def test_a_python_on_path_with_another_prefix_is_passed_over():
    """QGIS started from a shell with pyenv first on PATH: embedded Python took the shim as sys.executable."""
    shim = "/home/u/.pyenv/shims/python3"
    files = {shim, "/usr/bin/python3.11"}
    found = core.find_python(shim, "linux", "/usr", "/usr", (3, 11), {},
                             **finder(files, {shim: (3, 11), "/usr/bin/python3.11": (3, 11)},
                                      {shim: "/home/u/.pyenv/versions/3.11.9"}, prefix="/usr"))
    assert found == "/usr/bin/python3.11"


def test_qgis_prefix_layouts():
    osgeo = r"C:\OSGeo4W\apps\Python312\python.exe"
    assert core.find_python(r"C:\x\qgis-bin.exe", "win32", r"C:\elsewhere", r"C:\elsewhere", (3, 12), {},
                            qgis_prefix=r"C:\OSGeo4W\apps\qgis", **finder({osgeo}, prefix=r"C:\elsewhere")) == osgeo
    bundle = "/Applications/QGIS.app/Contents/MacOS/bin/python3"
    assert core.find_python("/x/QGIS", "darwin", "/f", "/f", (3, 12), {}, qgis_prefix="/Applications/QGIS.app/"
                            "Contents/MacOS", **finder({bundle}, prefix="/f")) == bundle


def test_another_python_is_refused_in_one_sentence():
    with pytest.raises(core.InstallError, match=r"^/opt/py is Python 3\.12 with prefix /opt, but QGIS "
                       r"runs Python 3\.11 with prefix /usr; packages installed with it would not load in QGIS"):
        core.find_python("/usr/bin/qgis", "linux", "/usr", "/usr", (3, 11), {"DUALSR_PYTHON": "/opt/py"},
                         **finder({"/opt/py"}, prefix="/opt"))
    with pytest.raises(core.InstallError, match=r"^/opt/py is Python 3\.12 with prefix /opt, but QGIS runs Python "
                       r"3\.11 with prefix /usr;[^.]*\.$"):
        core.make_plan(python="/opt/py", profile_dir="/p", gpu=None, runs_qgis=((3, 11), "/usr"),
                       probe=lambda p: ((3, 12), "/opt"))


def test_default_profile_dirs():
    home = "/home/u"
    assert str(paths.default_profile_dir("linux", {}, home)) == "/home/u/.local/share/QGIS/QGIS3/profiles/default"
    assert str(paths.default_profile_dir("darwin", {}, home)) == \
        "/home/u/Library/Application Support/QGIS/QGIS3/profiles/default"
    assert paths.default_profile_dir("win32", {"APPDATA": "/appdata"}, home).parts[-5:] == \
        ("appdata", "QGIS", "QGIS3", "profiles", "default")
    assert str(paths.default_profile_dir("linux", {"QGIS_CUSTOM_CONFIG_PATH": "/c"}, home)) == "/c/profiles/default"
    assert paths.packages_dir("/p", (3, 13)).as_posix() == "/p/python/dualsr-packages/python3.13"


class FakeRun:
    def __init__(self, query="NVIDIA GeForce RTX 4090, 550.54.15\n", banner="| NVIDIA-SMI 550.54.15  Driver Version: "
                 "550.54.15  CUDA Version: 12.4 |", code=0):
        self.query, self.banner, self.code, self.calls = query, banner, code, []

    def __call__(self, args, **kwargs):
        import types

        self.calls.append(args)
        out = self.query if len(args) > 1 else self.banner
        return types.SimpleNamespace(returncode=self.code, stdout=out if self.code == 0 else "", stderr="")


def test_gpu_detection():
    gpu = core.detect_nvidia_gpu(FakeRun(), lambda _: "/usr/bin/nvidia-smi", "linux")
    assert (gpu.name, gpu.driver, gpu.cuda) == ("NVIDIA GeForce RTX 4090", "550.54.15", (12, 4))
    assert core.detect_nvidia_gpu(FakeRun(), lambda _: None, "linux") is None
    assert core.detect_nvidia_gpu(FakeRun(), lambda _: "/usr/bin/nvidia-smi", "darwin") is None
    # the driver is installed but no GPU answers ("couldn't communicate with the NVIDIA driver")
    assert core.detect_nvidia_gpu(FakeRun(code=9), lambda _: "/usr/bin/nvidia-smi", "linux") is None


@pytest.mark.parametrize("driver, tag", [((12, 4), "cu126"), ((12, 8), "cu128"), ((12, 9), "cu128"),
                                         ((13, 2), "cu130"), ((11, 8), None), (None, None)])
def test_cuda_build_for_the_driver(driver, tag):
    assert core.cuda_tag(driver) == tag


def plan(**kwargs):
    kwargs.setdefault("python", "/usr/bin/python3")
    kwargs.setdefault("probe", lambda _: core.running_python())  # as if /usr/bin/python3 ran this test
    kwargs.setdefault("profile_dir", "/p")
    return core.make_plan(**kwargs)


def test_plan_cpu_without_gpu():
    p = plan(gpu=None, platform="linux")
    assert (p.variant, p.index_url, p.requirements) == ("cpu", "https://download.pytorch.org/whl/cpu", ["torch"])
    assert str(p.target).startswith("/p/python/dualsr-packages/python3.")
    assert p.download_mb == 200 and p.disk_mb == 800
    assert "CPU build" in p.describe() and "800 MB on disk" in p.describe()


def test_plan_cuda_with_an_nvidia_gpu():
    p = plan(gpu=core.Gpu("RTX", "550.54", (12, 4)), platform="win32")
    assert (p.variant, p.index_url) == ("cuda", "https://download.pytorch.org/whl/cu126")
    assert p.disk_mb > 4000
    assert "GPU: RTX (driver 550.54, CUDA 12.4)" in p.describe()
    assert plan(gpu=core.Gpu("RTX", "550.54", (12, 4)), variant="cpu", platform="linux").variant == "cpu"


def test_plan_from_pypi_names_pypi_build():
    """PyPI's Linux x86_64 torch is the CUDA build: without the PyTorch index the plan says so, and
    refuses the CPU build it cannot deliver."""
    p = plan(gpu=None, platform="linux", machine="x86_64", index_url="")
    assert (p.variant, p.index_url, p.download_mb, p.disk_mb) == ("cuda", None, 2800, 5500)
    assert "torch (CUDA build)" in p.describe() and "PyPI's torch for Linux is the CUDA build" in p.describe()
    with pytest.raises(core.InstallError, match=r"^The CPU build of PyTorch is not on PyPI for linux x86_64"):
        plan(gpu=None, platform="linux", machine="x86_64", index_url="", variant="cpu")
    assert plan(gpu=None, platform="win32", machine="AMD64", index_url="").variant == "cpu"


def test_plan_old_driver_falls_back_to_cpu_with_a_note():
    p = plan(gpu=core.Gpu("K80", "470.1", (11, 4)), platform="linux")
    assert p.variant == "cpu" and "too old" in p.describe()


def test_plan_macos_uses_pypi_and_has_no_cuda():
    assert plan(gpu=None, platform="darwin").index_url is None
    with pytest.raises(core.InstallError, match="macOS"):
        plan(gpu=None, variant="cuda", platform="darwin")


def test_plan_with_openvino_adds_the_measured_version_and_its_size():
    p = plan(gpu=None, platform="linux", openvino=True, have_torch=False, machine="x86_64")
    assert p.requirements == ["torch", "openvino==2026.4.1"]
    assert (p.download_mb, p.disk_mb) == (260, 980)
    text = p.describe()
    assert "Packages: torch (CPU build), openvino==2026.4.1 and" in text
    assert "OpenVINO 2026.4.1 (int8 inference on CPUs) is about 60 MB of that download" in text


def test_openvino_alone_when_torch_is_already_there():
    p = plan(gpu=core.Gpu("RTX", "550.54", (12, 4)), platform="win32", openvino=True, have_torch=True,
             machine="AMD64")
    assert p.requirements == ["openvino==2026.4.1"] and p.index_url is None  # no PyTorch index, no torch download
    assert (p.download_mb, p.disk_mb) == (85, 250)
    text = p.describe()
    assert "Packages: openvino==2026.4.1 and" in text and "only OpenVINO is installed" in text
    assert "GPU:" not in text and "build" not in text
    # requirements asked for are kept; OpenVINO is added to them
    both = plan(requirements=["torch==2.13.0"], openvino=True, have_torch=True, gpu=None, platform="linux",
                machine="x86_64")
    assert both.requirements == ["torch==2.13.0", "openvino==2026.4.1"]
    # without OpenVINO, installing again means torch, as before
    assert plan(have_torch=True, gpu=None, platform="linux").requirements == ["torch"]


@pytest.mark.parametrize("platform, machine, version, wheel", [
    ("linux", "x86_64", (3, 11), True), ("linux", "aarch64", (3, 14), True), ("win32", "AMD64", (3, 12), True),
    ("darwin", "arm64", (3, 10), True), ("darwin", "x86_64", (3, 12), False), ("linux", "x86_64", (3, 9), False),
    ("win32", "ARM64", (3, 12), False), ("linux", "x86_64", None, True)])
def test_openvino_wheels(platform, machine, version, wheel):
    assert core.openvino_wheel(platform, machine, version) is wheel


def test_openvino_without_a_wheel_is_refused_before_pip_runs():
    with pytest.raises(core.InstallError, match=r"OpenVINO 2026\.4\.1 has no wheel for Python 3\.\d+ on darwin x86_64; "
                                                r"install without OpenVINO\."):
        plan(gpu=None, platform="darwin", machine="x86_64", openvino=True, have_torch=False)


def test_openvino_version_is_the_one_int8_measured():
    """The installer cannot import dualsr_core/network/int8.py (it imports torch): the two constants must agree."""
    import re

    from ..conftest import ROOT

    text = (ROOT / "dualsr_core" / "network" / "int8.py").read_text(encoding="utf-8")
    assert re.search(r'^OPENVINO_VERSION = "([^"]+)"', text, re.M).group(1) == core.OPENVINO_VERSION


def test_torch_is_looked_for_in_qgis_python_and_in_the_target(tmp_path):
    import sys

    assert core._finds(sys.executable, tmp_path, "torch")  # this Python (QGIS's here) has torch
    assert not core._finds(sys.executable, tmp_path, "dualsr_in_target")
    (tmp_path / "dualsr_in_target").mkdir()
    (tmp_path / "dualsr_in_target" / "__init__.py").write_text("")
    assert core._finds(sys.executable, tmp_path, "dualsr_in_target")
    assert not core._finds(str(tmp_path / "no-python"), tmp_path, "torch")


def test_pins_keep_qgis_versions():
    installed = {"numpy": ("1.24.2", "/usr/lib"), "scipy": ("1.10.1", "/usr/lib"), "gdal": ("3.6.2+dfsg", "/usr"),
                 "sympy": ("1.11.1", "/usr"), "mpmath": ("0.0.0", "/usr"), "torch": ("2.0", "/x"),
                 "weird": ("2023.01-debian", "/usr")}
    pins = core.Installer.pins(installed, ["torch==2.13.0"])
    assert pins == {"numpy": "1.24.2", "scipy": "1.10.1", "gdal": "3.6.2"}


def test_requirement_names():
    assert core.requirement_name("torch==2.13.0") == "torch"
    assert core.requirement_name("Typing_Extensions>=4") == "typing-extensions"
    assert core.requirement_name("/tmp/dualsr_probe-1.0-py3-none-any.whl") == "dualsr-probe"


def test_unmet_requirements_of_kept_packages_become_notes(tmp_path):
    info = tmp_path / "torch-2.13.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n"
                                   "Requires-Dist: sympy>=1.13.3\nRequires-Dist: jinja2\n"
                                   "Requires-Dist: numpy>=2; extra == \"numpy\"\n"
                                   "Requires-Dist: scipy>=9; python_version < \"3\"\n\n")
    notes = core._unmet(tmp_path, {"sympy": "1.11.1", "jinja2": "3.1.2", "numpy": "1.24.2", "scipy": "1.10.1"})
    assert notes == ["Note: torch asks for sympy>=1.13.3 but QGIS's sympy 1.11.1 comes first on sys.path and is "
                     "the one used."]


def test_restart_needed(tmp_path):
    assert core.restart_needed(tmp_path, "json")  # already imported in this process
    assert core.restart_needed(tmp_path, "dualsr_nowhere")  # not found at all
    (tmp_path / "dualsr_fresh_module.py").write_text("X = 1\n")
    import sys

    try:
        assert not core.restart_needed(tmp_path, "dualsr_fresh_module")
        import dualsr_fresh_module

        assert dualsr_fresh_module.X == 1
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dualsr_fresh_module", None)


def test_shell_installer_imports_without_qgis():
    import subprocess
    import sys

    from ..conftest import ROOT

    code = ("import sys; sys.modules['qgis'] = None; sys.path.insert(0, sys.argv[1]); "
            "import installer.core, installer.paths, installer.install; print('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
    dry = subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--dry-run", "--target", "/t",
                          "--variant", "cpu"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "Packages: torch (CPU build)" in dry.stdout and "Into: /t " in dry.stdout
    # torch is in this Python already: --openvino plans OpenVINO alone
    later = subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--dry-run", "--target", "/t",
                            "--openvino"], capture_output=True, text=True)
    assert later.returncode == 0, later.stderr
    assert "Packages: openvino==2026.4.1 and" in later.stdout and "only OpenVINO" in later.stdout


def test_profile_from_the_plugin_location():
    from pathlib import Path

    from installer.install import profile_from_location

    script = Path("/home/u/.local/share/QGIS/QGIS3/profiles/work/python/plugins/dualsr/installer/install.py")
    assert profile_from_location(script) == Path("/home/u/.local/share/QGIS/QGIS3/profiles/work")
    assert profile_from_location(Path("/src/dualsr/installer/install.py")) is None


def test_cpu_fast_int8_reads_the_flags_as_the_engine_does(tmp_path, monkeypatch):
    engine = pytest.importorskip("dualsr_core.network.engine")
    cases = {"fpu avx2 fma": None, "avx2 avx512f avx512_vnni": "VNNI", "avx2 avx_vnni": "VNNI",
             "avx512_vnni amx_bf16 amx_int8": "AMX"}
    for flags, expected in cases.items():
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        monkeypatch.setattr(engine, "_cpu_flags", lambda flags=flags: set(flags.split()))
        assert core.cpu_fast_int8(str(cpuinfo)) == expected == engine.cpu_fast_int8()
    assert core.cpu_fast_int8(str(tmp_path / "absent")) is None
