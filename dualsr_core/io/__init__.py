"""Files in and out: atomic outputs and the styles written beside rasters."""
