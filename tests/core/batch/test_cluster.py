"""Cluster sizing and the optional dependency: the batch command without dask says how to install it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualsr_core.batch import cluster

ROOT = Path(__file__).resolve().parents[3]


def python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_without_dask_the_batch_command_says_how_to_install_it(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"")
    done = python("import sys; sys.modules['dask'] = sys.modules['distributed'] = None\n"
                  "from dualsr_core.__main__ import main\n"
                  f"sys.exit(main(['batch', '--input', r'{tmp_path / 'a.tif'}', '--output', r'{tmp_path / 'out'}', "
                  "'--scale', '2']))")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: The batch command needs dask.distributed")
    assert 'pip install "dask[distributed]"' in done.stderr and "not the QGIS plugin" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_command_line_and_the_plugin_side_never_import_dask():
    done = python("import sys\nfrom dualsr_core.__main__ import build_parser\n"
                  "import dualsr_core.batch, dualsr_core.batch.cli, dualsr_core.stages.coarse\n"
                  "build_parser().parse_args(['batch', '--input', 'x', '--output', 'y', '--scale', '2'])\n"
                  "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'torch')))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_local_workers_one_per_core_within_the_memory_each_pinned_to_its_own_cores(monkeypatch):
    monkeypatch.setattr(cluster, "gpu_count", lambda: 0)
    monkeypatch.setattr(cluster, "_cores", lambda: [0, 1, 2, 3, 4, 5, 6, 7])
    monkeypatch.setattr(cluster, "total_memory", lambda: 64 * 2**30)
    plan = cluster.plan_local(None, "auto")
    assert plan.workers == 8 and plan.core_sets == [[k] for k in range(8)] and plan.threads == 1
    monkeypatch.setattr(cluster, "total_memory", lambda: 4 * 2**30)  # 1.5 GB a worker: 2 workers
    plan = cluster.plan_local(None, "auto")
    assert plan.workers == 2 and plan.core_sets == [[0, 1, 2, 3], [4, 5, 6, 7]] and plan.threads == 4
    plan = cluster.plan_local(3, "cpu")
    assert plan.core_sets == [[0, 1], [2, 3], [4, 5]]
    plan = cluster.plan_local(10, "cpu")  # more workers than cores: one core each, shared round robin
    assert plan.workers == 10 and plan.core_sets[8] == [0] and plan.threads == 1
    with pytest.raises(Exception, match=r"^--workers must be a whole number of at least 1 \(got 0\)\.$"):
        cluster.plan_local(0, "cpu")


def test_local_workers_one_per_gpu_unless_the_device_is_cpu(monkeypatch):
    monkeypatch.setattr(cluster, "gpu_count", lambda: 4)
    monkeypatch.setattr(cluster, "_cores", lambda: list(range(16)))
    monkeypatch.setattr(cluster, "total_memory", lambda: 256 * 2**30)
    plan = cluster.plan_local(None, "auto")
    assert plan.workers == 4 and plan.gpus == 4
    plan = cluster.plan_local(None, "cpu")
    assert plan.workers == 16 and plan.gpus == 0
