"""Training: simulated hints from ground truth, Huber/L2 on a*b*, AdamW, checkpoints, exact resume.

Every random choice of step k (crops, flips, hints) comes from a generator seeded by (seed, k), and
the photo order of epoch e from (seed, e); so a run stopped at any checkpoint and resumed takes the
very same steps as one that never stopped.

One process or many, the same command:

    cunet train --config configs/small.toml                                   # one process (CPU or GPU)
    torchrun --standalone --nproc_per_node=8 -m cunet.cli train --config c.toml  # 8 GPUs, one machine
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \
        -m cunet.cli train --config c.toml                                    # 2 machines (run on each)

Under torchrun each rank takes its own `batch_size` slice of every global batch, so a step sees
batch_size x world photos; rank 0 alone logs, validates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cunet.checkpoint import load_checkpoint, load_model, save_checkpoint, save_weights
from cunet.color import denormalize_ab, join_lab, rgb_to_lab
from cunet import distributed
from cunet.data import PhotoCache, list_photos, manifest_has_splits
from cunet.errors import CunetError
from cunet.gamut import num_bins, quantize_ab
from cunet.hints import (
    HintSimulation,
    encode_point_hints,
    ground_truth_points,
    network_inputs,
    simulate_global_hints,
    simulate_point_hints,
)
from cunet.metrics import psnr
from cunet.model import PRESETS, CUNet, CUNetConfig, build_model

LAST_CHECKPOINT = "last.safetensors"
LOG_FILE = "log.jsonl"


@dataclass
class TrainConfig:
    """One training run. Every field can come from a TOML file and be overridden by a CLI flag."""

    data: str = ""
    out_dir: str = "runs/cunet"
    preset: str = "small"
    width: int | None = None
    activation: str | None = None
    norm_position: str | None = None
    distribution_head: bool = False
    crop: int = 128
    cache_short_side: int = 144
    batch_size: int = 16
    steps: int = 18000
    stop_after: int | None = None
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 300
    weight_decay: float = 1e-4
    loss: str = "huber"
    huber_delta: float = 6.0
    ce_weight: float = 0.0
    precision: str = "auto"
    device: str = "auto"
    channels_last: bool = True
    seed: int = 0
    threads: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    val_limit: int = 128
    val_every: int | None = None  # steps between validations; None = once an epoch
    val_points: int = 10
    init_from: str | None = None  # weights to start a fresh run from (fine-tuning); ignored when resuming
    hints: HintSimulation = field(default_factory=HintSimulation)

    def __post_init__(self) -> None:
        if isinstance(self.hints, dict):
            self.hints = HintSimulation(**self.hints)
        if self.loss not in ("huber", "l2"):
            raise CunetError(f"loss must be 'huber' or 'l2', got {self.loss!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise CunetError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.preset not in PRESETS:
            raise CunetError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        if self.crop % 8 or self.crop < 16:
            raise CunetError(f"crop must be a multiple of 8 and at least 16, got {self.crop}")
        if self.cache_short_side < self.crop:
            raise CunetError("cache_short_side must be at least crop")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> TrainConfig:
        try:
            values = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise CunetError(f"{path}: cannot read training config ({error})") from None
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise CunetError(f"{path}: unknown training options {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def model_config(self) -> CUNetConfig:
        changes = {
            key: getattr(self, key) for key in ("width", "activation", "norm_position") if getattr(self, key) is not None
        }
        return replace(PRESETS[self.preset], global_bins=num_bins(), distribution_head=self.distribution_head, **changes)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def training_device(name: str) -> torch.device:
    """"auto" picks CUDA when present; CI and most users train on the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CunetError("device cuda asked for, but PyTorch sees no CUDA GPU")
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast where it pays: CUDA with bf16, or a CPU with native bf16 instructions."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def ab_loss(config: TrainConfig, predicted: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss on a*b* (in a*b* units, averaged): Huber (the paper's l_delta) or L2 (eq. 22)."""
    predicted_ab = denormalize_ab(predicted.float())
    if config.loss == "huber":
        return F.huber_loss(predicted_ab, target_ab, delta=config.huber_delta)
    return F.mse_loss(predicted_ab, target_ab)


