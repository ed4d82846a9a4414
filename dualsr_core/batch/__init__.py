"""Scene archives on a Dask cluster: `python -m dualsr_core batch`.

One task per scene (or per row stripe of a large scene, reassembled exactly), on a LocalCluster of
this machine or on a running cluster; a manifest beside the outputs records every scene, and a
rerun skips the scenes it records as complete and intact.

dask and distributed are optional: they are imported lazily, only by the batch command
(`cluster.require_dask`); the QGIS plugin and the rest of dualsr_core never need them.
"""
from __future__ import annotations


def run_batch(*args, **kwargs):
    """See `runner.run_batch`."""
    from .runner import run_batch as run

    return run(*args, **kwargs)
