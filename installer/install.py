"""Install PyTorch for the DualSR plugin from a terminal: the same installer as the QGIS dialog.

Run it with the Python that runs QGIS (Windows: the OSGeo4W Shell's `python`; macOS:
`/Applications/QGIS.app/Contents/MacOS/bin/python3`; Linux: `python3`):

    python3 <plugin folder>/installer/install.py                 # torch into the default profile
    python3 <plugin folder>/installer/install.py --profile DIR   # another QGIS profile folder
    python3 <plugin folder>/installer/install.py --dry-run       # only say what it would do
    python3 <plugin folder>/installer/install.py --openvino      # also OpenVINO (alone if torch is there)

Packages go into <profile>/python/dualsr-packages/python3.X, which the plugin appends to sys.path
when QGIS (or qgis_process) loads it. Exit status: 0 installed and importable, 1 failed, 2 bad
arguments, 130 cancelled.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__:
    from . import core, paths
else:  # run as a file: make the plugin folder's `installer` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from installer import core, paths


def profile_from_location(script: Path) -> Path | None:
    """<profile>/python/plugins/<plugin>/installer/install.py -> <profile>, when installed there."""
    parts = script.parts
    if len(parts) >= 5 and parts[-4] == "plugins" and parts[-5] == "python":
        return script.parents[4]
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Install PyTorch into the DualSR plugin's folder of a QGIS profile.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--profile", type=Path, help="QGIS profile folder (default: the profile this plugin is "
                       "installed in, else QGIS's 'default' profile)")
    where.add_argument("--target", type=Path, help="install into this folder instead of a profile's")
    parser.add_argument("--variant", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA build when nvidia-smi finds an NVIDIA GPU, else CPU build")
    index = parser.add_mutually_exclusive_group()
    index.add_argument("--index-url", help="an extra package index for torch (default: the PyTorch index "
                       "of the chosen build)")
    index.add_argument("--no-pytorch-index", action="store_true", help="use only pip's configured index (PyPI)")
    parser.add_argument("--openvino", action="store_true",
                        help=f"also install OpenVINO {core.OPENVINO_VERSION} (int8 inference on CPUs); when torch is "
                        "already installed for QGIS and no requirements are given, OpenVINO alone")
    parser.add_argument("--python", help="the Python that runs QGIS (default: found from this Python; another "
                        "version or prefix is refused)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask before installing")
    parser.add_argument("requirements", nargs="*", help="what to install (default: torch)")
    args = parser.parse_args(argv)

    profile = args.profile or profile_from_location(Path(__file__).absolute()) or paths.default_profile_dir()
    options = dict(profile_dir=profile, target=args.target, requirements=args.requirements, python=args.python,
                   openvino=args.openvino)
    try:
        plan = core.make_plan(variant=args.variant, index_url="" if args.no_pytorch_index else args.index_url,
                              **options)
    except core.InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(plan.describe())
        return 0
    ask = not args.yes and sys.stdin.isatty()
    if ask:
        print(plan.describe())
        if input("Install? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing installed.")
            return 1
    try:
        return install(plan)
    except core.IndexUnreachable as exc:
        try:
            pypi = core.make_plan(variant="auto", index_url="", **options)
        except core.InstallError as refused:
            print(f"error: {exc} {refused}", file=sys.stderr)
            return 1
        print(f"{exc}\nPyPI's torch is the {core.BUILD_NAMES[pypi.variant]} ({pypi.size()}).", file=sys.stderr)
        if not ask:
            print("To install it, run again with --no-pytorch-index.", file=sys.stderr)
            return 1
        if input("Install PyPI's torch instead? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing installed.")
            return 1
        return install(pypi)


def install(plan) -> int:
    """Run the plan; the exit status. An unreachable PyTorch index is left to the caller."""
    installer = core.Installer(plan, log=lambda line: print(line, flush=True))
    try:
        result = installer.run()
    except KeyboardInterrupt:
        installer.cancel()
        print("Cancelled: nothing was changed in the packages folder.", file=sys.stderr)
        return 130
    except core.IndexUnreachable:
        raise
    except core.InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130 if isinstance(exc, core.InstallCancelled) else 1
    if not result.ok:
        print("error: the install finished but the import check failed (see above).", file=sys.stderr)
        return 1
    print(f"Done. QGIS finds it in {plan.target} the next time it loads the plugin: restart QGIS if it is running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
