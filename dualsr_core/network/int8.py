"""int8 inference of CoarSR on CPUs, through OpenVINO (an optional dependency).

The state-independent part (`features`: heads, ASFMs, aggregation), nine tenths of the arithmetic,
runs in int8: every convolution there reads its input quantized per tensor (unsigned, with a zero
point, ranges calibrated on real spectra) and its weights quantized per output channel (signed,
symmetric). The convolutions listed in FP32_LAYERS stay in fp32 because int8 cost accuracy there
(measured per layer on the validation windows; docs/method.md#int8-inference). The recurrence and the
reconstruction stay in torch fp32, as the skip image does.

The quantization is written in torch (fake-quantize operations around each convolution) and
OpenVINO's low-precision transformations turn it into int8 kernels when the CPU plugin compiles the
converted module. Why OpenVINO and not ONNX Runtime or torch.ao: README "int8".

Only reached after `require_torch()`.
"""
from __future__ import annotations

import copy
import importlib.util
import sys
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from .fused import FusedConv2d, PreparedCoarSR

OPENVINO_VERSION = "2026.4.1"  # the version measured; the installer and README name it
INSTALL_HINT = (f"in QGIS use Plugins > DualSR > Install PyTorch... and tick OpenVINO, or run "
                f"'python3 -m pip install openvino=={OPENVINO_VERSION}' with the Python that runs QGIS")
# Convolutions kept in fp32, by module path prefix in PreparedCoarSR. The heads read reflectance
# itself: 256 levels over a scene's range are coarser than the detail the network adds.
FP32_LAYERS = ("heads",)
ACTIVATION_LEVELS = 256  # u8
# s8 weights in 7 bits: AVX2 without VNNI sums pairs of u8 x s8 products in int16, which 8-bit
# weights can saturate (measured on the features of the bundled x2 weights, oneDNN held to AVX2:
# largest error 0.92 with 8-bit weights, 0.25 with 7-bit; with VNNI 0.19 and 0.25).
WEIGHT_LIMIT = 63
# The weights' fake quantization still spans the whole s8 range (255 levels, of which the 7-bit
# weights use the middle 127): OpenVINO makes int8 convolutions only of 255- or 256-level weights.
WEIGHT_QUANT_LIMIT = 127
CALIBRATION_BANDS = 8    # bands of the first tile, spread over the spectrum, whose activations set the ranges
CALIBRATION_SIZE = 128   # of the centre of the first tile, at most this many pixels a side

def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


class _QuantizedConv(nn.Module):
    """A convolution whose input and weights pass through fake quantization (same interface as
    FusedConv2d: relu(conv(x) + add))."""

    def __init__(self, conv: nn.Conv2d, low: float, high: float):
        super().__init__()
        self.conv = conv
        low, high = min(low, 0.0), max(high, 0.0)  # zero must be exact (zero padding)
        self.scale = max(high - low, 1e-8) / (ACTIVATION_LEVELS - 1)
        self.zero_point = round(-low / self.scale)
        weight = conv.weight.detach()
        self.register_buffer("weight_scale", (weight.abs().amax(dim=(1, 2, 3)) / WEIGHT_LIMIT).clamp(min=1e-12))
        self.register_buffer("weight_zero", torch.zeros(weight.shape[0], dtype=torch.int32))

    def forward(self, x, add=None, relu=False):
        x = torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0, ACTIVATION_LEVELS - 1)
        w = torch.fake_quantize_per_channel_affine(self.conv.weight, self.weight_scale, self.weight_zero, 0,
                                                   -WEIGHT_QUANT_LIMIT, WEIGHT_QUANT_LIMIT)
        c = self.conv
        y = functional.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)
        if add is not None:
            y = y + add
        return torch.relu(y) if relu else y


class _Features(nn.Module):
    def __init__(self, model: PreparedCoarSR):
        super().__init__()
        self.model = model

    def forward(self, x, g2, g3):
        return self.model.features(x, g2, g3)


def input_ranges(model: PreparedCoarSR, x, g2, g3) -> dict[str, tuple[float, float]]:
    """Smallest and largest input value of every convolution of `features` on these bands."""
    ranges = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module, inputs, _output):
        values = inputs[0]
        low, high = float(values.min()), float(values.max())
        old_low, old_high = ranges.get(names[module], (low, high))
        ranges[names[module]] = (min(low, old_low), max(high, old_high))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, FusedConv2d)]
    try:
        with torch.inference_mode():
            for k in range(x.shape[0]):  # band by band, as inference runs
                model.features(x[k:k + 1], g2[k:k + 1], g3[k:k + 1])
    finally:
        for hook in hooks:
            hook.remove()
    return ranges


