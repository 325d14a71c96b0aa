"""Checkpoints and shipped weights as safetensors (no pickle): tensors plus JSON metadata.

A training checkpoint holds the model's config, its weights, the optimizer state and the step, so
a run resumes exactly where it stopped. A weights file holds the config and (fp16) weights only.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from cunet.errors import CunetError
from cunet.fields import Fields, parse_json_object, shorten
from cunet.io import existing_file, write_atomic
from cunet.model import CUNet, CUNetConfig

FORMAT = "cunet"


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    """Tensors + JSON metadata -> a safetensors file, atomically (models, checkpoints, galleries)."""
    payload = save_bytes(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
        metadata={"format": FORMAT, "cunet": json.dumps(metadata)},
    )
    write_atomic(path, lambda handle: handle.write(payload))


#: safetensors dtype names by kind, as the file's header gives them (no tensor is read to know them).
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
INTEGER_DTYPES = ("I64", "I32", "I16", "I8", "U8")
#: Most tensors a cunet file holds (a model has ~100, a checkpoint 3x that, a gallery 6).
MAX_TENSORS = 4096
#: Largest magnitude of a model weight or statistic, and of a gallery's numbers: trained CU-nets stay
#: within a few thousand (conv7's BatchNorm variances, ~2,300 at most); far beyond, sums overflow.
MAX_WEIGHT = 1e6


class TensorFile:
    """An open cunet safetensors file: its checked metadata and each tensor's shape and dtype, read
    from the header; tensors are read one by one (`tensor`), each refused if it holds NaN or Inf."""

    def __init__(self, path: Path, handle, metadata: dict) -> None:
        self.path, self._handle, self.metadata = path, handle, metadata
        names = list(handle.keys())
        if len(names) > MAX_TENSORS:
            raise CunetError(f"{path}: {len(names):,} tensors; a cunet file holds at most {MAX_TENSORS:,}")
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        for name in names:
            view = handle.get_slice(name)
            self.shapes[name], self.dtypes[name] = tuple(view.get_shape()), view.get_dtype()

    def fields(self) -> Fields:
        return Fields(self.metadata, str(self.path))

    def check(self, name: str, shape: tuple[int | None, ...], dtypes: tuple[str, ...]) -> tuple[int, ...]:
        """The tensor `name` exists with this shape (None: any length there) and one of these dtypes."""
        if name not in self.shapes:
            raise CunetError(f"{self.path}: tensor {shorten(name)} is missing")
        found = self.shapes[name]
        if len(found) != len(shape) or any(want is not None and want != got for want, got in zip(shape, found)):
            wanted = "(" + ", ".join("N" if want is None else str(want) for want in shape) + ")"
            raise CunetError(f"{self.path}: tensor {shorten(name)} has shape {found}, expected {wanted}")
        if self.dtypes[name] not in dtypes:
            raise CunetError(f"{self.path}: tensor {shorten(name)} has dtype {self.dtypes[name]}, expected "
                             f"{' or '.join(dtypes)}")
        return found

    def float_tensor(self, name: str) -> torch.Tensor:
        """The tensor as float32, each value within ±MAX_WEIGHT once converted (1e300 stored as F64 is
        finite in the file and infinite in use)."""
        value = self.tensor(name).float()
        if not bool((value.abs() <= MAX_WEIGHT).all()):  # NaN fails this too
            raise CunetError(f"{self.path}: tensor {shorten(name)} holds values beyond ±{MAX_WEIGHT:g}")
        return value

    def tensor(self, name: str) -> torch.Tensor:
        try:
            value = self._handle.get_tensor(name)
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise CunetError(f"{self.path}: tensor {shorten(name)} cannot be read ({error})") from None
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CunetError(f"{self.path}: tensor {shorten(name)} holds NaN or infinite values")
        return value


@contextmanager
def open_tensors(path: str | os.PathLike, what: str = "model file") -> Iterator[TensorFile]:
    """Open a file written by `write_tensors`, its metadata parsed defensively; anything else is a CunetError."""
    path = existing_file(path, what)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            if header.get("format") != FORMAT or "cunet" not in header:
                raise CunetError(f"{path}: not a cunet {what} (no cunet metadata)")
            yield TensorFile(path, handle, parse_json_object(header["cunet"], f"{path}: metadata"))
    except (SafetensorError, OSError) as error:
        raise CunetError(f"{path}: not a cunet safetensors file ({error})") from None


def read_tensors(path: Path, what: str = "model file") -> tuple[dict[str, torch.Tensor], dict]:
    """A file written by `write_tensors` -> (tensors, metadata), every tensor finite; anything else is a CunetError."""
    with open_tensors(path, what) as file:
        return {name: file.tensor(name) for name in file.shapes}, file.metadata


def _model_of(file: TensorFile, prefix: str) -> CUNet:
    """The model a weights file or checkpoint describes: its config checked before any layer is made,
    then every tensor's name, shape and dtype against that config, then the values (finite)."""
    try:
        config = CUNetConfig.from_dict(file.fields().section("model_config", required=True).values)
    except (TypeError, ValueError) as error:
        if isinstance(error, CunetError):
            raise
        raise CunetError(f"{file.path}: model_config: {error}") from None
    with torch.device("meta"):  # the config's shapes without allocating them: a file is checked before it costs memory
        expected = CUNet(config).state_dict()
    given = {name[len(prefix):] for name in file.shapes if name.startswith(prefix)}
    for name in sorted(set(expected) - given)[:1]:
        raise CunetError(f"{file.path}: tensor {prefix}{name} is missing (the weights do not match the model config)")
    for name in sorted(given - set(expected))[:1]:
        raise CunetError(f"{file.path}: tensor {shorten(prefix + name)} does not belong to a model of this config")
    for name, tensor in expected.items():
        file.check(prefix + name, tuple(tensor.shape), FLOAT_DTYPES if tensor.is_floating_point() else INTEGER_DTYPES)
    model = CUNet(config)
    state = {}
    for name, tensor in model.state_dict().items():
        value = file.float_tensor(prefix + name) if tensor.is_floating_point() else file.tensor(prefix + name)
        value = value.to(tensor.dtype)
        if name.endswith("running_var") and not bool((value >= 0).all()):
            raise CunetError(f"{file.path}: tensor {shorten(prefix + name)} holds negative variances")
        state[name] = value
    model.load_state_dict(state)
    return model


