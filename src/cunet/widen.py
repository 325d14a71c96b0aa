"""Function-preserving widening of a trained CU-net (Net2WiderNet: Chen, Goodfellow, Shlens 2016).

Why: trials of widths from scratch on a CPU only order the arms by the steps each got (docs/v3.md,
section 3). A widened copy of a trained model computes exactly what the model computes, so arms of
different widths can start from one colouring and what each gains in the same minutes is what its
width buys.

How: every layer's new output channels are copies of old ones (the old channels first, then a seeded
choice of the old ones), BatchNorm statistics and all; each layer that reads a copied channel gets that
channel's incoming weights split among its copies. The split shares of each channel sum to one, so the
output is unchanged, but they differ from copy to copy: the copies then start with unequal outgoing
weights, so training (AdamW, whose steps do not scale with the gradient) pulls them apart — slowly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from cunet.model import CUNet, ConvUnit, UpBlock

#: How unequal a channel's split shares are: each copy's share is (1 + u) / copies, u drawn within ±this
#: and then centred over the channel's copies (so with 3 or more copies |u| may reach twice this).
SPLIT_SPREAD = 0.2


@dataclass(frozen=True)
class ChannelMap:
    """Which old channel each new channel copies (`source`), and the share of the old channel's
    outgoing weights each copy takes (`share`, summing to 1 over a channel's copies)."""

    source: torch.Tensor
    share: torch.Tensor
    old_channels: int

    @classmethod
    def identity(cls, channels: int) -> ChannelMap:
        return cls(torch.arange(channels), torch.ones(channels), channels)

    @classmethod
    def widened(cls, old: int, new: int, rng: np.random.Generator) -> ChannelMap:
        extra = rng.choice(old, new - old, replace=new - old > old)
        source = np.concatenate([np.arange(old), extra])
        copies = np.bincount(source, minlength=old)
        spread = rng.uniform(-SPLIT_SPREAD, SPLIT_SPREAD, new)
        spread -= (np.bincount(source, spread, old) / copies)[source]  # centred per channel: a lone copy gets 0
        share = (1.0 + spread) / copies[source]
        return cls(torch.from_numpy(source), torch.from_numpy(share).float(), old)

    def __add__(self, other: ChannelMap) -> ChannelMap:
        """Two maps side by side, as `torch.cat` joins their channels (the second's sources offset)."""
        return ChannelMap(torch.cat([self.source, other.source + self.old_channels]),
                          torch.cat([self.share, other.share]), self.old_channels + other.old_channels)


def _copy_layer(old: nn.Module, new: nn.Module, inputs: ChannelMap, outputs: ChannelMap) -> None:
    """A conv, transposed conv or linear layer, its inputs split by `inputs`, outputs copied by `outputs`."""
    weight = old.weight.detach().float()
    in_dim, out_dim = (0, 1) if isinstance(old, nn.ConvTranspose2d) else (1, 0)
    weight = weight.index_select(out_dim, outputs.source).index_select(in_dim, inputs.source)
    shape = [1] * weight.dim()
    shape[in_dim] = -1
    new.weight.copy_(weight * inputs.share.view(shape))
    if old.bias is not None:
        new.bias.copy_(old.bias.detach().float()[outputs.source])


def _copy_unit(old: ConvUnit, new: ConvUnit, inputs: ChannelMap, outputs: ChannelMap) -> None:
    _copy_layer(old[0], new[0], inputs, outputs)
    for old_layer, new_layer in zip(old, new):
        if isinstance(old_layer, nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new_layer, name).copy_(getattr(old_layer, name).detach().float()[outputs.source])
            new_layer.num_batches_tracked.copy_(old_layer.num_batches_tracked)


def _copy_block(old, new, inputs: ChannelMap, rng: np.random.Generator) -> ChannelMap:
    """Conv units in a row (a `ConvBlock`, or a list of units): each unit's outputs widened afresh."""
    for old_unit, new_unit in zip(old, new):
        outputs = ChannelMap.widened(old_unit[0].out_channels, new_unit[0].out_channels, rng)
        _copy_unit(old_unit, new_unit, inputs, outputs)
        inputs = outputs
    return inputs


def _copy_up(old: UpBlock, new: UpBlock, inputs: ChannelMap, skip: ChannelMap, rng: np.random.Generator) -> ChannelMap:
    up = _copy_block([old.up], [new.up], inputs, rng)
    skipped = _copy_block([old.skip], [new.skip], skip, rng)
    return _copy_block([old.fuse], [new.fuse], up + skipped, rng)  # UpBlock.forward: cat([up, skip])


@torch.no_grad()
def widen_model(model: CUNet, width: int, seed: int = 0) -> CUNet:
    """A CU-net of `width` (≥ the model's) that computes what `model` computes, in train and eval mode.

    The new model is float32 and in the mode `model` is in; `seed` picks which channels are copied
    and how their shares are split.
    """
    config = model.config
    if isinstance(width, bool) or not isinstance(width, int) or width < config.width:
        raise ValueError(f"width must be a whole number ≥ the model's {config.width}, got {width!r}")
    wide = CUNet(replace(config, width=width)).train(model.training)
    rng = np.random.default_rng(seed)
    c1 = _copy_block(model.conv1, wide.conv1, ChannelMap.identity(config.input_channels), rng)
    c2 = _copy_block(model.conv2, wide.conv2, c1, rng)
    c3 = _copy_block(model.conv3, wide.conv3, c2, rng)
    c4 = _copy_block(model.conv4, wide.conv4, c3, rng)
    if model.global_hint is not None:
        old, new = model.global_hint.layers, wide.global_hint.layers
        hidden = ChannelMap.widened(old[0].out_channels, new[0].out_channels, rng)
        _copy_layer(old[0], new[0], ChannelMap.identity(old[0].in_channels), hidden)
        _copy_layer(old[2], new[2], hidden, c4)  # added to c4, so it copies c4's channels
    x = _copy_block(model.conv5, wide.conv5, c4, rng)
    x = _copy_block(model.conv6, wide.conv6, x, rng)
    x = _copy_block(model.conv7, wide.conv7, x, rng)
    x = _copy_up(model.conv8, wide.conv8, x, c3, rng)
    x = _copy_up(model.conv9, wide.conv9, x, c2, rng)
    x = _copy_up(model.conv10, wide.conv10, x, c1, rng)
    _copy_layer(model.out, wide.out, x, ChannelMap.identity(model.out.out_channels))
    if model.distribution is not None:
        _copy_layer(model.distribution, wide.distribution, x, ChannelMap.identity(model.distribution.out_channels))
    if model.histogram is not None:
        first, last = model.histogram.layers[0], model.histogram.layers[2]
        _copy_layer(first, wide.histogram.layers[0], c4 + c4, ChannelMap.identity(first.out_features))  # mean, std
        _copy_layer(last, wide.histogram.layers[2], ChannelMap.identity(last.in_features),
                    ChannelMap.identity(last.out_features))
    return wide
