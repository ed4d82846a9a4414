"""The `batch` command of `python -m dualsr_core` (argument parsing only: dask is imported when it runs)."""
from __future__ import annotations

import sys

from ..options import BAD_BAND_MODES, DEFAULT_TILE, DEVICES, DRIVERS, PRECISIONS, SCALES, SCHEDULES
from .runner import METHODS, RASTER_SUFFIXES


def add_batch_parser(subparsers):
    p = subparsers.add_parser(
        "batch", help="super-resolve many scenes on a Dask cluster",
        description="Super-resolve every scene of the inputs on a Dask cluster (a local one by default), one task "
                    "per scene or per row stripe of a large scene. A manifest (manifest.json) beside the outputs "
                    "records each scene; rerunning the same command skips the scenes it records as complete whose "
                    "output is intact. Exit status 0 only when every scene is complete.")
    p.add_argument("--input", nargs="+", required=True, metavar="FOLDER_OR_FILE",
                   help=f"raster files, or folders searched recursively for {' '.join(RASTER_SUFFIXES)}")
    p.add_argument("--output", required=True, metavar="FOLDER",
                   help="folder of the outputs (<name>_x<scale>.tif, .img for ENVI) and of manifest.json")
    p.add_argument("--scale", type=int, required=True, choices=SCALES)
    p.add_argument("--method", default="coarse", choices=METHODS,
                   help="coarse: DualSR Coarse; dualsr: coarse + fine (DualSR Fine needs the whole image, so a "
                        "striped scene runs its coarse stages in stripes and Fine once)")
    p.add_argument("--weights", default=None, help="weights file (.pt; default: the bundled weights of the scale)")
    p.add_argument("--reference-weights", default=None,
                   help="dualsr at x4/x8: weights of half the scale (default: bundled)")
    p.add_argument("--iterations", type=int, default=1, help="dualsr: back-projection iterations")
    p.add_argument("--tile-size", type=int, default=DEFAULT_TILE,
                   help="side of the largest window the network reads at once, overlap included, in input pixels")
    p.add_argument("--overlap", type=int, default=None,
                   help="context on each side of a tile's kept pixels (default: the receptive radius)")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto picks int8 (CPUs with the optional OpenVINO), bf16 or fp32 by device and job size; "
                        "int8 runs on CPUs only")
    p.add_argument("--schedule", default="auto", choices=SCHEDULES,
                   help="pin 'band' or 'batched' for results that equal a one-process run bit for bit")
    p.add_argument("--band-chunk", type=int, default=16)
    p.add_argument("--bad-bands", default="nodata", choices=BAD_BAND_MODES)
    p.add_argument("--output-float", action="store_true", help="write float32 reflectance")
    p.add_argument("--format", default="GTiff", choices=DRIVERS, dest="driver")
    p.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes (default: one per GPU, else one per core within the memory)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786 or a scheduler file) instead of a local cluster")
    p.add_argument("--stripe-rows", type=int, default=None,
                   help="split scenes into stripes of about this many input rows (whole rows of tiles); 0 never; "
                        "default: only scenes larger than one worker's share of the run")
    p.add_argument("--retries", type=int, default=2, help="retries of a task that failed unexpectedly")
    p.set_defaults(func=_run_batch)
    return p


def _run_batch(args, feedback) -> int:
    from .runner import run_batch

    summary = run_batch(args.input, args.output, args.scale, method=args.method, weights=args.weights,
                        reference_weights=args.reference_weights, iterations=args.iterations,
                        tile_size=args.tile_size, overlap=args.overlap, device=args.device, precision=args.precision,
                        schedule=args.schedule, band_chunk=args.band_chunk, output_float=args.output_float,
                        bad_bands=args.bad_bands, driver=args.driver, workers=args.workers, scheduler=args.scheduler,
                        stripe_rows=args.stripe_rows, retries=args.retries, feedback=feedback,
                        progress_stream=sys.stderr)
    print(f"MANIFEST:\t{summary['manifest']}", flush=True)
    return summary["exit_code"]
