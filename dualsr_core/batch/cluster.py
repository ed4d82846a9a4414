"""The Dask client of a batch run: a LocalCluster of this machine, or a running cluster.

Local workers are processes with one task thread each: one worker per GPU when torch sees GPUs
(each claims its GPU through the worker resource GPU=1), else one per core, at most one per
MEMORY_PER_WORKER of memory. CPU workers are pinned to disjoint sets of cores, so that torch in
each (which takes as many threads as its process may use cores, `network.torch_support.usable_cores`) does not
oversubscribe the machine.

dask is imported here only inside functions: `require_dask` is the one check, with the install hint.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass

from ..errors import InputError, MissingDependencyError
from ..network.torch_support import usable_cores
from ..tools.checks import positive_integer
from .runner import AT_LEAST_1

# A worker with torch loaded and one run at the default tile peaks at about 0.5-0.8 GB (docs/benchmarks.md,
# section 4: a qgis_process run adds 220-280 MB to QGIS's 470 MB); 1.5 GB leaves room for bigger tiles.
MEMORY_PER_WORKER = 1.5 * 2**30
DASHBOARD_ADDRESS = ":8787"
WORKER_WAIT_SECONDS = 120


def require_dask():
    """Return the `distributed` module, or raise MissingDependencyError saying how to install it."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as exc:
        python = sys.executable
        raise MissingDependencyError(
            f"The batch command needs dask.distributed, which is not importable ({exc}); install it with "
            f"'{python} -m pip install \"dask[distributed]\"' (only the batch command needs it, not the QGIS "
            "plugin).") from exc
    return distributed


def gpu_count() -> int:
    """CUDA GPUs torch sees here (0 without torch or without a CUDA build)."""
    from ..network.torch_support import torch_status

    if not torch_status()[0]:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def total_memory() -> float:
    """Bytes of memory of this machine (cgroup limit included), or infinity when unknown."""
    limit = math.inf
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            text = f.read().strip()
        if text != "max":
            limit = min(limit, float(text))
    except (OSError, ValueError):
        pass
    return limit


@dataclass(frozen=True)
class LocalPlan:
    """Workers of a LocalCluster: how many, the cores each is pinned to (CPU), and GPUs."""

    workers: int
    core_sets: list
    gpus: int

    @property
    def threads(self) -> int:
        return min(len(cores) for cores in self.core_sets) if self.core_sets else usable_cores()


def plan_local(workers: int | None, device: str) -> LocalPlan:
    """One worker per GPU (DEVICE auto or cuda, GPUs present), else per core within the memory.

    Args:
        workers: the user's --workers, or None for the default.
        device: the run's DEVICE; 'cpu' never counts GPUs.
    """
    if workers is not None:
        positive_integer(workers, "--workers", InputError, message=AT_LEAST_1)
    gpus = gpu_count() if device != "cpu" else 0
    cores = _cores()
    if gpus:
        n = workers or gpus
    else:
        n = workers or max(1, min(len(cores), int(total_memory() // MEMORY_PER_WORKER)))
    per = max(1, len(cores) // n)
    core_sets = [cores[(k * per) % len(cores):(k * per) % len(cores) + per] for k in range(n)]
    return LocalPlan(n, core_sets, gpus)


def _cores() -> list[int]:
    """The cores this process may use, as a list (the quota of a cgroup caps how many count)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no pinning, one entry per core
        cores = list(range(os.cpu_count() or 1))
    return cores[:usable_cores()] or cores[:1]


class Connection:
    """A Client and, for a local run, its LocalCluster; closed together. `describe` is a line for the log."""

    def __init__(self, client, cluster=None, describe: str = ""):
        self.client, self.cluster, self.describe = client, cluster, describe

    @property
    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:  # no HTTP service on this scheduler
            return None

    def workers(self) -> dict:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def gpu_workers(self) -> int:
        return sum(1 for w in self.workers().values() if w.get("resources", {}).get("GPU", 0) >= 1)

    def close(self):
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                # A worker with torch loaded often takes more than the nanny's 4 s to exit; being
                # killed then is harmless, so the nanny's warning about it is not shown.
                logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
                self.cluster.close()


def connect(scheduler: str | None, workers: int | None, device: str, log) -> Connection:
    """Start a LocalCluster (scheduler None) or connect to a running scheduler.

    Args:
        scheduler: address of a running scheduler ('tcp://host:8786' or a scheduler file path).
        workers: --workers for a LocalCluster (ignored with a scheduler).
        device: the run's DEVICE (decides whether local GPUs are counted).
        log: gets the lines that describe the cluster.
    """
    distributed = require_dask()
    if scheduler:
        kwargs = {"scheduler_file": scheduler} if os.path.isfile(scheduler) else {"address": scheduler}
        try:
            client = distributed.Client(timeout="30s", **kwargs)
        except OSError as exc:
            raise InputError(f"--scheduler '{scheduler}' cannot be reached ({exc}); start it with "
                             "'dask scheduler' or give the address it prints.") from exc
        connection = Connection(client)
        if workers:
            log("--workers applies to a local cluster; the running cluster keeps its own workers.")
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except (TimeoutError, OSError) as exc:
            connection.close()
            raise InputError(f"--scheduler '{scheduler}' has no worker after {WORKER_WAIT_SECONDS} s; start some "
                             f"with 'dask worker {scheduler} --nthreads 1'.") from exc
        info = connection.workers()
        threads = sum(w.get("nthreads", 0) for w in info.values())
        connection.describe = (f"Cluster at {scheduler}: {len(info)} worker(s), {threads} task thread(s), "
                               f"{connection.gpu_workers()} with a GPU resource.")
        return connection
    plan = plan_local(workers, device)
    from .tasks import PinCores

    cluster = distributed.LocalCluster(
        n_workers=plan.workers, threads_per_worker=1, processes=True, dashboard_address=DASHBOARD_ADDRESS,
        resources={"GPU": 1} if plan.gpus else None)
    client = distributed.Client(cluster)
    if not plan.gpus and sys.platform.startswith("linux"):
        client.register_plugin(PinCores(plan.core_sets), name="dualsr-pin-cores")
    if plan.gpus:
        describe = (f"Local cluster: {plan.workers} worker process(es) for {plan.gpus} GPU(s), each task claiming "
                    "one GPU (resource GPU=1).")
    else:
        describe = (f"Local cluster: {plan.workers} worker process(es), one task at a time each, pinned to "
                    f"{plan.threads} core(s) each ({len(_cores())} usable).")
    return Connection(client, cluster, describe)
