"""CoarSR inference engine: one low-resolution tile of many bands in, its super-resolution out.

Two exact schedules (docs/method.md#inference-schedules):
- "band": band after band through the whole network, the working set of one band; fastest on
  CPUs, where it stays in cache.
- "batched": the state-independent part (heads, ASFMs, aggregation) and the tail run for a chunk
  of bands at once; only the 1x1 feature-context fusion is sequential. Fastest on GPUs.
"auto" times both on the first tile and keeps the batched one only when it is clearly faster, since
it holds the feature maps of several bands at once.

Only reached after `require_torch()`.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import InputError
from ..options import PRECISIONS, SCHEDULES
from ..tools import resize
from .allocator import outside_heap
from .fused import PreparedCoarSR

CPU_BATCH_BYTES = 512 * 2**20
# The batched schedule must beat band by band by this factor to be chosen, since it holds several
# bands' feature maps. On this project's CPU the two run within a few percent, yet in some processes
# every band-by-band trial times 50-70% slow; a smaller factor picked 'batched' there, and its peak
# memory was 20% higher for no gain. On GPUs batching is expected to win by far more (unmeasured).
BATCHED_MIN_SPEEDUP = 1.5
CALIBRATION_REPEATS = 3


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


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' means bf16 on CUDA and on CPUs with fast bf16, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and device.type == "cpu" and not cpu_runs_bf16():
        raise InputError("PRECISION bf16 needs a CUDA GPU or a CPU with AVX-512 (or AVX-NE-CONVERT), which this "
                         "CPU lacks; choose fp32, or auto, which picks the fastest precision this machine runs.")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or cpu_has_fast_bf16() else "fp32"


def check_schedule(schedule: str) -> str:
    """The schedule name, checked; 'auto' is settled by measurement on the first tile (_calibrate)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return schedule


class CoarseEngine:
    """Runs a folded, eval-mode CoarSR over the bands of a tile.

    Args:
        model: CoarSR with weight norm folded.
        device: where to run.
        precision: 'auto', 'fp32' or 'bf16' (weights and features in bf16, the skip image in fp32).
        schedule: 'auto', 'band' or 'batched'.
        band_chunk: bands per batch in the batched schedule.
    """

    def __init__(self, model, device: torch.device, precision: str = "auto", schedule: str = "auto",
                 band_chunk: int = 16):
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.schedule = check_schedule(schedule)
        self.band_chunk = max(1, int(band_chunk))
        self.scale = model.config.scale
        self.calibration = ""
        # One layout and one precision end to end: channels-last suits oneDNN on CPUs and tensor
        # cores on GPUs. bf16 weights are cast once here, where autocast would cast them at every
        # call and promote back to fp32 at the first fp32 parameter an operation meets.
        self.layout = torch.channels_last
        self.dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self.model = PreparedCoarSR(model).to(device, self.dtype).eval().to(memory_format=self.layout)
        self.model.use_post_ops(device.type == "cpu")
        self._skip_matrices = {}

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
        """Settle SCHEDULE=auto on these bands now (arguments as `run`), rather than at the first
        `run_from`; a caller whose I/O threads would disturb the timings calls it before they start."""
        if self.schedule == "auto":
            self.schedule = self._calibrate(self._to_device(cube), order, table)

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
        if self.schedule == "auto":
            self.schedule = self._calibrate(bands, order, table)
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
            features, head = self.model.features(x.to(self.dtype), g2, g3)
            states = []
            for k in range(stop - start):  # the recurrence: S_i from f_i and S_{i-1}
                state = self.model.fuse(features[k:k + 1], state)
                states.append(state)
            z = torch.cat(states) + head
            y = self.model.reconstruct(z, self._bicubic(x))
            torch.from_numpy(output[start:stop]).copy_(y[:, 0])
        return output, state
