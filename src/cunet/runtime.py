"""How the network runs at inference: eager PyTorch in one of its modes, or ONNX Runtime.

The colouriser calls `encode` (conv1-4: the photo and its points) and `decode` (the global hint,
conv5-10, the regression head) separately, so that a new histogram or saturation re-runs only
`decode`. For a model with a distribution head `decode` also returns conv10's features, the head's
input: the colouriser runs the head fused with its decoding (`cunet.gamut.annealed_mean_of_head`),
which never holds the full per-pixel logits.

Measured on this project's 2-core CPU with the bundled model, 2 threads, p50 of a colour-point
change at working size 128 (and 256), spread and heads included (benchmarks/speed.py): channels-last
eager PyTorch 13.3 ms (39.3), ONNX Runtime 13.3 (43.9), torch.compile 13.6 (40.7), fp32 eager 15.9
(47.9), all within 1e-3 a*b* of fp32 eager; bf16 autocast 13.9 (38.3) but up to 2.4 a*b* units
off, so bf16 is offered and never chosen for the user. "auto" runs channels-last (level at 128,
fastest at 256 and at p95). With the first model and one thread ONNX Runtime was fastest, so the
choice is the machine's: measure yours with the benchmark and pass `--backend`.
"""

from __future__ import annotations

import copy
import io
import json
import warnings

import numpy as np
import torch
from torch import nn

from cunet.errors import CunetError
from cunet.model import CUNet, ConvUnit

BACKENDS = ("auto", "eager", "channels-last", "bf16", "compile", "onnx")
#: What "auto" runs: the fastest backend with exact outputs on this project's 2-core CPU (speed.json).
DEFAULT_BACKEND = "channels-last"
#: Backends whose output equals fp32 eager PyTorch within max |delta a*b*| < 1 (tested on real photos).
EXACT_BACKENDS = ("eager", "channels-last", "compile", "onnx")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise CunetError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def onnx_available() -> bool:
    """ONNX Runtime to run the graphs and the `onnx` package that PyTorch's exporter writes them with."""
    from importlib.util import find_spec

    return find_spec("onnx") is not None and find_spec("onnxruntime") is not None


