"""The method's stages on raster files: Coarse (CoarSR), Fine (back-projection) and Degrade."""
