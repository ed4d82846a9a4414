"""select_device's CPU thread count: never more threads than this process may use, and never more than
the caller chose (two trainings side by side on two cores, one thread each)."""
import pytest

torch = pytest.importorskip("torch")

from dualsr_core.network import torch_support  # noqa: E402


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_smaller_thread_count_chosen_by_the_caller_is_kept(threads, monkeypatch):
    monkeypatch.setattr(torch_support, "usable_cores", lambda: 2)
    torch.set_num_threads(1)
    assert torch_support.select_device("cpu").type == "cpu"
    assert torch.get_num_threads() == 1


def test_more_threads_than_usable_cores_are_lowered_to_them(threads, monkeypatch):
    monkeypatch.setattr(torch_support, "usable_cores", lambda: 1)
    torch.set_num_threads(2)
    torch_support.select_device("cpu")
    assert torch.get_num_threads() == 1


def test_the_install_advice_names_this_interpreters_python_not_one_on_path(monkeypatch, tmp_path):
    """Embedded in QGIS, sys.executable is the first python3 on PATH (here a pyenv shim) or QGIS itself."""
    import sys

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / f"python{version}").touch()
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "exec_prefix", str(tmp_path))
    for guess in ("/root/.pyenv/shims/python3", "/usr/bin/qgis_process.bin"):
        monkeypatch.setattr(sys, "executable", guess)
        assert torch_support.running_python() == str(tmp_path / "bin" / f"python{version}")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # a venv's own python
    assert torch_support.running_python() == str(tmp_path / "bin" / "python")
    monkeypatch.setitem(sys.modules, "torch", None)
    ok, message = torch_support.torch_status()
    assert not ok and f"'{tmp_path / 'bin' / 'python'} -m pip install torch'" in message
