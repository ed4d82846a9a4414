"""Where the plugin's private packages live, and how that folder reaches sys.path.

Standard library only: the plugin imports this module when QGIS loads it (desktop and qgis_process),
and the shell installer imports it without QGIS.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

FOLDER = "dualsr-packages"


def packages_dir(profile_dir, version=None) -> Path:
    """`<profile>/python/dualsr-packages/python3.X`: one folder per Python version.

    Compiled wheels such as torch only load in the Python version they were built for, so a QGIS
    upgrade that brings a new Python starts from an empty folder instead of a broken torch.
    """
    major, minor = (version or sys.version_info)[:2]
    return Path(profile_dir) / "python" / FOLDER / f"python{major}.{minor}"


def default_profile_dir(platform: str | None = None, environ=None, home: Path | None = None) -> Path:
    """The folder of QGIS's `default` profile, as QGIS computes it (QGIS_CUSTOM_CONFIG_PATH first)."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else Path(home)
    if environ.get("QGIS_CUSTOM_CONFIG_PATH"):
        root = Path(environ["QGIS_CUSTOM_CONFIG_PATH"])
    elif platform.startswith("win"):
        root = Path(environ.get("APPDATA") or home / "AppData" / "Roaming") / "QGIS" / "QGIS3"
    elif platform == "darwin":
        root = home / "Library" / "Application Support" / "QGIS" / "QGIS3"
    else:
        root = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "QGIS" / "QGIS3"
    return root / "profiles" / "default"


def add_to_sys_path(folder) -> bool:
    """Append `folder` to sys.path, after QGIS's own folders, so QGIS's packages always win.

    The folder may not exist yet (nothing installed): appending it costs nothing, and once the
    installer fills it, `activate` makes it importable without a restart. Returns True when added.
    """
    folder = os.path.abspath(os.fspath(folder))
    if folder in sys.path:
        return False
    sys.path.append(folder)
    return True


def activate(folder) -> None:
    """Make packages just installed into `folder` importable in this process."""
    folder = os.path.abspath(os.fspath(folder))
    add_to_sys_path(folder)
    sys.path_importer_cache.pop(folder, None)  # a finder cached while the folder was missing or empty
    importlib.invalidate_caches()
