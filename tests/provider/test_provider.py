"""The provider and every algorithm's naming, parameters and help."""
import re

import pytest

pytestmark = pytest.mark.qgis

ALGORITHMS = ["coarse", "fine", "dualsr", "train", "evaluate", "degrade"]


@pytest.fixture(scope="module")
def registry(qgis_processing):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry()


def test_provider_is_registered(registry):
    provider = registry.providerById("dualsr")
    assert provider.name() == "DualSR"
    assert sorted(a.name() for a in provider.algorithms()) == sorted(ALGORITHMS)
    assert provider.supportedOutputRasterLayerExtensions() == ["tif", "img"]
    assert not provider.icon().isNull()


@pytest.mark.parametrize("name", ALGORITHMS)
def test_algorithm_naming_and_help(registry, name):
    algorithm = registry.algorithmById(f"dualsr:{name}")
    assert re.fullmatch(r"[a-z0-9]+", algorithm.name())
    assert algorithm.displayName() and algorithm.group()
    ids = [p.name() for p in algorithm.parameterDefinitions()]
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", pid) for pid in ids), ids
    help_text = algorithm.shortHelpString()
    assert not re.search(r"[<>&]", help_text + algorithm.shortDescription())
    assert "Dual-Stage Approach Toward Hyperspectral Image Super-Resolution" in help_text
    assert algorithm.canExecute()[0]
