"""Good bands and their processing order, the one rule Coarse, Fine and the training scenes share."""
from dualsr_core.io.bands import good_bands, wavelength_order


def test_flagged_and_empty_bands_are_left_out_and_the_given_order_kept():
    flagged = [False, True, False, False, False]
    empty = [False, False, False, True, False]
    assert good_bands(flagged, empty) == [0, 2, 4]
    assert good_bands(flagged, empty, [4, 1, 0, 3]) == [4, 0]
    assert good_bands([True, True], [False, False]) == []


def test_good_bands_follow_wavelength_with_ties_by_band_and_none_without_every_wavelength():
    wavelengths = [0.9, None, 0.45, 0.45, 0.6]
    assert wavelength_order([0, 2, 3, 4], wavelengths) == [2, 3, 4, 0]
    assert wavelength_order([3, 2], wavelengths) == [2, 3]
    assert wavelength_order([0, 1, 2], wavelengths) is None  # band 1 has no wavelength
    assert wavelength_order([], wavelengths) == []
