"""Inference form of CoarSR, prepared once at load time (same function, fewer and larger kernels).

The three groups of an ASFM are kept stacked along channels, (B, 3F, h, w), from the heads to the
aggregation, so that (docs/method.md#inference-schedules, issue "inference at the hardware's limit"):
- the three per-group branches run as one grouped convolution (groups = 3) instead of three;
- the cross-group mixing, with gamma folded into its weights, is one 1x1 convolution 3F -> 3F, and
  the concatenation disappears;
- the 3D unit becomes 2D: the spatial (1,3,3) kernels are grouped 3x3 convolutions with the kernel
  repeated per group, and the spectral (3,1,1) kernel with its zero padding over the three groups
  is a 1x1 convolution with a block-tridiagonal weight; beta is folded into both;
- the three heads are one convolution over the 7 stacked input channels (block weights);
- rho is folded into the feature-context fusion, and the aggregation's 1x1 reads the stack as is;
- on CPUs the ReLUs and residual additions that follow a convolution run inside it (oneDNN
  post-ops) where oneDNN allows it (not after the grouped convolutions' additions): these
  element-wise passes are bound by memory bandwidth, a third of the time on a default tile.
Weight norm is folded before (model.fold_weight_norm). Everything is exact up to the order of
floating-point sums; a test compares it with CoarSR.

Only reached after `require_torch()`.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .model import CoarSR


def _pointwise_convolution():
    """oneDNN's convolution with post-ops (what torch.compile emits on CPUs), or None where this
    torch build lacks it; then the engine runs the same arithmetic as separate operations."""
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_POINTWISE = _pointwise_convolution()


class FusedConv2d(nn.Conv2d):
    """Conv2d followed by an optional addition and ReLU: relu(conv(x) + add).

    With `fused` set (CPU, inference) both run inside the convolution's kernel; otherwise as
    separate operations.
    """

    fused = False

    def forward(self, x, add=None, relu=False):
        if self.fused:
            geometry = (self.padding, self.stride, self.dilation, self.groups)
            if add is None:
                return _POINTWISE(x, self.weight, self.bias, *geometry, "relu" if relu else "none", [], "")
            return _POINTWISE(x, add, self.weight, self.bias, *geometry, "add", None,
                              "relu" if relu else None, [], "")
        y = super().forward(x)
        if add is not None:
            y = y + add
        return torch.relu(y) if relu else y


def _conv(weight: torch.Tensor, bias: torch.Tensor, groups: int = 1) -> nn.Conv2d:
    out_ch, in_per_group, k, _ = weight.shape
    conv = FusedConv2d(in_per_group * groups, out_ch, k, padding=k // 2, groups=groups)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def _grouped(convs: list[nn.Conv2d]) -> nn.Conv2d:
    """Three convolutions of the three groups as one grouped convolution."""
    return _conv(torch.cat([c.weight for c in convs]), torch.cat([c.bias for c in convs]), groups=3)


class _StackedBranch(nn.Module):
    """Three Branch modules (one per group) as grouped convolutions over the stacked groups."""

    def __init__(self, branches):
        super().__init__()
        blocks = zip(*(b.blocks for b in branches))
        self.convs = nn.ModuleList()
        for rbs in blocks:
            self.convs.append(_grouped([rb.conv1 for rb in rbs]))
            self.convs.append(_grouped([rb.conv2 for rb in rbs]))

    def forward(self, x, extra=None):
        """x + RB(...RB(x)), plus `extra` when given; the outer skip (and `extra`) are added in the
        last block's convolution: x + (y + C(h)) = C(h) + (y + x)."""
        y = x
        last = len(self.convs) - 2
        for k in range(0, len(self.convs), 2):
            h = self.convs[k](y, relu=True)
            if k == last:
                y = y + x
                if extra is not None:
                    y += extra
            y = self.convs[k + 1](h, add=y)
        return y


