"""Files in and out: the raster reader and writer, scene loading for training, atomic outputs, and
the default styles written beside rasters. The reader, the writer and the style writer are the only
code of the core that touches rasterio and GDAL."""
