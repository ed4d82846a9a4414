"""CoarSR, the coarse stage of DualSR (docs/method.md#coarsr-network).

Q. Li, Y. Yuan, X. Jia, Q. Wang, "Dual-Stage Approach Toward Hyperspectral Image
Super-Resolution", IEEE Transactions on Image Processing 31, 2022 (doc. 9953047); reference code
https://github.com/qianngli/DualSR. This is the intended method: no BatchNorm in the residual
blocks, the per-band neighbour table of docs/method.md#band-partition, weight norm on every convolution in training.

Only reached after `require_torch()`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from ..options import SCALES


@dataclass(frozen=True)
class CoarSRConfig:
    """Size of a CoarSR network.

    Args:
        scale: upsampling factor, one of 2, 3, 4, 8.
        n_feats: feature channels F (paper: 64).
        n_blocks: residual blocks per branch (paper: 2).
        n_asfm: adjacent spectral fusion mechanisms in sequence (reference code: 2).
    """

    scale: int
    n_feats: int = 64
    n_blocks: int = 2
    n_asfm: int = 2

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale {self.scale} is not supported; supported scales: 2, 3, 4, 8")
        if min(self.n_feats, self.n_blocks, self.n_asfm) < 1:
            raise ValueError("n_feats, n_blocks and n_asfm must be at least 1")

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def receptive_radius(self) -> int:
        """Low-resolution pixels a border effect travels through the network (tiling overlap)."""
        branch = 2 * self.n_blocks
        asfm = 2 * branch + 2  # intra and inter branches, then the two spatial 3D kernels
        upsampler = {2: 1, 3: 1, 4: 2, 8: 3}[self.scale]
        return 1 + self.n_asfm * asfm + 1 + upsampler + 1  # head, ASFMs, aggregation, tail


def conv(in_ch: int, out_ch: int, kernel: int) -> nn.Conv2d:
    """2D convolution with 'same' zero padding and bias."""
    return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)


class ResidualBlock(nn.Module):
    """RB(x) = x + C3(ReLU(C3(x))) without BatchNorm (docs/method.md#residual-blocks; defect D2 avoided)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.conv1 = conv(n_feats, n_feats, 3)
        self.conv2 = conv(n_feats, n_feats, 3)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


class Branch(nn.Module):
    """Br(x) = x + RB(...RB(x)) with n_blocks residual blocks and an outer skip (docs/method.md#residual-blocks)."""

    def __init__(self, n_feats: int, n_blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualBlock(n_feats) for _ in range(n_blocks)))

    def forward(self, x):
        return x + self.blocks(x)


