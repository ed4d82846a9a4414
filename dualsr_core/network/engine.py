"""CoarSR inference engine: one low-resolution tile of many bands in, its super-resolution out.

Two exact schedules (docs/method.md#inference-schedules):
- "band": band after band through the whole network, the working set of one band; fastest on
  CPUs, where it stays in cache.
- "batched": the state-independent part (heads, ASFMs, aggregation) and the tail run for a chunk
  of bands at once; only the 1x1 feature-context fusion is sequential. Fastest on GPUs.
"auto" times both on the first tile and keeps the batched one only when it is clearly faster, since
it holds the feature maps of several bands at once.

PRECISION "auto" on a CPU is settled the same way on jobs large enough to repay the measurement:
the precisions this CPU and installation can run are timed on the first tile and the fastest is
kept (README "Precision"); smaller jobs take a fixed rule.

Only reached after `require_torch()`.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import InputError, MissingDependencyError
from ..options import PRECISIONS, SCHEDULES
from ..tools import resize
from ..tools.checks import WHOLE, positive_integer
from . import int8
from .allocator import outside_heap
from .fused import PreparedCoarSR

CPU_BATCH_BYTES = 512 * 2**20
# The batched schedule must beat band by band by this factor to be chosen, since it holds several
# bands' feature maps. On this project's CPU the two run within a few percent, yet in some processes
# every band-by-band trial times 50-70% slow; a smaller factor picked 'batched' there, and its peak
# memory was 20% higher for no gain. On GPUs batching is expected to win by far more (unmeasured).
BATCHED_MIN_SPEEDUP = 1.5
CALIBRATION_REPEATS = 3
# PRECISION=auto on a CPU measures its candidates only on jobs of at least this many input
# band-pixels (1000 x 1000 x 40; at x2 about three minutes in bf16 or int8 on 2 cores). The
# measurement costs about 5 s there (four one-band runs of each candidate on the first tile, and
# int8's calibration and compilation, 1.6 s), about 3% of such a job; at the earlier 16 million it
# cost a tenth. Smaller jobs take the rule that measured right on every CPU of
# docs/benchmarks.md#precision: bf16 where the CPU has native bf16 (AVX512-BF16 or AMX: 1.95-2.6x
# fp32; int8 2.1x at x2 but 1.6x at x4 on the AMD EPYC with AVX512-BF16), else fp32 (exact, and no
# set-up; int8 is left to the measurement as no CPU without bf16 has timed it since it runs in int8).
MEASURE_MIN_BAND_PIXELS = 40_000_000
# A precision other than fp32 must beat fp32's best time by this factor to be kept: fp32 is exact,
# and a smaller gain is within what two CPU cores vary between runs.
PRECISION_MIN_SPEEDUP = 1.05
PRECISION_TRIAL_BANDS = 1  # a band of a default tile takes 0.2-0.5 s: long enough to time, the best of three
# Precisions measured in this process, by (scale, network size, threads, candidates, schedule, tile
# size): a batch worker or a QGIS session measures once per kind of run, not for every scene.
_measured_precisions: dict[tuple, tuple[str, str]] = {}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AVX512-BF16 or AMX, where bf16 convolutions beat fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def cpu_runs_bf16() -> bool:
    """True when oneDNN can run bf16 convolutions at all (AVX-512 BW/VL/DQ or AVX-NE-CONVERT); on
    an AVX2-only CPU torch refuses them. Off Linux (no /proc/cpuinfo) torch is left to decide."""
    flags = _cpu_flags()
    return not flags or {"avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags


def cpu_fast_int8() -> str | None:
    """The CPU's int8 dot-product instructions that make int8 faster than fp32 (AMX or VNNI), None
    without them (or off Linux, where this is not read). With AVX2 alone int8 runs (PRECISION int8),
    through multiply-adds of pairs in 16 bits (docs/benchmarks.md#int8)."""
    flags = _cpu_flags()
    if "amx_int8" in flags:
        return "AMX"
    return "VNNI" if {"avx512_vnni", "avx_vnni"} & flags else None


def choose_precision(precision: str, device: torch.device, band_pixels: int | None = None) -> tuple[str, str]:
    """The precision to run and why, checked against this machine.

    'auto' is bf16 on CUDA. On a CPU it is 'auto' still (settled by `CoarseEngine` timing the
    `precision_candidates` on the first tile) when the job (`band_pixels`: input pixels times
    bands, None for unknown) is large enough and there is more than fp32 to try; else bf16 where
    the CPU has native bf16, else fp32.
    """
    if precision not in PRECISIONS:
        raise InputError(f"PRECISION is '{precision}' but must be one of {', '.join(PRECISIONS)}.")
    if precision == "bf16" and device.type == "cpu" and not cpu_runs_bf16():
        raise InputError("PRECISION bf16 needs a CUDA GPU or a CPU with AVX-512 (or AVX-NE-CONVERT), which this "
                         "CPU lacks; choose fp32, or auto, which picks the fastest precision this machine runs.")
    if precision == "int8" and device.type != "cpu":
        raise InputError("PRECISION int8 runs on CPUs only; on a GPU choose auto (bf16), bf16 or fp32.")
    if precision == "int8" and not int8.openvino_available():
        raise MissingDependencyError(f"PRECISION int8 needs the optional package OpenVINO: {int8.INSTALL_HINT}")
    if precision != "auto":
        return precision, "as asked"
    if device.type == "cuda":
        return "bf16", "auto on a CUDA GPU"
    candidates = precision_candidates()
    small = band_pixels is not None and band_pixels < MEASURE_MIN_BAND_PIXELS
    if len(candidates) > 1 and not small:
        return "auto", f"auto: {', '.join(candidates)} to be timed on the first tile"
    rule = "bf16" if cpu_has_fast_bf16() else "fp32"
    if small and len(candidates) > 1:
        why = f"a job of {band_pixels:,} band-pixels is too small to repay timing {', '.join(candidates)}"
    elif rule == "bf16":
        why = "this CPU has native bf16 (AVX512-BF16 or AMX)"
    else:
        why = "this CPU has no native bf16 and OpenVINO (int8) is not installed"
    return rule, f"auto: {why}"


def precision_candidates() -> list[str]:
    """The CPU precisions PRECISION=auto times: fp32; bf16 where the CPU runs it natively (on
    AVX-512 without BF16 oneDNN emulates it, slower than fp32); int8 where OpenVINO is installed."""
    return ["fp32"] + (["bf16"] if cpu_has_fast_bf16() else []) + (["int8"] if int8.openvino_available() else [])


def check_schedule(schedule: str) -> str:
    """The schedule name, checked; 'auto' is settled by measurement on the first tile (_calibrate)."""
    if schedule not in SCHEDULES:
        raise InputError(f"SCHEDULE is '{schedule}' but must be one of {', '.join(SCHEDULES)}.")
    return schedule


class CoarseEngine:
    """Runs a folded, eval-mode CoarSR over the bands of a tile.

    Args:
        model: CoarSR with weight norm folded.
        device: where to run.
        precision: 'auto', 'fp32', 'bf16' (weights and features in bf16, the skip image in fp32) or
            'int8' (CPU: `features` in int8, calibrated on the first bands run; network/int8.py).
        schedule: 'auto', 'band' or 'batched'.
        band_chunk: bands per batch in the batched schedule.
        band_pixels: input pixels times bands of the whole job, for precision 'auto' (None: unknown).
    """

    def __init__(self, model, device: torch.device, precision: str = "auto", schedule: str = "auto",
                 band_chunk: int = 16, band_pixels: int | None = None):
        self.device = device
        self.precision, self.precision_reason = choose_precision(precision, device, band_pixels)
        self.schedule = check_schedule(schedule)
        self.band_chunk = positive_integer(band_chunk, "BAND_CHUNK", InputError, message=WHOLE)
        self.scale = model.config.scale
        self.calibration = ""
        # One layout and one precision end to end: channels-last suits oneDNN on CPUs and tensor
        # cores on GPUs.
        self.layout = torch.channels_last
        self._source = model
        self._prepared = {}
        self._use(self.precision if self.precision != "auto" else "fp32")
        self._skip_matrices = {}

    @property
    def needs_calibration(self) -> bool:
        """True while PRECISION or SCHEDULE 'auto' waits for the first tile's timings."""
        return self.precision == "auto" or self.schedule == "auto"

    def _use(self, precision: str):
        """Run in `precision` from now on. bf16 weights are cast once here, where autocast would cast
        them at every call and promote back to fp32 at the first fp32 parameter an operation meets."""
        if precision not in self._prepared:
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            model = PreparedCoarSR(self._source).to(self.device, dtype).eval().to(memory_format=self.layout)
            model.use_post_ops(self.device.type == "cpu")
            features = int8.Int8Features(model, torch.get_num_threads()) if precision == "int8" else None
            self._prepared[precision] = (dtype, model, features)
        self.dtype, self.model, self.int8_features = self._prepared[precision]

    @torch.inference_mode()
    def bicubic(self, cube: np.ndarray) -> np.ndarray:
        """PIL bicubic upsampling of a (B,h,w) cube by the scale (for bad bands the user keeps)."""
        x = torch.from_numpy(np.ascontiguousarray(cube)).to(self.device).unsqueeze(1)
        return self._bicubic(x)[:, 0].cpu().numpy()

    def _bicubic(self, x: torch.Tensor) -> torch.Tensor:
        """PIL-compatible bicubic upsampling of (B,1,h,w), the skip image (docs/method.md#resampling)."""
        h, w = x.shape[-2:]
        if (h, w) not in self._skip_matrices:
            self._skip_matrices[(h, w)] = tuple(torch.from_numpy(m).to(self.device)
                                                for m in resize.skip_matrices(h, w, self.scale))
        wy, wxt = self._skip_matrices[(h, w)]
        return wy @ x.float() @ wxt  # fp32 whatever the working precision

    def run(self, cube: np.ndarray, order: list[int], table: np.ndarray) -> np.ndarray:
        """Super-resolve the bands of `order` of a (L,h,w) float32 reflectance cube.

        Args:
            cube: low-resolution tile, no invalid values.
            order: indices into `cube` of the bands to super-resolve, in processing (wavelength) order.
            table: neighbour table for `order` (partition.neighbour_table), indices into `cube`.
        Returns:
            (len(order), h*s, w*s) float32, in the order of `order`.
        """
        return self.run_from(cube, order, table, None)[0]

    @torch.inference_mode()
    def calibrate(self, cube: np.ndarray, order: list[int], table: np.ndarray):
        """Settle PRECISION=auto, the int8 ranges and SCHEDULE=auto on these bands now (arguments as
        `run`), rather than at the first `run_from`; a caller whose I/O threads would disturb the
        timings calls it before they start."""
        self._settle(self._to_device(cube), order, table)

    def _settle(self, bands: torch.Tensor, order: list[int], table: np.ndarray):
        if self.precision == "auto":
            self._measure_precision(bands, order, table)
        self._calibrate_int8(bands, order, table)
        if self.schedule == "auto":
            self.schedule = self._calibrate(bands, order, table)

    def _measure_precision(self, bands: torch.Tensor, order: list[int], table: np.ndarray):
        """Time every candidate precision on the first bands of this tile, interleaved,
        CALIBRATION_REPEATS times after a warm-up each (int8 calibrates and compiles first, outside
        the timings), and keep the fastest best time; fp32 unless another beats it by
        PRECISION_MIN_SPEEDUP. The trial runs band by band, or batched where SCHEDULE is 'batched';
        with SCHEDULE 'auto' the schedule is then timed in the chosen precision. A candidate that
        fails to set up or run is left out. The other precisions' networks are dropped."""
        batched = self.schedule == "batched"
        n = min(len(order), self._chunk_for(bands), 4) if batched else min(len(order), PRECISION_TRIAL_BANDS)
        trial = (bands, order[:n], table[:n], n if batched else 1, None)
        config = self._source.config
        offered = precision_candidates()
        key = (self.scale, config.n_feats, config.n_blocks, config.n_asfm, torch.get_num_threads(),
               tuple(offered), self.schedule, tuple(bands.shape[-2:]))
        if key in _measured_precisions:
            choice, reason = _measured_precisions[key]
            self.precision, self.precision_reason = choice, reason.replace("auto: chosen", "auto: chosen earlier in "
                                                                                         "this process", 1)
            self._prepared = {p: v for p, v in self._prepared.items() if p == choice}
            self._use(choice)
            return
        candidates, failed = [], []
        for precision in offered:
            try:
                self._use(precision)
                self._calibrate_int8(bands, order, table)
                self._run(*trial)
            except Exception as exc:  # noqa: BLE001 (an optional runtime may fail in any way; fp32's failure is the run's)
                if precision == "fp32":
                    raise
                failed.append(f"{precision} left out ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
                self._prepared.pop(precision, None)
            else:
                candidates.append(precision)
        timings = {precision: [] for precision in candidates}
        for _ in range(CALIBRATION_REPEATS):
            for precision in candidates:
                self._use(precision)
                started = time.perf_counter()
                self._run(*trial)
                timings[precision].append(time.perf_counter() - started)
        best = {precision: min(times) for precision, times in timings.items()}
        fastest = min(best, key=best.get)
        choice = fastest if best["fp32"] >= PRECISION_MIN_SPEEDUP * best[fastest] else "fp32"
        figures = ", ".join([f"{p} {best[p]:.2f} s ({best['fp32'] / best[p]:.2f}x fp32)" for p in candidates] + failed)
        why = ("the fastest" if choice == fastest else
               f"{fastest} was fastest by less than {PRECISION_MIN_SPEEDUP - 1:.0%}, within the noise of a run")
        self.precision_reason = (f"auto: chosen by measurement on {n} band(s) of the first tile"
                                 f"{', batched' if batched else ''}, best of {CALIBRATION_REPEATS}: {figures}; "
                                 f"{choice} is {why}")
        self.precision = choice
        _measured_precisions[key] = (choice, self.precision_reason)
        self._prepared = {choice: self._prepared[choice]}
        self._use(choice)

    def _calibrate_int8(self, bands: torch.Tensor, order: list[int], table: np.ndarray):
        """int8: activation ranges from up to int8.CALIBRATION_BANDS bands spread over `order`."""
        if self.int8_features is None or self.int8_features.calibrated:
            return
        rows = np.unique(np.linspace(0, len(order) - 1, min(len(order), int8.CALIBRATION_BANDS)).round().astype(int))
        h, w = bands.shape[-2:]
        size = int8.CALIBRATION_SIZE
        window = (..., slice(max(0, (h - size) // 2), (h + size) // 2), slice(max(0, (w - size) // 2), (w + size) // 2))

        def picked(indices):  # (n, k) band indices: (n, k, size, size)
            return bands[torch.as_tensor(indices)][window].float().contiguous(memory_format=self.layout)

        targets = np.asarray(order)[rows, None]
        self.int8_features.calibrate(picked(targets), picked(table[rows, 0]), picked(table[rows, 1]))

    def _to_device(self, cube: np.ndarray) -> torch.Tensor:
        bands = torch.from_numpy(np.ascontiguousarray(cube))
        if self.device.type == "cuda":
            bands = bands.pin_memory().to(self.device, non_blocking=True)
        return bands

    @torch.inference_mode()
    def run_from(self, cube: np.ndarray, order: list[int], table: np.ndarray, state):
        """As `run`, continuing from the recurrent state of an earlier call (None: the first band).

        A tile can so be processed in runs of bands, holding only those bands and their neighbours.
        Returns (output, state).
        """
        bands = self._to_device(cube)
        self._settle(bands, order, table)
        return self._run(bands, order, table, 1 if self.schedule == "band" else self._chunk_for(bands), state)

    def _chunk_for(self, bands: torch.Tensor) -> int:
        """BAND_CHUNK, capped so that a batched pass stays within a memory budget: its features are
        about 8 tensors of (chunk, 3F, h, w) floats, and with a 256-pixel tile and 16 bands that
        would be gigabytes. On CUDA the budget is a quarter of the free memory."""
        h, w = bands.shape[-2:]
        per_band = 8 * 3 * self.model.n_feats * h * w * 4 * self.scale
        if self.device.type == "cuda":
            budget = torch.cuda.mem_get_info(self.device)[0] // 4
        else:
            budget = CPU_BATCH_BYTES
        return max(1, min(self.band_chunk, budget // per_band))

    def _calibrate(self, bands: torch.Tensor, order: list[int], table: np.ndarray) -> str:
        """Pick the exact schedule by timing both on the first bands of the first tile, interleaved,
        CALIBRATION_REPEATS times: batched when its best time is at least BATCHED_MIN_SPEEDUP times
        faster than band by band's best, else band by band. Background load only adds time, so the
        best of a few runs is the stable estimate.

        On CPUs the band-by-band schedule usually wins or ties (its working set stays in cache), on
        GPUs the batched one; measuring on the real tile size settles it for this machine.
        """
        n = min(len(order), self._chunk_for(bands), 4)
        if n < 2:
            return "band"
        trial = (bands, order[:n], table[:n])  # the real tile size: the cache effect depends on it
        self._run(*trial, n, None)  # warm-up: allocations and kernel selection
        timings = {"band": [], "batched": []}
        for _ in range(CALIBRATION_REPEATS):
            for name, chunk in (("band", 1), ("batched", n)):
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                started = time.perf_counter()
                self._run(*trial, chunk, None)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                timings[name].append(time.perf_counter() - started)
        band, batched = min(timings["band"]), min(timings["batched"])
        choice = "batched" if band >= BATCHED_MIN_SPEEDUP * batched else "band"
        self.calibration = (f"schedule '{choice}' chosen by measurement on {n} bands of the first tile "
                            f"(best of {CALIBRATION_REPEATS}: band by band {band:.2f} s, batched {batched:.2f} s)")
        return choice

    def _run(self, bands: torch.Tensor, order: list[int], table: np.ndarray, chunk: int, state):
        targets = torch.as_tensor(order, device=self.device)
        near = torch.as_tensor(table[:, 0], device=self.device)
        far = torch.as_tensor(table[:, 1], device=self.device)
        h, w = bands.shape[-2:]
        output = outside_heap((len(order), h * self.scale, w * self.scale), np.float32)
        for start in range(0, len(order), chunk):
            stop = min(start + chunk, len(order))
            x = bands[targets[start:stop]].unsqueeze(1)
            g2 = bands[near[start:stop]].to(self.dtype).contiguous(memory_format=self.layout)
            g3 = bands[far[start:stop]].to(self.dtype).contiguous(memory_format=self.layout)
            features, head = (self.int8_features or self.model.features)(x.to(self.dtype), g2, g3)
            states = []
            for k in range(stop - start):  # the recurrence: S_i from f_i and S_{i-1}
                state = self.model.fuse(features[k:k + 1], state)
                states.append(state)
            z = torch.cat(states) + head
            y = self.model.reconstruct(z, self._bicubic(x))
            torch.from_numpy(output[start:stop]).copy_(y[:, 0])
        return output, state
