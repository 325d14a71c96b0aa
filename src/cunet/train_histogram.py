"""Fitting the histogram head: a trained network learns to predict a photo's own a*b* histogram from L*.

The ground-truth histogram as global hint is worth ~+2 dB over automatic colouring, a retrieved
photo's histogram nothing; a histogram predicted from the photo itself is the automatic hint in
between. The trunk stays frozen: the head reads conv4's pooled features (`HistogramHead.pool`),
computed once per training crop, so fitting takes minutes on a CPU and any trained model can gain
the head without changing what it already does. The loss is the cross-entropy between the true
histogram (`photo_histogram`, the function that makes every global hint) and the head's softmax.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cunet.checkpoint import load_model, save_weights, stored_info
from cunet.color import rgb_to_lab
from cunet.data import PhotoCache, list_labelled_photos, manifest_has_splits
from cunet.errors import CunetError
from cunet.hints import network_inputs, photo_histogram
from cunet.model import CUNet, HistogramHead


@torch.no_grad()
def photo_features(model: CUNet, rgb8: torch.Tensor, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 crops (N, 3, H, W) -> (pooled conv4 features (N, 16w) of their automatic encoding (no
    points), their true histograms (N, Q))."""
    features, targets = [], []
    for start in range(0, len(rgb8), batch):
        lab = rgb_to_lab(rgb8[start:start + batch].float() / 255.0)
        lightness = lab[:, :1]
        maps = torch.zeros(len(lab), 3, *lab.shape[-2:])
        c4 = model.encode(network_inputs(lightness, maps, model.config.propagated_hints))[3]
        features.append(HistogramHead.pool(c4))
        targets.append(photo_histogram(lab[:, 1:]))
    return torch.cat(features), torch.cat(targets)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over photos of -sum_q target_q log softmax(logits)_q: the head's loss (nats)."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


def with_histogram_head(model: CUNet) -> CUNet:
    """A copy of `model` with a fresh histogram head (its trunk's weights copied; an existing head replaced)."""
    if not model.config.global_bins:
        raise CunetError("this model has no global hint, so a predicted histogram has nowhere to go")
    fresh = CUNet(replace(model.config, histogram_head=True))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("histogram.")}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if unexpected or not all(key.startswith("histogram.") for key in missing):
        raise CunetError(f"cannot add a histogram head: weights {unexpected or missing} do not fit the model")
    return fresh.eval()


def _labelled(data: list[str], split: str) -> list[tuple[Path, str]]:
    photos = []
    for source in data:
        if split == "val" and not manifest_has_splits(source):
            continue
        photos += list_labelled_photos(source, split if manifest_has_splits(source) else None)
    return photos


