"""The engine's bf16 path on a CPU: every convolution runs in one of oneDNN's native bf16 kernels
(AVX512-BF16, or AMX tiles where the CPU has them), in both schedules; read from oneDNN's own verbose log."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualsr_core.network.engine import _cpu_flags, cpu_has_fast_bf16

ROOT = Path(__file__).resolve().parents[3]

# One engine run of six bands of 40 x 40 at x2 with the bundled weights, in the schedule given.
RUN = """
import sys
import numpy as np
import torch
from dualsr_core.network.engine import CoarseEngine
from dualsr_core.network.partition import neighbour_table
from dualsr_core.network.weights import load_model

model, _ = load_model(None, 2, torch.device("cpu"))
engine = CoarseEngine(model, torch.device("cpu"), "bf16", sys.argv[1], band_chunk=4)
order = list(range(6))
engine.run(np.random.default_rng(0).random((6, 40, 40), dtype=np.float32) * 0.3, order, neighbour_table(order))
"""


def convolutions_run(schedule: str) -> list[tuple[str, str]]:
    """(implementation, source data type) of every convolution oneDNN executed in that run."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN, schedule], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=True, timeout=300)
    found = []
    for line in done.stdout.splitlines():
        # onednn_verbose,v1,primitive,exec,cpu,convolution,<implementation>,<prop kind>,src:<type>:...
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in fields and "convolution" in fields:
            at = fields.index("convolution")
            source = next(field for field in fields[at + 2:] if field.startswith("src:"))
            found.append((fields[at + 1], source.split(":")[1]))
    return found


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="the CPU has no native bf16 (AVX512-BF16 or AMX)")
@pytest.mark.parametrize("schedule", ["band", "batched"])
def test_bf16_convolutions_run_in_native_bf16_kernels(schedule):
    convolutions = convolutions_run(schedule)
    assert len(convolutions) >= 6 * 7  # the seven convolutions of every band's features at least
    kernels = {implementation for implementation, _ in convolutions}
    assert all("amx" in kernel or "avx512_core_bf16" in kernel for kernel in kernels), kernels
    if "amx_bf16" in _cpu_flags():  # oneDNN may keep small 1 x 1 convolutions off the tiles, not all of them
        assert any("amx" in kernel for kernel in kernels), kernels
    assert {data_type for _, data_type in convolutions} == {"bf16"}
