"""Checkpoints and shipped weights as safetensors (no pickle): tensors plus JSON metadata.

A training checkpoint holds the model's config, its weights, the optimizer state and the step, so
a run resumes exactly where it stopped. A weights file holds the config and (fp16) weights only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from cunet.errors import CunetError
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


def read_tensors(path: Path, what: str = "model file") -> tuple[dict[str, torch.Tensor], dict]:
    """A file written by `write_tensors` -> (tensors, metadata); anything else is a CunetError."""
    path = existing_file(path, what)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CunetError(f"{path}: not a cunet safetensors file ({error})") from None
    if header.get("format") != FORMAT or "cunet" not in header:
        raise CunetError(f"{path}: not a cunet {what} (no cunet metadata)")
    return tensors, json.loads(header["cunet"])


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
    tensors, metadata = read_tensors(path)
    if metadata.get("kind") != "checkpoint":
        raise CunetError(f"{path}: a weights file, not a training checkpoint")
    try:  # compared as configs: a field added since the checkpoint was written takes its default
        same = CUNetConfig.from_dict(metadata["model_config"]) == model.config
    except (KeyError, TypeError, ValueError):
        same = False
    if not same:
        raise CunetError(f"{path}: checkpoint model config {metadata['model_config']} differs from this run's")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": metadata["param_groups"]})
    return metadata


def save_weights(path: Path, model: CUNet, info: dict, half: bool = True) -> None:
    """The shippable form: config + weights (fp16 by default; BN counters stay integers) + `info`."""
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()
    }
    write_tensors(Path(path), tensors, {"kind": "weights", "model_config": model.config.to_dict(), "info": info})


def load_model(path: Path) -> tuple[CUNet, dict]:
    """A model in eval mode from a weights file or a training checkpoint, plus the file's metadata."""
    tensors, metadata = read_tensors(path)
    try:
        model = CUNet(CUNetConfig.from_dict(metadata["model_config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CunetError(f"{path}: bad model config ({error})") from None
    if metadata.get("kind") == "checkpoint":
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = model.state_dict()  # once: it is rebuilt on every call
    state = {k: v.to(expected[k].dtype) if k in expected else v for k, v in tensors.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CunetError(f"{path}: weights do not match the model config ({str(error).splitlines()[0]})") from None
    return model.eval(), metadata
