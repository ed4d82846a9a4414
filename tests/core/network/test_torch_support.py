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