def fit_histogram_head(
    weights: Path, data: list[str], out: Path, *, crops_per_photo: int = 2, epochs: int = 40, lr: float = 1e-3,
    crop: int | None = None, cache_short_side: int | None = None, seed: int = 0, progress: bool = True,
) -> dict:
    """Fit a histogram head on `weights`' frozen trunk over the train split of `data`, check it on the
    val split, and write the model with the head to `out` (its stored settings kept). Crops are
    `crop`² (default: the model's working size) of photos shrunk to `cache_short_side` (default
    9/8 of the crop), as in training. Returns the fit's report: cross-entropy (nats) on train and
    val, against a constant guess (the train photos' mean histogram), per val source too."""
    if crops_per_photo < 1 or epochs < 1 or not 0 < lr < 1:
        raise CunetError("need crops_per_photo >= 1, epochs >= 1 and 0 < lr < 1")
    base, metadata = load_model(weights)
    info = stored_info(weights, metadata)
    if crop is None:
        crop = max(16, info["working_size"] // 8 * 8)
    cache_short_side = cache_short_side or crop * 9 // 8
    model = with_histogram_head(base)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train = _labelled(data, "train")
    if not train:
        raise CunetError("no training photos in the data given")
    cache = PhotoCache.build([p for p, _ in train], cache_short_side, crop, progress)
    chunks = []
    for _ in range(crops_per_photo):
        for start in tqdm(range(0, len(cache), 256), desc="encoding crops", unit="batch", disable=not progress,
                          leave=False):
            indices = np.arange(start, min(start + 256, len(cache)))
            chunks.append(photo_features(model, cache.random_crops(indices, crop, rng)))
    train_x, train_y = (torch.cat(parts) for parts in zip(*chunks))
    val = _labelled(data, "val")
    val_x = val_y = None
    val_sources: list[str] = []
    if val:
        val_cache = PhotoCache.build([p for p, _ in val], cache_short_side, crop, progress,
                                     labels=[label for _, label in val])
        val_x, val_y = photo_features(model, val_cache.center_squares(crop))
        val_sources = val_cache.sources

    head = model.histogram
    # Standardised inputs train faster; the scaling is folded into the first layer afterwards. A channel
    # that barely varies is not blown up: its spread is floored at 1 % of the typical one, which keeps
    # the folded weights within fp16, the shipped precision.
    std_x = train_x.std(0)
    mean_x, std_x = train_x.mean(0), std_x.clamp_min(max(1e-4, 0.01 * float(std_x.median())))
    first, last = head.layers[0], head.layers[-1]
    with torch.no_grad():  # start from the constant guess (the mean histogram): the fit can only add to it
        last.weight.mul_(0.1)
        last.bias.copy_(train_y.mean(0).clamp_min(1e-8).log())
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_x) / 512)
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    standard_x = (train_x - mean_x) / std_x
    head.train()
    with torch.enable_grad():
        for _ in tqdm(range(epochs), desc="fitting histogram head", unit="epoch", disable=not progress, leave=False):
            order = torch.randperm(len(train_x))
            for start in range(0, len(order), 512):
                chosen = order[start:start + 512]
                loss = cross_entropy(head.layers(standard_x[chosen]), train_y[chosen])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
    head.eval()
    with torch.no_grad():  # fold the standardisation into the first layer: the head then reads raw features
        first.bias -= (first.weight * (mean_x / std_x)).sum(1)
        first.weight /= std_x
    if not all(torch.isfinite(p.half()).all() for p in head.parameters()):
        raise CunetError("the fitted histogram head does not fit in fp16; lower --lr")

    constant = train_y.mean(0).clamp_min(1e-12).log()
    with torch.no_grad():
        report = {"train_photos": len(cache), "crops": len(train_x), "epochs": epochs, "lr": lr,
                  "train_cross_entropy": float(cross_entropy(head(_as_c4(train_x)), train_y)),
                  "train_constant_cross_entropy": float(cross_entropy(constant.expand_as(train_y), train_y))}
        if val_x is not None:
            logits = head(_as_c4(val_x))
            labels = np.asarray(val_sources)
            report["val_photos"] = len(val_x)
            report["val_cross_entropy"] = float(cross_entropy(logits, val_y))
            report["val_constant_cross_entropy"] = float(cross_entropy(constant.expand_as(val_y), val_y))
            report["val_by_source"] = {
                source: {"photos": int((labels == source).sum()),
                         "cross_entropy": float(cross_entropy(logits[labels == source], val_y[labels == source])),
                         "constant": float(cross_entropy(constant.expand_as(val_y[labels == source]),
                                                         val_y[labels == source]))}
                for source in sorted(set(val_sources))}
    info["histogram_head"] = {**report, "data": [str(d) for d in data]}
    save_weights(out, model, info)
    return report


def _as_c4(pooled: torch.Tensor) -> torch.Tensor:
    """Pooled features (N, 2C) -> a (N, C, 1, 2) map whose pooling gives them back exactly, so that the
    fitted head is checked through its own forward (mean m and std s of [m - s, m + s] are m and s)."""
    mean, std = pooled.chunk(2, dim=1)
    return torch.stack([mean - std, mean + std], dim=-1)[:, :, None, :]
