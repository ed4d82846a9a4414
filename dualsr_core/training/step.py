"""One optimisation step of CoarSR on a mini-batch, and the network it starts from.

One mini-batch holds patches of one scene. The network walks the scene's good bands in processing
order (bad bands are neither targets nor neighbours; the neighbour table comes from
`partition.neighbour_table(order)`), carrying the feature state from band to band, detached
(truncated back-propagation of length 1), and predicts each band as a residual over the PIL
bicubic upsampling of the LR band (`resize.skip_matrices`). The loss is L1, plus, with a
`spectral_weight` w > 0, w times a spectral-gradient term: the L1 between the predicted and the true
change from the previous band in processing order (ascending wavelength) to this one,
|(y_i - y_{i-1}) - (t_i - t_{i-1})|. The previous prediction enters detached, as the state does, so
that no gradient crosses bands; the first band of a run has no predecessor and adds nothing.

Two ways to step (`band_steps`):
* "per_band": one Adam step per band, as the reference code: zero the gradients, forward band i
  with the state, back-propagate its L1 loss, step, carry the detached state.
* "summed" (default): the state-independent part of the network runs batched over a chunk of
  bands, the state recursion runs band after band (detached), and the mean over bands of the
  per-band L1 losses is back-propagated chunk by chunk (gradients accumulate; chunking changes
  nothing since no gradient crosses bands), then one Adam step per mini-batch. It batches bands
  where that pays (GPUs); on a 2-core CPU both modes cost the same per mini-batch (measured).

Only reached after `require_torch()`.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from ..feedback import Feedback
from ..network import partition
from ..network.engine import cpu_has_fast_bf16
from ..network.model import CoarSR, CoarSRConfig, add_weight_norm
from ..network.weights import network_config, read
from ..tools import resize
from .config import TrainConfig


def initial_model(config: TrainConfig, feedback: Feedback) -> tuple[CoarSR, str]:
    """The weight-normed network training starts from, and how it was initialised (for the header).

    A fresh network of the configured size draws from torch's global generator (seed it first);
    with `resume_from` the file's network size rules."""
    if not config.resume_from:
        model = CoarSR(CoarSRConfig(scale=config.scale, n_feats=config.n_feats, n_blocks=config.n_blocks,
                                    n_asfm=config.n_asfm), weight_normed=True)
        if not config.zero_last:
            return model, "random (PyTorch default initialisation)"
        with torch.no_grad():
            model.last.parametrizations.weight.original0.zero_()  # g of w = g v / |v|
            model.last.bias.zero_()
        return model, "random (PyTorch default initialisation), last convolution zero: starts as bicubic"
    header, state = read(config.resume_from, expected_scale=config.scale)
    size = network_config(header)
    if (size.n_feats, size.n_blocks, size.n_asfm) != (config.n_feats, config.n_blocks, config.n_asfm):
        feedback.log(f"Fine-tuning keeps the network size of {config.resume_from}: {size.n_feats} features, "
                     f"{size.n_blocks} blocks, {size.n_asfm} ASFMs.")
    model = CoarSR(size, weight_normed=False)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return add_weight_norm(model), f"fine-tuned from {Path(config.resume_from).name} (sha256 {header['sha256'][:12]})"


class BandStepper(torch.nn.Module):
    """Runs a chunk of consecutive bands through a CoarSR; DistributedDataParallel wraps this module,
    so a step must go through its forward."""

    def __init__(self, model: CoarSR):
        super().__init__()
        self.model = model

    def forward(self, x, g2, g3, bic, state):
        """x (B,k,p,p), g2/g3 (B,k,3,p,p), bic (B,k,P,P), state (B,F,p,p) or None -> (B,k,P,P), state."""
        b, k, p, q = x.shape
        flat = lambda t: t.transpose(0, 1).reshape(k * b, -1, *t.shape[-2:])  # noqa: E731 band-major
        f, head = self.model.features(flat(x), flat(g2), flat(g3))
        f = f.view(k, b, *f.shape[1:])
        states = []
        for j in range(k):  # the recurrence, with the state detached between bands
            state = self.model.fuse(f[j], None if state is None else state.detach())
            states.append(state)
        y = self.model.reconstruct(torch.cat(states) + head, flat(bic))
        return y.view(k, b, *y.shape[-2:]).transpose(0, 1), state


