"""make demo: DualSR Coarse through qgis_process on real hyperspectral imagery, plus a quicklook.

Runs on the georeferenced EnMAP L2A sample committed in sample/ (64 x 64 pixels of 30 m, 224 bands,
Potsdam) and on the 450-band Specim Fenix laboratory scan that `make setup` installs with
napari-hippo; nothing else is needed (no shared data folder). For each it prints the output as
`output: PATH` with its size, CRS and pixel size, the true-colour default style QGIS opens it with
(`style: PATH`), and a PNG quicklook beside it (`quicklook: PATH`): true-colour composites of the
input (nearest), bicubic and DualSR, and the spectra of a few pixels.
"""
import argparse
import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dualsr_core.io.raster import RasterReader  # noqa: E402
from dualsr_core.io.style import TARGETS_NM, nearest_good_bands, style_path  # noqa: E402
from dualsr_core.tools.resize import resize  # noqa: E402
from dualsr_core.tools.tiling import Region  # noqa: E402

OUT = ROOT / "demo_output"
warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)


SAMPLE = ROOT / "sample" / "enmap_potsdam.tif"


def samples() -> list[tuple[str, Path, int]]:
    found = [("enmap_potsdam", SAMPLE, 2)]
    spec = importlib.util.find_spec("napari_hippo")
    if spec is not None:
        found.append(("fenix", Path(spec.origin).parent / "testdata" / "image.dat", 2))
    else:
        print("(the Fenix scan is skipped: napari-hippo is not installed; `make setup` installs it)")
    return found


def run_coarse(src: Path, out: Path, scale: int):
    command = ["qgis_process.bin", "run", "dualsr:coarse", "--", f"INPUT={src}", f"SCALE={scale}", f"OUTPUT={out}"]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(("Device ", "Input ", "Wrote ")):
            print("  " + line)


def describe(path: Path):
    with rasterio.open(path) as ds:
        crs = ds.crs.to_string() if ds.crs else "none (the sample is a laboratory scan without georeference)"
        print(f"output: {path}\n  size: {ds.width} x {ds.height} pixels, {ds.count} bands, {ds.dtypes[0]}\n"
              f"  CRS: {crs}\n  pixel size: {ds.res[0]:g} x {ds.res[1]:g}")
    style = style_path(path)
    print(f"style: {style}" if style.is_file() else "style: none (no wavelength metadata for true colour)")


def composite(cube: np.ndarray, bands: list[int], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    rgb = np.stack([cube[b] for b in bands], axis=-1)
    return np.clip((rgb - low) / (high - low + 1e-9), 0, 1)


def quicklook(name: str, src: Path, out: Path, scale: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with RasterReader(src) as reader:
        lr, lr_valid = reader.read(Region(0, 0, reader.height, reader.width))
        wavelengths = np.array([w or np.nan for w in reader.wavelengths_um()]) * 1000
        good = [not bad for bad in reader.bad_band_list()]
    with RasterReader(out) as reader:
        sr, sr_valid = reader.read(Region(0, 0, reader.height, reader.width))
    sr[~sr_valid] = np.nan  # bad bands and nodata are gaps in the spectra, not zeros
    h, w = lr.shape[1:]
    nearest = np.repeat(np.repeat(lr, scale, axis=1), scale, axis=2)
    bicubic = resize(lr, (h * scale, w * scale), method="pil")
    bicubic[~np.repeat(np.repeat(lr_valid, scale, axis=1), scale, axis=2)] = np.nan
    # True colour from the bands the output's QGIS style uses (the good bands nearest 640, 550, 470 nm).
    bands = [ranked[0] for ranked in nearest_good_bands(list(wavelengths), good, TARGETS_NM, np.inf)]
    stack = np.stack([nearest[b] for b in bands])
    low = np.nanpercentile(stack, 2, axis=(1, 2))
    high = np.nanpercentile(stack, 98, axis=(1, 2))
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.5))
    for ax, (title, cube) in zip(axes, [("input (nearest)", nearest), ("bicubic", bicubic), ("DualSR Coarse", sr)]):
        ax.imshow(np.nan_to_num(composite(cube, bands, low, high)), interpolation="nearest")
        ax.set_title(f"{name}: {title}")
        ax.axis("off")
    rng = np.random.default_rng(0)
    order = np.argsort(wavelengths)  # EnMAP's VNIR and SWIR detectors overlap: file order is not wavelength order
    for row, col in zip(rng.integers(0, h * scale, 3), rng.integers(0, w * scale, 3)):
        line = axes[3].plot(wavelengths[order], sr[order, row, col], lw=1.2, label=f"DualSR ({row},{col})")
        axes[3].plot(wavelengths[order], bicubic[order, row, col], lw=0.8, ls="--", color=line[0].get_color())
    axes[3].set_xlabel("wavelength (nm)")
    axes[3].set_ylabel("reflectance")
    axes[3].set_title("spectra: DualSR (solid), bicubic (dashed)")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    png = out.with_name(out.stem + "_quicklook.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for name, src, scale in samples():
        print(f"\n== {name}: {src}")
        out = OUT / f"{name}_x{scale}.tif"
        run_coarse(src, out, scale)
        describe(out)
        print(f"quicklook: {quicklook(name, src, out, scale)}")


if __name__ == "__main__":
    main()