class SpectralUnit3D(nn.Module):
    """T = V + K3(ReLU(K1(V) + K2(V))) over the stacked groups (docs/method.md#3d-unit)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.spatial = nn.Conv3d(n_feats, n_feats, (1, 3, 3), padding=(0, 1, 1))
        self.spectral = nn.Conv3d(n_feats, n_feats, (3, 1, 1), padding=(1, 0, 0))
        self.out = nn.Conv3d(n_feats, n_feats, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, v):
        return v + self.out(torch.relu(self.spatial(v) + self.spectral(v)))


class ASFM(nn.Module):
    """Adjacent spectral fusion mechanism (docs/method.md#asfm): intra-group refinement, cross-group
    mixing weighted by gamma, a second refinement with a skip, then the 3D unit over the groups
    weighted by beta; the head features are added back to each group at the end."""

    def __init__(self, n_feats: int, n_blocks: int):
        super().__init__()
        self.intra = nn.ModuleList(Branch(n_feats, n_blocks) for _ in range(3))
        self.gamma = nn.Parameter(torch.ones(3, 3))
        self.mix = nn.ModuleList(conv(3 * n_feats, n_feats, 1) for _ in range(3))
        self.refine = nn.ModuleList(Branch(n_feats, n_blocks) for _ in range(3))
        self.beta = nn.Parameter(torch.ones(3))
        self.unit3d = SpectralUnit3D(n_feats)

    def forward(self, groups: list, heads: list) -> list:
        p = [branch(a) for branch, a in zip(self.intra, groups)]
        q = [mix(torch.cat([self.gamma[j, k] * p[k] for k in range(3)], dim=1))
             for j, mix in enumerate(self.mix)]
        r = [branch(qj) + aj for branch, qj, aj in zip(self.refine, q, groups)]
        t = self.unit3d(torch.stack([self.beta[k] * r[k] for k in range(3)], dim=2))
        return [t[:, :, k] + heads[k] for k in range(3)]


def upsampler(scale: int, n_feats: int) -> nn.Sequential:
    """Sub-pixel upsampler (docs/method.md#upsampler-and-bicubic-skip): x2, x3, or x2 stages for x4 and x8."""
    if scale == 3:
        return nn.Sequential(conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3))
    stages = {2: 1, 4: 2, 8: 3}[scale]
    layers = []
    for _ in range(stages):
        layers += [conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class CoarSR(nn.Module):
    """CoarSR: one band step of the coarse stage, applied band by band with a recurrent state.

    Shapes: x (B,1,h,w) the target band, g2 and g3 (B,3,h,w) the neighbour groups, bic
    (B,1,sh,sw) the bicubic upsampling of x, state (B,F,h,w) or None for the first band.
    Returns the super-resolved band (B,1,sh,sw) and the new state.

    The step is split where the recurrence is: `features` does not depend on the state, so it may
    run for many bands at once (docs/method.md#inference-schedules); only `fuse` is sequential.

    Args:
        config: network size and scale.
        weight_normed: wrap every convolution in weight norm (training); inference folds it.
    """

    def __init__(self, config: CoarSRConfig, weight_normed: bool = True):
        super().__init__()
        f = config.n_feats
        self.config = config
        self.head_target = conv(1, f, 3)                      # docs/method.md#heads, F0^1
        self.head_near = conv(3, f, 3)                        # F0^2 from G2
        self.head_far = conv(3, f, 3)                         # F0^3 from G3
        self.asfms = nn.ModuleList(ASFM(f, config.n_blocks) for _ in range(config.n_asfm))
        self.aggregate_mix = conv(3 * f, f, 1)                # docs/method.md#aggregation-and-recurrence
        self.aggregate = conv(f, f, 3)
        self.rho = nn.Parameter(torch.ones(2))                # FCF weights of f_i and S_{i-1}
        self.fcf = conv(2 * f, f, 1)
        self.upsample = upsampler(config.scale, f)            # docs/method.md#upsampler-and-bicubic-skip
        self.last = conv(f, 1, 3)
        if weight_normed:
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                    weight_norm(module, dim=0)

    def features(self, x, g2, g3):
        """Heads, ASFMs and aggregation: f_i and F0^1 (state independent)."""
        heads = [self.head_target(x), self.head_near(g2), self.head_far(g3)]
        groups = heads
        for asfm in self.asfms:
            groups = asfm(groups, heads)
        f = self.aggregate(self.aggregate_mix(torch.cat(groups, dim=1))) + heads[0]
        return f, heads[0]

    def fuse(self, f, state):
        """Feature-context fusion: S_i from f_i and S_{i-1}; S_0 = f_0."""
        if state is None:
            return f
        return self.fcf(torch.cat([self.rho[0] * f, self.rho[1] * state], dim=1))

    def reconstruct(self, z, bic):
        """Upsampler and last convolution, plus the bicubic skip of the target band."""
        return self.last(self.upsample(z)) + bic

    def forward(self, x, g2, g3, bic, state=None):
        f, head = self.features(x, g2, g3)
        state = self.fuse(f, state)
        return self.reconstruct(state + head, bic), state


def fold_weight_norm(model: CoarSR) -> CoarSR:
    """Replace every weight-norm parametrisation by its plain weight, in place (inference)."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


def add_weight_norm(model: CoarSR) -> CoarSR:
    """Wrap every plain convolution in weight norm, in place (fine-tuning from folded weights).

    weight_norm initialises g to the per-filter norm of the current weight, so the network's
    output is unchanged."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)) and not parametrize.is_parametrized(module):
            weight_norm(module, dim=0)
    return model