def training_step(
    model: CUNet, optimizer: torch.optim.Optimizer, config: TrainConfig, rgb8: torch.Tensor,
    rng: np.random.Generator, bf16: bool,
) -> float:
    """One optimizer step on a uint8 batch; hints are simulated on the CPU, the network runs on its device."""
    device = next(model.parameters()).device
    rgb = rgb8.float() / 255.0
    lab = rgb_to_lab(rgb)
    ab = lab[:, 1:]
    inputs = network_inputs(lab[:, :1], simulate_point_hints(ab, rng, config.hints)).to(device)
    global_hints = simulate_global_hints(ab, rgb, rng, config.hints).to(device)
    ab = ab.to(device)
    if config.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        predicted, logits = model(inputs, global_hints)
    loss = ab_loss(config, predicted, ab)
    if logits is not None and config.ce_weight > 0:
        loss = loss + config.ce_weight * F.cross_entropy(logits.float(), quantize_ab(ab))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def validate(model: CUNet, squares8: torch.Tensor, points: int, seed: int = 0) -> dict[str, float]:
    """Mean PSNR (dB) on validation squares: gray (ab = 0), automatic, and `points` 3x3 ground-truth points."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rgb = squares8.float() / 255.0
    lab = rgb_to_lab(rgb)
    lightness, ab = lab[:, :1], lab[:, 1:]
    size = squares8.shape[-1]
    point_maps = torch.stack([
        encode_point_hints(ground_truth_points(ab[i], [3] * points, np.random.default_rng([seed, i])), size, size)
        for i in range(len(squares8))
    ])
    results = {"gray": float(psnr(join_lab(lightness, torch.zeros_like(ab)), rgb).mean())}
    for name, maps in (("auto", torch.zeros_like(point_maps)), (f"points{points}", point_maps)):
        outputs = []
        for start in range(0, len(rgb), 32):
            inputs = network_inputs(lightness[start : start + 32], maps[start : start + 32]).to(device)
            predicted, _ = model(inputs)
            outputs.append(join_lab(lightness[start : start + 32], denormalize_ab(predicted.float().cpu())))
        results[name] = float(psnr(torch.cat(outputs), rgb).mean())
    model.train(was_training)
    return results


def _epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 7]).permutation(count)


class _Log:
    """Append-only JSON-lines log beside the checkpoints (the training curves are drawn from it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **record) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps({**record, "time": round(time.time(), 1)}) + "\n")


def read_log(path: str | Path) -> list[dict]:
    """The records of a run's log.jsonl, in order (what the curves, model card and ablation read)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def restore(model: CUNet, optimizer: torch.optim.Optimizer, config: TrainConfig, checkpoint: Path) -> tuple[int, float]:
    """Resume from the run's checkpoint if there is one, else start from `init_from` weights if given.

    Returns (step, training seconds so far).
    """
    if checkpoint.exists():
        metadata = load_checkpoint(checkpoint, model, optimizer)
        return metadata["step"], metadata["extra"].get("train_seconds", 0.0)
    if config.init_from:
        start_model, _ = load_model(Path(config.init_from))
        if start_model.config != model.config:
            raise CunetError(f"{config.init_from}: its model config {start_model.config} differs from this run's")
        model.load_state_dict(start_model.state_dict())
    return 0, 0.0


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Run (or resume) training, as one process or one rank of a torchrun job; returns the checkpoint path."""
    if config.threads:
        torch.set_num_threads(config.threads)
    ranks = distributed.ranks_from_environment()
    device = distributed.start(ranks, training_device(config.device))
    try:
        return _train(config, ranks, device, progress and ranks.is_main)
    finally:
        distributed.stop(ranks)


