"""TrainConfig.check: one sentence naming the parameter for each setting training cannot use, against
options.SCALES and the checks of tools/checks.py; torch-free."""
import numpy as np
import pytest

from dualsr_core.errors import InputError
from dualsr_core.options import SCALES
from dualsr_core.training.config import TrainConfig


@pytest.mark.parametrize("bad, message", [
    (dict(scale=5), "SCALE is 5 but must be one of 2, 3, 4, 8."),
    (dict(epochs=0), "EPOCHS is 0 but must be a whole number of at least 1."),
    (dict(batch_size=-2), "BATCH_SIZE is -2 but must be a whole number of at least 1."),
    (dict(patch_size=8.5), "PATCH_SIZE is 8.5 but must be a whole number of at least 1."),
    (dict(checkpoint_every=True), "checkpoint_every is True but must be a whole number of at least 1."),
    (dict(lr=0), "LEARNING_RATE is 0 but must be a positive number such as 1e-4."),
    (dict(lr=0.0), "LEARNING_RATE is 0.0 but must be a positive number such as 1e-4."),
    (dict(lr=float("nan")), "LEARNING_RATE is nan but must be a positive number such as 1e-4."),
    (dict(lr=np.float64(-1e-4)), "LEARNING_RATE is -0.0001 but must be a positive number such as 1e-4."),
    (dict(val_fraction=0.5), "VAL_FRACTION is 0.5 but must be at least 0 and below 0.5 (0 disables validation)."),
    (dict(band_steps="x"), "band_steps is 'x' but must be one of summed, per_band."),
    (dict(max_iterations=0), "max_iterations is 0 but must be a whole number of at least 1 (or None for no limit)."),
    (dict(band_window=0), "band_window is 0 but must be a whole number of at least 1."),
    (dict(band_chunk=-1), "band_chunk is -1 but must be a whole number of at least 1."),
    (dict(spectral_weight=-0.1), "SPECTRAL_WEIGHT is -0.1 but must be a number of at least 0 (0: L1 alone)."),
    (dict(spectral_weight=float("nan")), "SPECTRAL_WEIGHT is nan but must be a number of at least 0 (0: L1 alone)."),
])
def test_each_bad_setting_is_one_sentence_naming_its_parameter(bad, message):
    with pytest.raises(InputError) as info:
        TrainConfig(**{"scale": 2, **bad}).check()
    assert str(info.value) == message


def test_the_defaults_every_scale_and_numpy_integers_pass():
    for scale in SCALES:
        assert TrainConfig(scale=scale).check().scale == scale
    config = TrainConfig(scale=2, epochs=np.int64(3), lr=1, max_iterations=5, band_window=None, band_chunk=4)
    assert config.check() is config and config.lr == 1  # checked, not rewritten
