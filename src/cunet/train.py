"""Training: simulated hints from ground truth, Huber/L2 on a*b* (+ class-rebalanced cross-entropy
over the a*b* bins), several data sources with sampling weights, AdamW, checkpoints, exact resume.

Every random choice of step k (which photos, crops, flips, hints) comes from a generator seeded by
(seed, k); so a run stopped at any checkpoint and resumed takes the very same steps as one that
never stopped. Photos are drawn with each source's share set by `source_weights`, so that a large
source (e.g. face crops) does not fill the batches; validation reports every source and, as its
headline, their macro average without the face-crop sources (`exclude_from_headline`), the figure
that is not carried by the easiest source.

One process or many, the same command:

    cunet train --config configs/small.toml                                   # one process (CPU or GPU)
    torchrun --standalone --nproc_per_node=8 -m cunet.cli train --config c.toml  # 8 GPUs, one machine
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \
        -m cunet.cli train --config c.toml                                    # 2 machines (run on each)

Under torchrun each rank draws its own `batch_size` photos of every step, so a step sees
batch_size x world photos; rank 0 alone logs, validates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

import torch
from tqdm import tqdm

from cunet.checkpoint import load_checkpoint, load_model, save_checkpoint, save_weights, stored_info
from cunet.color import denormalize_ab, join_lab, rgb_to_lab
from cunet.colorizer import check_automatic_global, check_decoding
from cunet import distributed
from cunet.data import PhotoCache, list_labelled_photos, manifest_has_splits, sampling_probabilities
from cunet.errors import CunetError
from cunet.fields import Fields
from cunet.gamut import decode_distribution, num_bins
from cunet.hints import (
    encode_point_hints,
    ground_truth_points,
    network_inputs,
    simulate_global_hints,
    simulate_point_hints,
)
from cunet.io import prepare_output_folder
from cunet.losses import ab_loss, chroma_deficit, class_weights, rebalanced_cross_entropy
from cunet.metrics import colorfulness, psnr
from cunet.model import MAX_WIDTH, CUNet, build_model
from cunet.sources import FACE_CROP_SOURCES, headline_sources, macro_mean
from cunet.train_config import TrainConfig
from cunet.widen import widen_model

LAST_CHECKPOINT = "last.safetensors"
LOG_FILE = "log.jsonl"
CE_PIXEL_STRIDE = 16


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


def training_step(
    model: CUNet, optimizer: torch.optim.Optimizer, config: TrainConfig, rgb8: torch.Tensor,
    rng: np.random.Generator, bf16: bool, bin_weights: torch.Tensor | None = None,
) -> float:
    """One optimizer step on a uint8 batch; hints are simulated on the CPU, the network runs on its device."""
    device = next(model.parameters()).device
    rgb = rgb8.float() / 255.0
    lab = rgb_to_lab(rgb)
    ab = lab[:, 1:]
    point_maps = simulate_point_hints(ab, rng, config.hints)
    # On a GPU the edge-aware spread runs there too: on the CPU it would starve the GPU.
    inputs = network_inputs(lab[:, :1].to(device), point_maps.to(device), config.propagated_hints)
    global_hints = simulate_global_hints(ab, rgb, rng, config.hints).to(device)
    ab = ab.to(device)
    if config.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    pixels = None
    if config.ce_weight > 0:
        # The cross-entropy sees one pixel in CE_PIXEL_STRIDE (random, shared by the batch).
        count = ab.shape[-2] * ab.shape[-1]
        pixels = torch.from_numpy(rng.choice(count, size=count // CE_PIXEL_STRIDE, replace=False)).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        predicted, logits = model(inputs, global_hints, pixels)
    loss = ab_loss(predicted, ab, config.loss, config.huber_delta)
    if config.chroma_weight > 0:
        loss = loss + config.chroma_weight * chroma_deficit(predicted, ab)
    if logits is not None and pixels is not None:
        weights = bin_weights if bin_weights is not None else torch.ones(num_bins())
        sampled_ab = ab.flatten(2)[:, :, pixels][..., None]  # (B, 2, N, 1), as quantize_ab wants (*, 2, H, W)
        loss = loss + config.ce_weight * rebalanced_cross_entropy(logits[..., None], sampled_ab, weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def validate(
    model: CUNet, squares8: torch.Tensor, sources: list[str], points: int, seed: int = 0, temperature: float = 0.38,
    exclude_from_headline: Sequence[str] = FACE_CROP_SOURCES,
) -> dict:
    """Validation on uint8 squares: PSNR (dB) gray (ab = 0), automatic, and with `points` 3x3 ground-truth
    points; colourfulness of the automatic output and of the truth; with a distribution head, also
    its annealed-mean decoding. Each figure is the headline: the macro average over the sources
    (one label per square, every source weighing the same) not in `exclude_from_headline` (face
    crops), named in `headline_sources`; `macro_all` averages every source, and `by_source` holds
    each source's own means.
    """
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
    per_photo = {"gray": psnr(join_lab(lightness, torch.zeros_like(ab)), rgb),
                 "colorfulness_gt": torch.tensor([colorfulness(image) for image in rgb])}
    for name, maps in (("auto", torch.zeros_like(point_maps)), (f"points{points}", point_maps)):
        outputs, annealed = [], []
        for start in range(0, len(rgb), 16):
            chunk = slice(start, start + 16)
            inputs = network_inputs(lightness[chunk], maps[chunk], model.config.propagated_hints).to(device)
            predicted, logits = model(inputs)
            outputs.append(join_lab(lightness[chunk], denormalize_ab(predicted.float().cpu())))
            if logits is not None and name == "auto":
                annealed.append(join_lab(lightness[chunk], decode_distribution(logits.float().cpu(), temperature)))
        per_photo[name] = psnr(torch.cat(outputs), rgb)
        if name == "auto":
            per_photo["colorfulness_auto"] = torch.tensor([colorfulness(image) for image in torch.cat(outputs)])
        if annealed:
            per_photo["auto_annealed"] = psnr(torch.cat(annealed), rgb)
            per_photo["colorfulness_annealed"] = torch.tensor([colorfulness(image) for image in torch.cat(annealed)])
    model.train(was_training)
    labels = np.asarray(sources)
    by_source = {
        source: {key: float(values[torch.from_numpy(labels == source)].float().mean()) for key, values in per_photo.items()}
        for source in sorted(set(sources))
    }
    headline = headline_sources(by_source, exclude_from_headline)
    macro = {key: macro_mean({s: scores[key] for s, scores in by_source.items()}, headline) for key in per_photo}
    macro_all = {key: macro_mean({s: scores[key] for s, scores in by_source.items()}, by_source) for key in per_photo}
    return {**macro, "headline_sources": headline, "macro_all": macro_all, "by_source": by_source}


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
        return metadata["step"], float(metadata["extra"].get("train_seconds") or 0.0)
    if config.init_from:
        start_model, metadata = load_model(Path(config.init_from))
        if start_model.config != model.config:
            raise CunetError(f"{config.init_from}: its model config {start_model.config} differs from this run's")
        model.load_state_dict(start_model.state_dict())
        if config.init_continues:
            info = Fields(metadata.get("info", {}), str(config.init_from), "info.")
            if not info.has("steps"):
                raise CunetError(f"{config.init_from}: no step count stored, so init_continues cannot go on from it")
            seconds = info.values.get("train_seconds")
            return info.integer("steps", 0, 10**12), 0.0 if seconds is None else info.number("train_seconds", 0)
    return 0, 0.0


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Run (or resume) training, as one process or one rank of a torchrun job; returns the checkpoint path."""
    config.check_paths()
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

    train_photos = [item for source in config.data_sources
                    for item in list_labelled_photos(source, "train" if manifest_has_splits(source) else None)]
    train_cache = PhotoCache.build([p for p, _ in train_photos], config.cache_short_side, config.crop, progress,
                                   labels=[label for _, label in train_photos])
    probabilities = sampling_probabilities(train_cache.sources, config.source_weights)
    bin_weights = (class_weights(train_cache.photos, probabilities, config.prior_sigma, config.rebalance_mix)
                   if config.ce_weight > 0 else None)
    val_squares, val_sources = None, []
    if ranks.is_main and config.val_limit:
        val_photos = []
        for source in filter(manifest_has_splits, config.data_sources):
            labelled = list_labelled_photos(source, "val")
            for label in sorted({label for _, label in labelled}):
                paths = [path for path, own in labelled if own == label]
                # An even spread over the source's split, not its first rows.
                spread = np.unique(np.linspace(0, len(paths) - 1, min(config.val_limit, len(paths))).astype(int))
                val_photos += [(paths[i], label) for i in spread]
        if val_photos:
            val_cache = PhotoCache.build([p for p, _ in val_photos], config.cache_short_side, config.crop, progress,
                                         labels=[label for _, label in val_photos])
            val_squares, val_sources = val_cache.center_squares(config.crop), val_cache.sources
    if ranks.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)  # only now: a run that cannot start leaves no folder behind
    log = _Log(out_dir / LOG_FILE) if ranks.is_main else None
    if log:
        shares = {label: float(probabilities[np.asarray(train_cache.sources) == label].sum())
                  for label in sorted(set(train_cache.sources))}
        log.write(event="start", step=step, photos=len(train_cache), ranks=ranks.world,
                  dropped_gray=train_cache.dropped_gray, dropped_small=train_cache.dropped_small,
                  dropped_unreadable=train_cache.dropped_unreadable, source_shares=shares,
                  val_photos=len(val_sources), config=asdict(config))
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

    def validate_and_log(epoch: int) -> None:
        if val_squares is not None:
            scores = validate(model, val_squares, val_sources, config.val_points, config.seed,
                              config.annealed_temperature, config.exclude_from_headline)
            log.write(event="val", step=step, epoch=epoch, train_seconds=seconds, **scores)
            bar.write(f"step {step}: val headline " + ", ".join(
                f"{k} {v:.2f}" for k, v in scores.items() if isinstance(v, float)))

    previous_handler = signal.signal(signal.SIGTERM, request_stop)
    network.train()
    bar = tqdm(total=config.steps, initial=step, desc="training", unit="step", disable=not progress, dynamic_ncols=True)
    if config.stop_after == 0:  # a look at the weights as they are: validate and checkpoint, train no further
        validate_and_log(step // steps_per_epoch)
        save(step)
    window_start, window_images, running = time.perf_counter(), 0, None
    try:
        while step < last_step and not stop_requested:
            epoch = step // steps_per_epoch
            rng = np.random.default_rng([config.seed, step] + ([ranks.rank] if ranks.rank else []))
            indices = rng.choice(len(train_cache), size=config.batch_size, p=probabilities)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            started = time.perf_counter()
            loss = training_step(network, optimizer, config, train_cache.random_crops(indices, config.crop, rng), rng, bf16,
                                 bin_weights)
            if not math.isfinite(loss):
                raise CunetError(f"loss became {loss} at step {step}; lower --lr or use --precision fp32")
            seconds += time.perf_counter() - started
            step += 1
            out_of_time = config.stop_after_seconds is not None and seconds >= config.stop_after_seconds
            if out_of_time:
                last_step = step
            window_images += len(indices) * ranks.world
            running = loss if running is None else 0.95 * running + 0.05 * loss
            rate = window_images / max(1e-9, time.perf_counter() - window_start)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", img_s=f"{rate:.1f}", epoch=epoch)
            if log and step % config.log_every == 0:
                log.write(event="train", step=step, epoch=epoch, loss=running, lr=learning_rate(config, step - 1),
                          images_per_s=rate, train_seconds=seconds)
                window_start, window_images = time.perf_counter(), 0
            if step % (config.val_every or steps_per_epoch) == 0 or step in (config.steps, last_step):
                validate_and_log(epoch)
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


def export_choices(path: Path, model: CUNet, stored: dict, decode: str | None = None,
                   temperature: float | None = None, blend: float | None = None, chroma_gain: float | None = None,
                   automatic_global: str | None = None, histogram_temperature: float | None = None) -> dict:
    """How `Colorizer` should run an exported model: each choice given, else the one the file at `path`
    had stored (`stored`: its `stored_info`; a checkpoint stores none: regression, no gain, no global
    hint), checked against the model's heads. Both export formats store these, so an ONNX graph says
    what the weights would."""
    given = {"method": decode, "temperature": temperature, "blend": blend, "gain": chroma_gain}
    choice = {key: stored["decode"][key] if value is None else value for key, value in given.items()}
    automatic = stored["automatic_global"] if automatic_global is None else automatic_global
    sharpening = stored["histogram_temperature"] if histogram_temperature is None else histogram_temperature
    checks = ((given.values(), lambda: check_decoding(choice["method"], choice["temperature"], choice["blend"],
                                                      model.distribution is not None, choice["gain"])),
              ((automatic_global, histogram_temperature),
               lambda: check_automatic_global(automatic, model.histogram is not None, sharpening)))
    for values, check in checks:
        try:
            check()
        except CunetError as error:  # a choice the file itself stored is the file's fault: name it
            raise (CunetError(f"{path}: {error}") if all(v is None for v in values) else error) from None
    return {"decode": choice, "automatic_global": automatic, "histogram_temperature": sharpening}


def export_weights(
    checkpoint: Path, out: Path, half: bool = True, decode: str | None = None, temperature: float | None = None,
    blend: float | None = None, automatic_global: str | None = None, histogram_temperature: float | None = None,
    chroma_gain: float | None = None,
) -> None:
    """Checkpoint -> shippable weights file with the training facts a model card needs, and how
    `Colorizer` should decode the model's output and which global hint automatic colouring takes
    (choices measured on val photos; `export_choices`). A weights file in keeps its facts and its
    choices, but for those given anew."""
    model, metadata = load_model(checkpoint)
    stored = stored_info(checkpoint, metadata)
    choices = export_choices(checkpoint, model, stored, decode, temperature, blend, chroma_gain,
                             automatic_global, histogram_temperature)
    save_weights(out, model, {**file_facts(metadata, stored), **choices}, half=half)


def file_facts(metadata: dict, stored: dict) -> dict:
    """The training facts a weights file carries (steps, training seconds, working size, the run's
    config), from a weights file's `info` or a checkpoint's step and extras."""
    if metadata.get("kind") != "checkpoint":
        return dict(metadata.get("info", {}))
    return {"steps": metadata["step"], "train_seconds": metadata["extra"].get("train_seconds"),
            "working_size": stored["working_size"], "train_config": metadata["extra"].get("train_config", {})}


def widen_weights(source: Path, out: Path, width: int, seed: int = 0) -> None:
    """A checkpoint or weights file -> an fp32 weights file of a wider CU-net that colours alike
    (`cunet.widen`), keeping the facts and choices, so `init_from` + `init_continues` go on from it."""
    model, metadata = load_model(source)
    stored = stored_info(source, metadata)
    if isinstance(width, bool) or not isinstance(width, int) or not model.config.width <= width <= MAX_WIDTH:
        raise CunetError(f"--width must be from the model's {model.config.width} to {MAX_WIDTH}, got {width}")
    info = {**file_facts(metadata, stored), **export_choices(source, model, stored),
            "widened_from": {"width": model.config.width, "seed": seed}}
    wide = widen_model(model, width, seed)
    prepare_output_folder(Path(out).parent)  # only once the model is read and the width is checked
    save_weights(out, wide, info, half=False)
