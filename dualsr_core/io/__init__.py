"""Files in and out: the raster reader and writer (the only code that touches rasterio and GDAL), scene
loading for training, atomic outputs, and the default styles written beside rasters."""
