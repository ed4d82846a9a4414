"""The shipped graphical models: valid and tidy in the Modeler, listed by the provider."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.qgis

MODELS = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.model3"))


@pytest.fixture(scope="module")
def provider(qgis_processing):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().providerById("dualsr")


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_model_opens_valid_and_laid_out(provider, path):
    """What the Modeler shows on opening the file: no invalid step, no box on another, every input and output
    labelled, the raster (or the sensor product file) first, every parameter of every step set (a mandatory
    one without a value is invalid even where it has a default)."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(path))
    assert model.validate() == (True, [])
    children = model.childAlgorithms().values()
    for child in children:
        assert model.validateChildAlgorithm(child.childId()) == (True, []), child.childId()
        declared = {d.name() for d in child.algorithm().parameterDefinitions() if not d.isDestination()
                    and not (d.flags() & d.FlagOptional)}
        assert declared <= set(child.parameterSources()), (child.childId(), declared - set(child.parameterSources()))
    components = list(children) + list(model.parameterComponents().values()) + \
        [o for c in children for o in c.modelOutputs().values()]
    positions = [(c.position().x(), c.position().y()) for c in components]
    assert len(set(positions)) == len(positions) and (0, 0) not in positions, positions
    inputs = model.parameterDefinitions()
    assert all(d.description() and d.description() != d.name() for d in inputs), [d.name() for d in inputs]
    assert inputs[0].type() in ("raster", "file"), [d.name() for d in inputs]
    assert all(c.description() for c in children)
    listed = provider.algorithm(path.stem.replace("_", ""))
    assert listed is not None and listed.group() == "Models" and listed.displayName() == model.name()
