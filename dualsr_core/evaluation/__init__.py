"""Quality metrics (PSNR, SSIM, SAM, ERGAS, RMSE, CC) and the evaluation of a result raster."""