class _StackedASFM(nn.Module):
    def __init__(self, asfm, n_feats: int):
        super().__init__()
        f = n_feats
        self.intra = _StackedBranch(asfm.intra)
        gamma = asfm.gamma.detach()
        weight = torch.cat([torch.cat([asfm.mix[j].weight[:, k * f:(k + 1) * f] * gamma[j, k] for k in range(3)], 1)
                            for j in range(3)])
        self.mix = _conv(weight, torch.cat([m.bias for m in asfm.mix]))
        self.refine = _StackedBranch(asfm.refine)
        beta = asfm.beta.detach()
        self.register_buffer("beta", beta.repeat_interleave(f).view(1, 3 * f, 1, 1))
        # The 3D unit reads V = beta * R: beta scales the input channels of its two first kernels.
        unit = asfm.unit3d
        spatial = unit.spatial.weight[:, :, 0]                      # (F, F, 3, 3)
        spatial = torch.cat([spatial * beta[k] for k in range(3)])
        self.spatial = _conv(spatial, unit.spatial.bias.repeat(3), groups=3)
        depth = unit.spectral.weight[:, :, :, 0, 0]                  # (F, F, 3): taps for slices k-1, k, k+1
        tridiagonal = torch.zeros(3 * f, 3 * f, 1, 1)
        for k in range(3):
            for tap, source in enumerate((k - 1, k, k + 1)):
                if 0 <= source < 3:
                    tridiagonal[k * f:(k + 1) * f, source * f:(source + 1) * f, 0, 0] = depth[:, :, tap] * beta[source]
        self.spectral = _conv(tridiagonal, unit.spectral.bias.repeat(3))
        out = unit.out.weight[:, :, 0]
        self.out = _conv(out.repeat(3, 1, 1, 1), unit.out.bias.repeat(3), groups=3)

    def forward(self, groups, heads):
        r = self.refine(self.mix(self.intra(groups)), extra=groups)  # nested: each map freed once read
        u = self.spectral(r, add=self.spatial(r), relu=True)        # ReLU(K1(V) + K2(V))
        return self.out(u, add=torch.addcmul(heads, r, self.beta))  # V + K3(.) + heads


class PreparedCoarSR(nn.Module):
    """CoarSR with the same interface for inference (features / fuse / reconstruct), prepared from a
    folded CoarSR. Inputs of `features` are x (B,1,h,w), g2 and g3 (B,3,h,w)."""

    def __init__(self, model: CoarSR):
        super().__init__()
        f = model.config.n_feats
        self.config = model.config
        with torch.no_grad():
            heads = torch.zeros(3 * f, 7, 3, 3)
            heads[:f, 0:1] = model.head_target.weight
            heads[f:2 * f, 1:4] = model.head_near.weight
            heads[2 * f:, 4:7] = model.head_far.weight
            self.heads = _conv(heads, torch.cat([model.head_target.bias, model.head_near.bias, model.head_far.bias]))
            self.asfms = nn.ModuleList(_StackedASFM(a, f) for a in model.asfms)
            self.aggregate_mix = _conv(model.aggregate_mix.weight, model.aggregate_mix.bias)
            self.aggregate = _conv(model.aggregate.weight, model.aggregate.bias)
            rho = model.rho.detach()
            fcf = model.fcf.weight.clone()
            fcf[:, :f] *= rho[0]
            fcf[:, f:] *= rho[1]
            self.fcf = _conv(fcf, model.fcf.bias)
        # Copies: the caller's model is left as it was (layout, mode).
        self.upsample = copy.deepcopy(model.upsample)
        self.last = copy.deepcopy(model.last)
        self.n_feats = f

    def use_post_ops(self, enabled: bool) -> bool:
        """Run the ReLUs and additions inside the convolutions (oneDNN, CPU only, inference only).
        Returns whether they now do: not where this torch build lacks the fused convolution."""
        enabled = enabled and _POINTWISE is not None
        for module in self.modules():
            if isinstance(module, FusedConv2d):
                module.fused = enabled
        return enabled

    def features(self, x, g2, g3):
        heads = self.heads(torch.cat([x, g2, g3], dim=1))
        groups = heads
        for asfm in self.asfms:
            groups = asfm(groups, heads)
        head = heads[:, :self.n_feats].contiguous(memory_format=torch.channels_last)
        return self.aggregate(self.aggregate_mix(groups), add=head), head

    def fuse(self, f, state):
        if state is None:
            return f
        return self.fcf(torch.cat([f, state], dim=1))

    def reconstruct(self, z, bic):
        """The residual in the working precision, plus the skip image in fp32: the output keeps fp32
        resolution in bf16."""
        return self.last(self.upsample(z)).float() + bic