def fold_batch_norms(model: CUNet) -> CUNet:
    """An inference copy of `model` in which each BatchNorm that directly follows a convolution (the
    paper's conv, BN, activation order) is folded into that convolution's weights and bias
    (`torch.nn.utils.fusion.fuse_conv_bn_eval`): the same function up to float rounding, without a
    separate pass over every activation map."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for unit in folded.modules():
        if isinstance(unit, ConvUnit) and isinstance(unit[1], nn.BatchNorm2d):
            unit[0] = fuse_conv_bn_eval(unit[0], unit[1], transpose=isinstance(unit[0], nn.ConvTranspose2d))
            unit[1] = nn.Identity()
    return folded


class TorchRuntime:
    """Eager PyTorch: fp32, channels-last memory, bf16 autocast, or torch.compile (inductor).

    Every mode but plain "eager" (the reference the others are checked against) runs a copy of the
    model with its BatchNorms folded into the convolutions (`fold_batch_norms`)."""

    def __init__(self, model: CUNet, mode: str = "eager") -> None:
        self.model = model.eval() if mode == "eager" else fold_batch_norms(model)
        self.mode = mode
        self.memory_format = torch.channels_last if mode == "channels-last" else torch.contiguous_format
        if mode == "channels-last":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.has_head = model.distribution is not None
        self._encode, self._decode = self.model.encode, self.model.decode_features
        if mode == "compile":
            self._encode, self._decode = torch.compile(self._encode), torch.compile(self._decode)
        parameter = next(self.model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.mode == "bf16")

    @torch.no_grad()
    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = inputs.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with self._autocast():
            return self._encode(inputs)

    @torch.no_grad()
    def decode(self, features: tuple[torch.Tensor, ...], global_hint: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if global_hint is not None:
            global_hint = global_hint.to(self.device, self.dtype)
        with self._autocast():
            ab, head_features = self._decode(*features, global_hint)
        return ab.float().cpu(), head_features.float().cpu() if self.has_head else None


class _Encoder(nn.Module):
    def __init__(self, model: CUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.encode(inputs)


class _Decoder(nn.Module):
    def __init__(self, model: CUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, c1, c2, c3, c4, global_hint):
        ab, head_features = self.model.decode_features(c1, c2, c3, c4, global_hint)
        return ab if self.model.distribution is None else (ab, head_features)


class _Whole(nn.Module):
    def __init__(self, model: CUNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs, global_hint):
        features = self.model.encode(inputs)
        ab, logits = self.model.decode(*features, global_hint)
        outputs = (ab,) + (() if logits is None else (logits,))
        if self.model.histogram is not None:
            outputs += (self.model.predict_histogram(features[3]),)
        return outputs if len(outputs) > 1 else ab


def _spatial(name: str) -> dict[int, str]:
    return {0: "batch", 2: f"{name}_height", 3: f"{name}_width"}


def export_onnx(module: nn.Module, example: tuple, input_names: list[str], output_names: list[str],
                target) -> None:
    """Write `module` as ONNX (opset 17) to a path or file object, batch and spatial sizes dynamic.

    The module is put in eval mode first: the exporter restores the mode it finds, and a wrapper
    left in training mode would switch the wrapped model's BatchNorm to batch statistics for good.
    """
    module.eval()
    axes = {name: (_spatial(name) if name != "global_hint" else {0: "batch"}) for name in input_names + output_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module, example, target, input_names=input_names, output_names=output_names,
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def _example(model: CUNet) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, model.config.input_channels, 16, 24), torch.zeros(1, max(1, model.global_hint_size))


def write_onnx(model: CUNet, info: dict, path) -> None:
    """The whole network as one ONNX graph (inputs, global_hint) -> ab[, logits][, histogram], for
    `cunet export --onnx`: to run the model outside Python. What a caller must know to feed it is
    stored in the graph's metadata (input channels, working size, scales, and the choices `info`
    holds: decoding, gain, automatic global hint), so that the graph can colour automatically as
    `cunet` does (with points, `Colorizer.hints_lead`'s mix of two decodes is the caller's)."""
    import onnx

    from cunet.color import AB_SCALE, L_CENTER, L_SCALE
    from cunet.io import write_atomic

    model = model.float().eval()
    outputs = (["ab"] + (["logits"] if model.distribution is not None else [])
               + (["histogram"] if model.histogram is not None else []))
    inputs, global_hint = _example(model)
    buffer = io.BytesIO()
    export_onnx(_Whole(model), (inputs, global_hint), ["inputs", "global_hint"], outputs, buffer)
    graph = onnx.load_from_string(buffer.getvalue())
    channels = "(L* - %g) / %g, a_hint / %g, b_hint / %g, mask" % (L_CENTER, L_SCALE, AB_SCALE, AB_SCALE)
    if model.config.propagated_hints:
        channels += ", spread a, spread b, reach (cunet.propagation.propagate_points)"
    facts = {
        "cunet.inputs": f"(B, {model.config.input_channels}, H, W), H and W multiples of 8: {channels}",
        "cunet.global_hint": (f"(B, {model.global_hint_size}): a*b* histogram over cunet.gamut.in_gamut_bins, "
                              "its flag, saturation, its flag" if model.global_hint_size else "unused"),
        "cunet.ab": (f"(B, 2, H, W) in [-1, 1]; multiply by {AB_SCALE:g} for a*, b* (then by cunet.decode's gain, "
                     "if any, as cunet does)"),
        "cunet.working_size": str(info.get("working_size", 128)),
        "cunet.model_config": json.dumps(model.config.to_dict()),
        "cunet.decode": json.dumps(info.get("decode", {"method": "regression"})),
        "cunet.automatic_global": json.dumps({"setting": info.get("automatic_global", "none"),
                                              "histogram_temperature": info.get("histogram_temperature", 1.0)}),
    }
    if model.histogram is not None:
        facts["cunet.histogram"] = (
            f"(B, {model.config.global_bins}): the photo's own a*b* histogram predicted from its L* (sums to 1; "
            "it does not read global_hint). With automatic_global 'predicted', automatic colouring runs "
            "twice: once with the point-free inputs and a zero global_hint for this, then with the global "
            "hint made of it (p^(1/T) renormalised, flag 1; saturation 0, flag 0)")
    for key, value in facts.items():
        graph.metadata_props.add(key=key, value=value)
    write_atomic(path, lambda handle: handle.write(graph.SerializeToString()))


class OnnxRuntime:
    """ONNX Runtime sessions for the encoder and decoder, exported in memory from the model."""

    def __init__(self, model: CUNet, threads: int | None = None) -> None:
        import onnxruntime

        model = model.float().eval()
        self.has_head = model.distribution is not None
        inputs, global_hint = _example(model)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No busy-waiting between runs: PyTorch's own threads work just before each run (hint maps,
        # resizing), and spinning ORT threads would take the cores from them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = []
        with torch.no_grad():
            features = model.encode(inputs)
        feature_names = ["c1", "c2", "c3", "c4"]
        outputs = ["ab"] + (["head_features"] if self.has_head else [])
        for module, example, names_in, names_out in (
            (_Encoder(model), (inputs,), ["inputs"], feature_names),
            (_Decoder(model), (*features, global_hint), feature_names + ["global_hint"], outputs),
        ):
            buffer = io.BytesIO()
            export_onnx(module, example, names_in, names_out, buffer)
            session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
            self.sessions.append((session, {item.name for item in session.get_inputs()}))
        self.global_hint_size = model.global_hint_size

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        session, _ = self.sessions[0]
        return tuple(session.run(None, {"inputs": inputs.float().numpy()}))

    def decode(self, features: tuple, global_hint: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        session, wanted = self.sessions[1]
        feeds = dict(zip(["c1", "c2", "c3", "c4"], features))
        if "global_hint" in wanted:
            if global_hint is None:
                global_hint = torch.zeros(features[3].shape[0], self.global_hint_size)
            feeds["global_hint"] = global_hint.float().numpy()
        outputs = [torch.from_numpy(np.asarray(value)) for value in session.run(None, feeds)]
        return outputs[0], outputs[1] if self.has_head else None


def make_runtime(model: CUNet, backend: str = "auto"):
    """A runtime for `backend` (see the module's notes); "auto" is `DEFAULT_BACKEND`."""
    check_backend(backend)
    if backend == "auto":
        backend = DEFAULT_BACKEND
    if backend == "onnx":
        if not onnx_available():
            raise CunetError("backend 'onnx' needs the onnxruntime and onnx packages (pip install onnxruntime onnx)")
        device = next(model.parameters()).device
        if device.type != "cpu":
            raise CunetError(f"backend 'onnx' runs on the CPU; this model is on {device}")
        try:
            return OnnxRuntime(model)
        except Exception as error:  # an exporter that cannot trace this PyTorch or model version
            raise CunetError(f"backend 'onnx': the model could not be exported ({error})") from None
    return TorchRuntime(model, backend)
