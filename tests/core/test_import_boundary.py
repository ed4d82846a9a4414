"""dualsr_core never imports QGIS, and importing the core or the provider does not import torch."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Where torch may be imported: the network and its engine, training, and the cluster layer that
# hands out GPUs. Everything else reaches torch through network.torch_support, lazily.
TORCH_PACKAGES = ("network", "training", "batch")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_core_has_no_qgis_import():
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in (ROOT / "dualsr_core").rglob("*.py")
                 for name in imported_modules(path) if name.split(".")[0] in ("qgis", "PyQt5", "PyQt6")]
    assert offenders == []


def test_torch_is_imported_only_where_the_network_and_training_live():
    offenders = []
    for path in (ROOT / "dualsr_core").rglob("*.py"):
        package = path.relative_to(ROOT / "dualsr_core").parts[0]
        if package not in TORCH_PACKAGES:
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in imported_modules(path)
                          if name.split(".")[0] == "torch"]
    assert offenders == []


def _modules_after(code: str, extra_path: str) -> set:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([extra_path, os.environ.get("PYTHONPATH", "")]),
               QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, env=env, check=True)
    return set(out.stdout.split())


def test_importing_the_core_does_not_import_torch():
    modules = _modules_after("import dualsr_core, dualsr_core.stages.coarse, dualsr_core.network.weights, "
                             "dualsr_core.io.raster", str(ROOT))
    assert "dualsr_core.stages.coarse" in modules and "torch" not in modules


@pytest.mark.qgis
def test_importing_the_provider_does_not_import_torch(tmp_path):
    pytest.importorskip("qgis.core")
    (tmp_path / "dualsr").symlink_to(ROOT)
    modules = _modules_after("from dualsr.provider.provider import DualSRProvider; DualSRProvider().loadAlgorithms()",
                             str(tmp_path))
    assert "dualsr.algorithms.coarse" in modules
    assert not {"torch", "rasterio", "scipy", "h5py"} & modules
