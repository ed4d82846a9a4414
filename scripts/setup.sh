#!/usr/bin/env bash
# Install what the plugin, its tests and its demo need on Debian 12 (bookworm). Idempotent.
# QGIS and the scientific Python stack come from Debian so one GDAL is in the process; torch comes
# from PyPI into a venv that sees the Debian packages (--system-site-packages).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES="qgis python3-qgis qgis-providers python3-gdal python3-rasterio python3-h5py python3-scipy
 python3-numpy python3-matplotlib python3-pil python3-pytest python3-venv gdal-bin xvfb xauth"
missing=""
for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv (with the Debian site-packages)"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -c "import torch" 2>/dev/null || {
    echo "setup: installing torch==2.13.0"
    .venv/bin/pip install -q torch==2.13.0
}
# dask.distributed for `python -m dualsr_core batch` (scene archives on a cluster) and its tests; the
# plugin works without it. Not bokeh (the dashboard's pages): it would replace Debian's numpy in the venv.
.venv/bin/python -c "import distributed" 2>/dev/null || {
    echo "setup: installing dask[distributed]==2026.8.0 (batch command only)"
    .venv/bin/pip install -q "dask[distributed]==2026.8.0"
}
# OpenVINO for PRECISION int8 (optional for users; the tests and `make bench` need it). It accepts
# Debian's numpy as is, so nothing in the venv shadows it.
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('openvino') is None)" || {
    echo "setup: installing openvino==2026.4.1 (int8 inference)"
    .venv/bin/pip install -q openvino==2026.4.1
}
# Real hyperspectral imagery for the demo: a 450-band Specim Fenix scan shipped in napari-hippo.
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('napari_hippo') is None)" || {
    echo "setup: installing napari-hippo==0.2.0 (demo data only, --no-deps)"
    .venv/bin/pip install -q --no-deps napari-hippo==0.2.0
}
.venv/bin/python -c "import torch, rasterio, h5py, scipy, osgeo.gdal, qgis.core; print('setup: ok, torch', torch.__version__, 'QGIS', qgis.core.Qgis.QGIS_VERSION)"