def auto_chunk(device: torch.device, batch_size: int, n_feats: int, patch_size: int) -> int:
    """Bands per batched pass. CPU: feature maps of about 2 MiB, i.e. one band for realistic sizes
    (measured on 2 cores, F=32, batch 16, 32 px: 1 band 35.5 s per mini-batch of 218 bands,
    2 bands 38 s, 4 bands 50 s: bigger passes leave the caches); tiny test nets get several.
    CUDA: as many as about 30% of the free memory holds (about 80 saved feature maps per band)."""
    band_map = batch_size * n_feats * patch_size * patch_size * 4
    if device.type != "cuda":
        return max(1, (2 << 20) // band_map)
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(64, 0.3 * free // (80 * band_map))))


def amp_active(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training on `device`: CUDA, or a CPU with native bf16."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16())


def band_window(config: TrainConfig, iteration: int, bands: int) -> tuple[int, int] | None:
    """The run of consecutive bands that mini-batch `iteration` trains on, from (seed, iteration)
    alone; None for all bands."""
    if not config.band_window or config.band_window >= bands:
        return None
    start = int(np.random.default_rng((config.seed, 2, iteration)).integers(0, bands - config.band_window + 1))
    return start, start + config.band_window


class OptimisationStep:
    """One optimisation step on a mini-batch (see the module docstring for the two modes).

    Args:
        module: the BandStepper, or the DistributedDataParallel wrapping it.
        ddp: that DistributedDataParallel, or None in a single process.
        optimizer: steps the network's parameters.
        patch_size, scale: the LR patch side and the scale (for the skip matrices).
        device: where the batch goes.
        mode: 'summed' or 'per_band'.
        chunk: bands per pass in 'summed' mode (1 in 'per_band' mode).
        amp: bf16 autocast on CUDA, and on a CPU with native bf16 (AVX512-BF16 or AMX), where it made
            steps 1.6x (x2) to 2.0x (x4) faster than fp32 (AMD EPYC, AVX512-BF16, 1 thread); elsewhere
            bf16 is emulated and slower, so the step runs fp32 (see `amp_active`).
        spectral_weight: weight of the spectral-gradient term (0: L1 alone).
    """

    def __init__(self, module, ddp, optimizer, patch_size: int, scale: int, device: torch.device, mode: str,
                 chunk: int, amp: bool, spectral_weight: float = 0.0):
        self.module, self.ddp, self.optimizer = module, ddp, optimizer
        self.spectral_weight = float(spectral_weight)
        self.device, self.mode, self.amp = device, mode, amp and amp_active(device)
        self.chunk = 1 if mode == "per_band" else int(chunk)
        self.wy, self.wxt = (torch.from_numpy(m).to(device) for m in resize.skip_matrices(patch_size, patch_size,
                                                                                           scale))
        self.loss = torch.nn.L1Loss()

    def __call__(self, batch, window: tuple[int, int] | None = None) -> float:
        """Train on the bands of `batch.order[window[0]:window[1]]` (default all); returns the mean L1
        (without the spectral term, so that logs of runs with and without it compare)."""
        lr = torch.from_numpy(np.ascontiguousarray(batch.lr)).to(self.device)
        hr = torch.from_numpy(np.ascontiguousarray(batch.hr)).to(self.device)
        order = torch.as_tensor(batch.order, device=self.device)
        table = torch.as_tensor(partition.neighbour_table(batch.order), device=self.device)
        first, end = window or (0, len(batch.order))
        n = end - first
        state, total, before = None, 0.0, None
        if self.mode == "summed":
            self.optimizer.zero_grad(set_to_none=True)
        for start in range(first, end, self.chunk):
            stop = min(end, start + self.chunk)
            if self.mode == "per_band":
                self.optimizer.zero_grad(set_to_none=True)
            last = stop == end or self.mode == "per_band"
            sync = self.ddp.no_sync() if (self.ddp is not None and not last) else contextlib.nullcontext()
            with sync:
                x = lr[:, order[start:stop]]
                bicubic = self.wy @ x @ self.wxt  # the skip image in fp32, outside autocast (as in inference)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    y, state = self.module(x, lr[:, table[start:stop, 0]], lr[:, table[start:stop, 1]], bicubic,
                                           state)
                y, target = y.float(), hr[:, order[start:stop]]
                loss = self.loss(y, target)
                objective = loss
                if self.spectral_weight:
                    objective = loss + self.spectral_weight * spectral_gradient_l1(y, target, before)
                    before = y[:, -1:].detach(), target[:, -1:]
                weighted = objective * ((stop - start) / n) if self.mode == "summed" else objective
                weighted.backward()
            if self.mode == "per_band":
                self.optimizer.step()
            state = state.detach()
            total += loss.item() * (stop - start)
        if self.mode == "summed":
            self.optimizer.step()
        return total / n


def spectral_gradient_l1(y: torch.Tensor, target: torch.Tensor,
                         before: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Mean over the chunk's bands and pixels of |(y_i - y_{i-1}) - (t_i - t_{i-1})|.

    y, target: (B, k, P, P), k consecutive bands of the processing order; before: the (detached)
    prediction and the truth of the band preceding the chunk, or None at the start of a run, where
    the first band counts as its own predecessor (a zero term with a zero gradient), so the mean
    stays over k bands whatever the chunking."""
    previous_y, previous_t = before if before is not None else (y[:, :1].detach(), target[:, :1])
    change_y = y - torch.cat([previous_y, y[:, :-1].detach()], dim=1)
    change_t = target - torch.cat([previous_t, target[:, :-1]], dim=1)
    return (change_y - change_t).abs().mean()
