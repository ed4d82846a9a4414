"""The provider and every algorithm's naming, parameters and help."""
import re

import pytest

pytestmark = pytest.mark.qgis

ALGORITHMS = ["coarse", "fine", "dualsr", "train", "evaluate", "degrade", "importproduct"]


@pytest.fixture(scope="module")
def registry(qgis_processing):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry()


def test_provider_is_registered(registry):
    provider = registry.providerById("dualsr")
    assert provider.name() == "DualSR"
    assert sorted(a.name() for a in provider.algorithms()) == sorted(ALGORITHMS + ["dualsrcoarsethenfine",
                                                                               "importproductthendualsr"])
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


def test_missing_torch_message_keeps_the_install_command_in_the_desktop_html(registry, monkeypatch):
    """The desktop shows canExecute's reason as HTML: `<plugin folder>` was taken for a tag and dropped."""
    import sys
    from pathlib import Path

    from qgis.PyQt.QtGui import QTextDocument

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails as if it were not installed
    ok, message = registry.algorithmById("dualsr:coarse").canExecute()
    shown = QTextDocument()
    shown.setHtml(message)
    module = sys.modules[type(registry.algorithmById("dualsr:coarse")).__module__]  # <plugin>/algorithms/coarse.py
    script = Path(module.__file__).resolve().parents[1] / "installer" / "install.py"
    assert not ok and "PyTorch is not importable" in shown.toPlainText()
    python = sys.executable  # the venv's python, inside its prefix
    assert f"'{python} {script}' (the Python that runs QGIS)" in shown.toPlainText()


@pytest.mark.parametrize("name", ALGORITHMS)
def test_help_speaks_of_the_dialog_and_keeps_shell_advice_for_its_last_line(registry, name):
    """The dialog's help names parameters by their labels; ids and qgis_process advice are on the last line only."""
    algorithm = registry.algorithmById(f"dualsr:{name}")
    *body, last = algorithm.shortHelpString().split("\n")
    assert last.startswith("From the shell (qgis_process): give a choice by its value")
    ids = [p.name() for p in algorithm.parameterDefinitions()]  # outputs are named after metrics (PSNR, CSV)
    named = [pid for pid in ids if any(re.search(rf"\b{pid}\b", line) for line in body)]
    assert not named and not any("qgis_process" in line for line in body), named


def test_one_default_scale_and_x8_said_to_need_own_weights(registry):
    from pathlib import Path

    scales = {name: registry.algorithmById(f"dualsr:{name}").parameterDefinition("SCALE")
              for name in ALGORITHMS if registry.algorithmById(f"dualsr:{name}").parameterDefinition("SCALE")}
    assert set(scales) == {"coarse", "fine", "dualsr", "train", "evaluate", "degrade"}
    assert {p.defaultValue() for p in scales.values()} == {"2"}
    bundled_x8 = (Path(__file__).resolve().parents[2] / "weights" / "coarsr_x8.pt").is_file()
    for name in ("coarse", "fine", "dualsr"):
        assert ("x8 needs weights you trained" in scales[name].description()) is not bundled_x8


def test_every_algorithm_has_an_icon_of_its_own(registry):
    """Drawn for this plugin (provider/icons), one per algorithm, none the generic gear."""
    from qgis.core import QgsApplication

    def image(icon):
        return icon.pixmap(32, 32).toImage()

    gear = image(QgsApplication.getThemeIcon("/processingAlgorithm.svg"))
    images = {name: image(registry.algorithmById(f"dualsr:{name}").icon()) for name in ALGORITHMS}
    assert all(not picture.isNull() and picture != gear for picture in images.values()), \
        [name for name, picture in images.items() if picture.isNull() or picture == gear]
    assert len({bytes(picture.constBits().asstring(picture.sizeInBytes())) for picture in images.values()}) == \
        len(ALGORITHMS)