def _checked_metadata(file: TensorFile) -> dict:
    """The metadata of a weights file or checkpoint with the fields cunet reads checked: `kind`, and
    `step`, `param_groups` and `extra` of a checkpoint, `info` of a weights file (`stored_info`)."""
    fields = file.fields()
    kind = fields.text("kind", ("weights", "checkpoint"))
    metadata = dict(file.metadata)
    if kind == "checkpoint":
        metadata["step"] = fields.integer("step", 0, 10**12)
        extra = fields.section("extra")
        metadata["extra"] = dict(extra.values)
        if extra.has("train_seconds") and extra.values["train_seconds"] is not None:
            extra.number("train_seconds", 0)
        extra.section("train_config")
        groups = fields.values.get("param_groups")
        if not isinstance(groups, list) or not all(isinstance(group, dict) for group in groups):
            raise fields.fail("param_groups", "a list of objects", groups)
    else:
        metadata["info"] = dict(fields.section("info").values)
    return metadata


#: The largest chroma gain a model file or a user may ask for (`cunet.colorizer.check_decoding`).
MAX_CHROMA_GAIN = 3.0


def stored_info(path: str | os.PathLike, metadata: dict) -> dict:
    """How a model file says it should be run, each field checked: working size, decoding, automatic
    global hint (a checkpoint stores only its training crop; the rest takes the defaults)."""
    fields = Fields(metadata, str(path))
    if metadata.get("kind") == "checkpoint":
        crop = fields.section("extra").section("train_config").integer("crop", 16, 1024, default=128)
        return {**run_settings(Fields({}, str(path))), "working_size": crop}
    info = fields.section("info")
    return {**info.values, **run_settings(info)}


def run_settings(info: Fields) -> dict:
    """A weights file's `info` -> working size, decoding and automatic global hint, defaults filled in."""
    decode = info.section("decode")
    return {"working_size": info.integer("working_size", 16, 1024, default=128),
            "decode": {"method": decode.text("method", default="regression"),
                       "temperature": decode.number("temperature", 0, 1, default=0.38),
                       "blend": decode.number("blend", 0, 1, default=0.5),
                       "gain": decode.number("gain", 0, MAX_CHROMA_GAIN, default=1.0)},
            "automatic_global": info.text("automatic_global", default="none"),
            "histogram_temperature": info.number("histogram_temperature", 0, 1, default=1.0)}


