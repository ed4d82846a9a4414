"""A training run killed with SIGKILL resumes from its checkpoint and ends bit-identical."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ...conftest import ROOT, smooth_cube, write_raster  # noqa: E402


def command(scene: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "dualsr_core", "train", "--data", str(scene), "--scale", "2", "--output",
            str(output), "--epochs", "2", "--batch-size", "2", "--patch-size", "8", "--n-feats", "8",
            "--n-blocks", "1", "--band-window", "3", "--checkpoint-every", "2", "--val-fraction", "0.3",
            "--max-patches-per-scene", "40", "--device", "cpu", "--seed", "5"]


def run(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    scene = write_raster(tmp_path / "scene.tif", smooth_cube(7, 48, 48, seed=4),
                         wavelengths_nm=[450 + 11 * b for b in range(7)])
    whole = tmp_path / "whole" / "w.pt"
    whole.parent.mkdir()
    done = run(command(scene, whole))
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed" / "w.pt"
    killed.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command(scene, killed), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    checkpoint = killed.parent / "w.work" / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = run(command(scene, killed))
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stdout + resumed.stderr

    a = torch.load(whole, weights_only=True)
    b = torch.load(killed, weights_only=True)
    assert a["header"]["sha256"] == b["header"]["sha256"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
