"""Installs PyTorch (and, optionally, OpenVINO) for the plugin into a folder of its own in the QGIS profile.

`paths` (where that folder is, and putting it on sys.path) and `core` (finding the Python that runs
QGIS, choosing the wheel, running pip, checking the result) use only the standard library, so the
shell command `installer/install.py` works without QGIS. `dialog` is the Qt front end.
"""