def save_checkpoint(
    path: Path, model: CUNet, optimizer: torch.optim.Optimizer, step: int, extra: dict | None = None
) -> None:
    """Model + optimizer + step (+ any JSON-able `extra`, e.g. the training config), atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    for index, state in optimizer_state["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    metadata = {
        "kind": "checkpoint",
        "model_config": model.config.to_dict(),
        "step": step,
        "param_groups": optimizer_state["param_groups"],
        "extra": extra or {},
    }
    write_tensors(path, tensors, metadata)


def load_checkpoint(path: Path, model: CUNet, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model and optimizer in place from a checkpoint; returns its metadata (with `step`)."""
    with open_tensors(path) as file:
        metadata = _checked_metadata(file)
        if metadata["kind"] != "checkpoint":
            raise CunetError(f"{path}: a weights file, not a training checkpoint")
        stored = _model_of(file, "model.")
        if stored.config != model.config:  # compared as configs: a field added since takes its default
            raise CunetError(f"{path}: checkpoint model config {metadata['model_config']} differs from this run's")
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        state: dict[int, dict] = {}
        for key in file.shapes:
            if key.startswith("optim."):
                _, index, name = (key.split(".", 2) + ["", ""])[:3]
                if not index.isdigit() or int(index) >= len(parameters) or not name:
                    raise CunetError(f"{path}: tensor {shorten(key)} is not an optimizer state of this model")
                shape = () if name == "step" else tuple(parameters[int(index)].shape)
                file.check(key, shape, FLOAT_DTYPES)
                state.setdefault(int(index), {})[name] = file.tensor(key)
        _check_param_groups(path, metadata["param_groups"], optimizer.state_dict()["param_groups"])
    model.load_state_dict(stored.state_dict())
    try:
        optimizer.load_state_dict({"state": state, "param_groups": metadata["param_groups"]})
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CunetError(f"{path}: optimizer state does not fit this run ({str(error).splitlines()[0]})") from None
    return metadata


def _check_param_groups(path: Path, stored: list, current: list[dict]) -> None:
    """A checkpoint's optimizer groups have this run's shape: the same keys, the same number of
    parameters, and each setting of the type this run's optimizer keeps there (numbers finite)."""
    if len(stored) != len(current):
        raise CunetError(f"{path}: param_groups has {len(stored)} groups; this run's optimizer has {len(current)}")
    for index, (group, own) in enumerate(zip(stored, current)):
        fields = Fields(group, str(path), f"param_groups[{index}].")
        for key, value in own.items():
            if key == "params":
                if not isinstance(group.get("params"), list) or len(group["params"]) != len(value):
                    raise fields.fail("params", f"a list of {len(value)} parameter indices", group.get("params"))
            elif isinstance(value, bool) or value is None:
                if key in group and group[key] is not None and not isinstance(group[key], bool):
                    raise fields.fail(key, "true, false or null", group[key])
            elif isinstance(value, (int, float)):
                fields.number(key)
            elif isinstance(value, (tuple, list)):
                items = group.get(key)
                if not isinstance(items, list) or len(items) != len(value) or not all(
                        isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)
                        for item in items):
                    raise fields.fail(key, f"a list of {len(value)} finite numbers", items)


def save_weights(path: Path, model: CUNet, info: dict, half: bool = True) -> None:
    """The shippable form: config + weights (fp16 by default; BN counters stay integers) + `info`."""
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()
    }
    write_tensors(Path(path), tensors, {"kind": "weights", "model_config": model.config.to_dict(), "info": info})


def load_model(path: Path) -> tuple[CUNet, dict]:
    """A model in eval mode from a weights file or a training checkpoint, plus the file's metadata
    (its `kind`, and `info` or `step`/`extra` checked: see `_checked_metadata`)."""
    with open_tensors(path) as file:
        metadata = _checked_metadata(file)
        model = _model_of(file, "model." if metadata["kind"] == "checkpoint" else "")
    return model.eval(), metadata