def fake_quantized(model: PreparedCoarSR, ranges: dict, fp32_layers=FP32_LAYERS) -> PreparedCoarSR:
    """A copy of `model` whose calibrated convolutions (those in `ranges`, not in `fp32_layers`)
    quantize their input and weights."""
    quantized = copy.deepcopy(model)
    quantized.use_post_ops(False)  # plain operations: what OpenVINO converts
    for name, module in list(quantized.named_modules()):
        if name in ranges and not name.startswith(tuple(fp32_layers)):
            parent_name, _, child = name.rpartition(".")
            parent = quantized.get_submodule(parent_name) if parent_name else quantized
            setattr(parent, child, _QuantizedConv(module, *ranges[name]))
    return quantized


def import_openvino():
    """The openvino module, imported so that it sends no usage telemetry unless the user said yes.

    Importing openvino (2026.4) sends an event to Intel from a forked process, and its consent check
    counts a user who never answered (no ~/intel/openvino_telemetry file) as consenting. While the
    first import runs, no answer counts as no; an explicit opt-in or opt-out still holds, and the
    declined telemetry object stays for the rest of the process (it is a singleton)."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # openvino without its telemetry package
        return importlib.import_module("openvino")
    check = OptInChecker.check

    def unanswered_is_no(self, *args, **kwargs):
        result = check(self, *args, **kwargs)
        return ConsentCheckResult.DECLINED if result == ConsentCheckResult.NO_FILE else result

    OptInChecker.check = unanswered_is_no
    try:
        return importlib.import_module("openvino")
    finally:
        OptInChecker.check = check


def compile_for_cpu(module: nn.Module, example: tuple, threads: int):
    """`module` as an OpenVINO model compiled for the CPU, for inputs of any batch and spatial size
    (channels as in `example`); fake-quantize operations become int8 kernels."""
    openvino = import_openvino()
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder
    from openvino.passes import ConstantFolding, Manager

    # Traced here without torch's trace check, which needs a newer sympy than QGIS ships (Debian 12:
    # 1.11); TorchScript's deprecation and tracer warnings would reach the user's log on every run.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, example, check_trace=False)
        # OpenVINO's PyTorch front end, not openvino.convert_model: that one sends usage telemetry to
        # Intel from a forked process unless the user opted out.
        decoder = TorchScriptPythonDecoder(traced)
        frontend = FrontEndManager().load_by_framework("pytorch")
        converted = frontend.convert(frontend.load(decoder, False))
    converted.reshape({port: openvino.PartialShape([-1, tensor.shape[1], -1, -1])
                       for port, tensor in zip(converted.inputs, example)})
    # The front end computes each FakeQuantize's range from the traced scale and zero point (Convert,
    # Subtract, Multiply, Minimum, Maximum). The CPU plugin runs its low-precision transformations only
    # on a model with a FakeQuantize whose ranges are constants, and folds them only later: unfolded,
    # every convolution ran in fp32 behind fake-quantize operations.
    folding = Manager()
    folding.register_pass(ConstantFolding())
    folding.run_passes(converted)
    # f32 inference hint: on CPUs with bf16 OpenVINO would otherwise run the fp32 layers in bf16
    return openvino.Core().compile_model(converted, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                            "INFERENCE_PRECISION_HINT": "f32"})


class Int8Features:
    """CoarSR's `features` in int8 through OpenVINO, calibrated on the first bands it is given.

    Args:
        model: the fp32 PreparedCoarSR (left unchanged).
        threads: OpenVINO inference threads (the torch thread count).
    """

    def __init__(self, model: PreparedCoarSR, threads: int, fp32_layers=FP32_LAYERS):
        self.model = model
        self.threads = threads
        self.fp32_layers = tuple(fp32_layers)
        self.ranges = {}
        self.compiled = None

    @property
    def calibrated(self) -> bool:
        return self.compiled is not None

    def calibrate(self, x, g2, g3):
        """Set the activation ranges from these bands (B,1,h,w), (B,3,h,w), (B,3,h,w) and compile."""
        self.ranges = input_ranges(self.model, x, g2, g3)
        quantized = fake_quantized(self.model, self.ranges, self.fp32_layers).eval()
        self.compiled = compile_for_cpu(_Features(quantized), (x[:1], g2[:1], g3[:1]), self.threads)
        self._request = self.compiled.create_infer_request()

    def __call__(self, x, g2, g3):
        result = self._request.infer([np.ascontiguousarray(t.float().numpy()) for t in (x, g2, g3)],
                                     share_inputs=True)
        return torch.from_numpy(np.array(result[0])), torch.from_numpy(np.array(result[1]))