def _train(config: TrainConfig, ranks: distributed.Ranks, device: torch.device, progress: bool) -> Path:
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = build_model(config.model_config()).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    checkpoint = out_dir / LAST_CHECKPOINT
    step, seconds = restore(model, optimizer, config, checkpoint)
    if step >= config.steps:
        return checkpoint
    network = distributed.prepare_model(model, ranks, device,
                                        find_unused=config.distribution_head and config.ce_weight == 0)

    source = config.data
    train_cache = PhotoCache.build(list_photos(source, "train" if manifest_has_splits(source) else None),
                                   config.cache_short_side, config.crop, progress)
    val_squares = None
    if ranks.is_main and manifest_has_splits(source) and config.val_limit:
        val_paths = list_photos(source, "val")
        # An even spread over the split, not its first rows: manifests are often grouped by source.
        val_paths = [val_paths[i] for i in np.unique(np.linspace(0, len(val_paths) - 1, config.val_limit).astype(int))]
        val_squares = PhotoCache.build(val_paths, config.cache_short_side, config.crop, progress).center_squares(config.crop)
    log = _Log(out_dir / LOG_FILE) if ranks.is_main else None
    if log:
        log.write(event="start", step=step, photos=len(train_cache), ranks=ranks.world,
                  dropped_gray=train_cache.dropped_gray, dropped_small=train_cache.dropped_small,
                  dropped_unreadable=train_cache.dropped_unreadable, config=asdict(config))
    bf16 = use_bf16(config.precision, device)
    global_batch = config.batch_size * ranks.world
    steps_per_epoch = max(1, len(train_cache) // global_batch)
    last_step = config.steps if config.stop_after is None else min(config.steps, step + config.stop_after)

    def save(at_step: int) -> None:
        if ranks.is_main:
            save_checkpoint(checkpoint, model, optimizer, at_step,
                            extra={"train_config": asdict(config), "train_seconds": seconds})

    stop_requested = False

    def request_stop(*_):
        nonlocal stop_requested
        stop_requested = True

    previous_handler = signal.signal(signal.SIGTERM, request_stop)
    network.train()
    bar = tqdm(total=config.steps, initial=step, desc="training", unit="step", disable=not progress, dynamic_ncols=True)
    order_epoch, order = -1, None
    window_start, window_images, running = time.perf_counter(), 0, None
    try:
        while step < last_step and not stop_requested:
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, _epoch_order(config.seed, epoch, len(train_cache))
            start = position * global_batch + ranks.rank * config.batch_size
            indices = order[start : start + config.batch_size]
            rng = np.random.default_rng([config.seed, step] + ([ranks.rank] if ranks.rank else []))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            started = time.perf_counter()
            loss = training_step(network, optimizer, config, train_cache.random_crops(indices, config.crop, rng), rng, bf16)
            if not math.isfinite(loss):
                raise CunetError(f"loss became {loss} at step {step}; lower --lr or use --precision fp32")
            seconds += time.perf_counter() - started
            step += 1
            window_images += len(indices) * ranks.world
            running = loss if running is None else 0.95 * running + 0.05 * loss
            rate = window_images / max(1e-9, time.perf_counter() - window_start)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", img_s=f"{rate:.1f}", epoch=epoch)
            if log and step % config.log_every == 0:
                log.write(event="train", step=step, epoch=epoch, loss=running, lr=learning_rate(config, step - 1),
                          images_per_s=rate, train_seconds=seconds)
                window_start, window_images = time.perf_counter(), 0
            if step % (config.val_every or steps_per_epoch) == 0 or step == config.steps:
                if val_squares is not None:
                    scores = validate(model, val_squares, config.val_points, config.seed)
                    log.write(event="val", step=step, epoch=epoch, train_seconds=seconds, **scores)
                    bar.write(f"step {step}: val PSNR " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
            if step % config.checkpoint_every == 0 or step == last_step:
                save(step)
    except KeyboardInterrupt:
        save(step)
        bar.close()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    if stop_requested:
        save(step)
    bar.close()
    if ranks.distributed:
        agree = distributed.weights_agree(model, ranks)
        if log:
            log.write(event="ranks", step=step, world=ranks.world, weights_agree=agree)
        if not agree:
            raise CunetError(f"ranks disagree on the weights after step {step}")
    return checkpoint


def export_weights(checkpoint: Path, out: Path, half: bool = True) -> None:
    """Checkpoint -> shippable weights file with the training facts a model card needs."""
    model, metadata = load_model(checkpoint)
    train_config = metadata["extra"].get("train_config", {})
    info = {
        "steps": metadata["step"],
        "train_seconds": metadata["extra"].get("train_seconds"),
        "working_size": train_config.get("crop", 128),
        "train_config": train_config,
    }
    save_weights(out, model, info, half=half)
