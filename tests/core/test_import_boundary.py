"""dualsr_core never imports QGIS, and importing the core or the provider does not import torch."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_core_has_no_qgis_import():
    offenders = []
    for path in (ROOT / "dualsr_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("qgis", "PyQt5", "PyQt6")]
    assert offenders == []


def _modules_after(code: str, extra_path: str) -> set:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([extra_path, os.environ.get("PYTHONPATH", "")]),
               QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, env=env, check=True)
    return set(out.stdout.split())


def test_importing_the_core_does_not_import_torch():
    modules = _modules_after("import dualsr_core, dualsr_core.coarse, dualsr_core.weights, dualsr_core.raster",
                             str(ROOT))
    assert "dualsr_core.coarse" in modules and "torch" not in modules


@pytest.mark.qgis
def test_importing_the_provider_does_not_import_torch(tmp_path):
    pytest.importorskip("qgis.core")
    (tmp_path / "dualsr").symlink_to(ROOT)
    modules = _modules_after("from dualsr.provider.provider import DualSRProvider; DualSRProvider().loadAlgorithms()",
                             str(tmp_path))
    assert "dualsr.algorithms.coarse" in modules
    assert not {"torch", "rasterio", "scipy", "h5py"} & modules
