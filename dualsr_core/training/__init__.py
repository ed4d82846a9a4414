"""Training CoarSR: patches from real scenes, the training loop, checkpoints and reports.

Entry point `trainer.train`; settings and their defaults `config.TrainConfig` (torch-free, so the
QGIS algorithm reads the defaults at load time). This package file imports nothing: importing
`training.config` must not pull in rasterio, h5py or torch.
"""
