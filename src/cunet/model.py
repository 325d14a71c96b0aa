"""CU-net (Wang, Chen, Tian 2022, Tables 5-8 as read in SPEC.md section 2), built from a config.

The model maps (L, a_hint, b_hint, mask), optionally followed by the points' edge-aware spread
(spread a, spread b, reach: `cunet.propagation`), plus an optional global-hint vector to normalised
a*b* in [-1, 1] (tanh); `cunet.color.denormalize_ab` turns that into a*b*. It knows nothing of training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from cunet.fields import shorten

ACTIVATIONS = ("sigmoid", "relu", "leaky-relu")
NORM_POSITIONS = ("before", "after", "none")
INPUT_CHANNELS = 4  # L, a_hint, b_hint, mask
#: Largest conv1 width a config may ask for: 4x the paper's 64 (about 600 MB of float32 weights).
#: A file's config is checked against it before any layer is allocated.
MAX_WIDTH = 256
#: Largest global-hint histogram length (cunet's gamut has 261 bins).
MAX_GLOBAL_BINS = 4096
PROPAGATED_CHANNELS = 3  # spread a, spread b, reach


@dataclass(frozen=True)
class CUNetConfig:
    """Everything needed to rebuild a CU-net; stored inside every checkpoint and weights file.

    Args:
        width: channels of conv1; conv2-4 use 2x, 4x, 8x (64 is the paper's size).
        activation: "sigmoid" (the paper), "relu" or "leaky-relu".
        norm_position: BatchNorm "before" the activation (the paper, section 3.2.5), "after", or "none".
        global_bins: length of the histogram in the global hint (the in-gamut bin count), 0 = no branch.
        distribution_head: also predict logits over the `global_bins` a*b* bins from conv10's features.
        propagated_hints: three more input channels, the points spread edge-aware over the photo.
        histogram_head: also predict the whole photo's a*b* histogram (logits over the `global_bins`
            bins) from conv4's features, before the global hint joins: an automatic global hint.
    """

    width: int = 64
    activation: str = "sigmoid"
    norm_position: str = "before"
    global_bins: int = 261
    distribution_head: bool = False
    propagated_hints: bool = False
    histogram_head: bool = False

    @property
    def input_channels(self) -> int:
        return INPUT_CHANNELS + (PROPAGATED_CHANNELS if self.propagated_hints else 0)

    def __post_init__(self) -> None:
        for name in ("width", "global_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {shorten(value)}")
        for name in ("distribution_head", "propagated_hints", "histogram_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {shorten(getattr(self, name))}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width must be from 1 to {MAX_WIDTH}, got {shorten(self.width)}")
        if not 0 <= self.global_bins <= MAX_GLOBAL_BINS:
            raise ValueError(f"global_bins must be from 0 to {MAX_GLOBAL_BINS}, got {shorten(self.global_bins)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {shorten(self.activation)}")
        if self.norm_position not in NORM_POSITIONS:
            raise ValueError(f"norm_position must be one of {NORM_POSITIONS}, got {shorten(self.norm_position)}")
        if self.distribution_head and self.global_bins < 1:
            raise ValueError("distribution_head needs global_bins > 0")
        if self.histogram_head and self.global_bins < 1:
            raise ValueError("histogram_head needs global_bins > 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CUNetConfig:
        if not isinstance(values, dict):
            raise ValueError(f"a model config must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {shorten(sorted(unknown))}")
        return cls(**values)


def make_activation(name: str) -> nn.Module:
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(0.2, inplace=True)


class ConvUnit(nn.Sequential):
    """One conv + BatchNorm + activation, in the configured order (the paper: conv, BN, sigmoid)."""

    def __init__(self, conv: nn.Module, channels: int, config: CUNetConfig) -> None:
        layers: list[nn.Module] = [conv]
        norm = nn.BatchNorm2d(channels)
        if config.norm_position == "before":
            layers += [norm, make_activation(config.activation)]
        elif config.norm_position == "after":
            layers += [make_activation(config.activation), norm]
        else:
            layers += [make_activation(config.activation)]
        super().__init__(*layers)


def conv3x3(in_channels: int, out_channels: int, config: CUNetConfig, dilation: int = 1) -> ConvUnit:
    # A bias right before BatchNorm is cancelled by its mean subtraction (the paper's eq. after 3).
    conv = nn.Conv2d(
        in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=config.norm_position != "before"
    )
    return ConvUnit(conv, out_channels, config)


class ConvBlock(nn.Sequential):
    """`count` 3x3 conv units (conv1-7 of the paper)."""

    def __init__(self, in_channels: int, out_channels: int, count: int, config: CUNetConfig, dilation: int = 1):
        units = [conv3x3(in_channels if i == 0 else out_channels, out_channels, config, dilation) for i in range(count)]
        super().__init__(*units)


class UpBlock(nn.Module):
    """conv8-10: transposed 4x4 stride-2 conv, concat with the skip (through its 3x3 conv), one 3x3 conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, config: CUNetConfig) -> None:
        super().__init__()
        up = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=config.norm_position != "before")
        self.up = ConvUnit(up, out_channels, config)
        self.skip = conv3x3(skip_channels, skip_channels, config)
        self.fuse = conv3x3(out_channels + skip_channels, out_channels, config)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), self.skip(skip)], dim=1))


class GlobalHintBranch(nn.Module):
    """Global hint (histogram + flag, saturation + flag) -> 1x1 convs -> a bottleneck-wide bias map."""

    def __init__(self, hint_size: int, channels: int, config: CUNetConfig) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(hint_size, channels, 1),
            make_activation(config.activation),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, hint: torch.Tensor) -> torch.Tensor:
        return self.layers(hint[:, :, None, None])


class HistogramHead(nn.Module):
    """conv4's features -> logits over the a*b* bins of the photo's own colour histogram.

    The features are pooled over the photo (mean and standard deviation of each channel), so the
    head sees what the photo shows, at any shape, and two small layers map that to a histogram:
    what the photo's colours probably are, as a global hint the network already understands.
    """

    def __init__(self, channels: int, bins: int, hidden: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, bins))

    @staticmethod
    def pool(c4: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 2C): each channel's mean and standard deviation over the photo."""
        flat = c4.float().flatten(2)
        return torch.cat([flat.mean(-1), flat.std(-1, correction=0)], dim=1)

    def forward(self, c4: torch.Tensor) -> torch.Tensor:
        return self.layers(self.pool(c4))


class CUNet(nn.Module):
    """The CU-net colouriser: 3 average-pool down-samplings, dilated bottleneck, 3 transposed up-samplings."""

    def __init__(self, config: CUNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = ConvBlock(config.input_channels, w, 2, config)
        self.conv2 = ConvBlock(w, 2 * w, 2, config)
        self.conv3 = ConvBlock(2 * w, 4 * w, 2, config)
        self.conv4 = ConvBlock(4 * w, 8 * w, 2, config)
        self.conv5 = ConvBlock(8 * w, 8 * w, 2, config, dilation=2)
        self.conv6 = ConvBlock(8 * w, 8 * w, 2, config, dilation=2)
        self.conv7 = ConvBlock(8 * w, 8 * w, 3, config)
        self.conv8 = UpBlock(8 * w, 4 * w, 4 * w, config)
        self.conv9 = UpBlock(4 * w, 2 * w, 2 * w, config)
        self.conv10 = UpBlock(2 * w, w, w, config)
        self.down = nn.AvgPool2d(2)
        self.out = nn.Conv2d(w, 2, 1)
        self.global_hint = GlobalHintBranch(config.global_bins + 3, 8 * w, config) if config.global_bins else None
        self.distribution = nn.Conv2d(w, config.global_bins, 1) if config.distribution_head else None
        self.histogram = HistogramHead(8 * w, config.global_bins) if config.histogram_head else None

    @property
    def global_hint_size(self) -> int:
        return self.config.global_bins + 3 if self.config.global_bins else 0

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """conv1-4: (B, C, H, W) inputs -> the skip features c1, c2, c3 and the bottleneck c4.

        Only the photo and its colour points enter here; the global hint joins in `decode`, so a
        new histogram or saturation (a variant, a reference, the saturation slider) re-runs only
        `decode` on the same encoding.
        """
        channels = self.config.input_channels
        if inputs.dim() != 4 or inputs.shape[1] != channels:
            raise ValueError(f"inputs must have shape (B, {channels}, H, W), got {tuple(inputs.shape)}")
        if inputs.shape[-1] % 8 or inputs.shape[-2] % 8:
            raise ValueError(f"height and width must be multiples of 8, got {tuple(inputs.shape[-2:])}")
        c1 = self.conv1(inputs)
        c2 = self.conv2(self.down(c1))
        c3 = self.conv3(self.down(c2))
        return c1, c2, c3, self.conv4(self.down(c3))

    def bottleneck(self, inputs: torch.Tensor) -> torch.Tensor:
        """conv4's output (B, 8w, H/8, W/8), before the global hint joins: what the network makes of
        the photo's content, used to find gallery photos of the same kind."""
        return self.encode(inputs)[3]

    def predict_histogram(self, c4: torch.Tensor) -> torch.Tensor:
        """conv4's features (B, 8w, h, w) -> the photo's predicted a*b* histogram (B, Q), summing to 1."""
        if self.histogram is None:
            raise ValueError("this model has no histogram head")
        return torch.softmax(self.histogram(c4.to(self.histogram.layers[0].weight.dtype)).float(), dim=-1)

    def decode_features(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor,
        global_hint: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode`'s features + the global hint -> conv5-10 and the regression head: (normalised a*b*,
        conv10's features (B, w, H, W), which the distribution head reads). Inference runs the
        distribution head itself, fused with its decoding (`cunet.gamut.annealed_mean_of_head`)."""
        x = c4
        if self.global_hint is not None:
            if global_hint is None:
                global_hint = c4.new_zeros(c4.shape[0], self.global_hint_size)
            x = x + self.global_hint(global_hint.to(x.dtype))
        x = self.conv7(self.conv6(self.conv5(x)))
        x = self.conv10(self.conv9(self.conv8(x, c3), c2), c1)
        return torch.tanh(self.out(x)), x

    def decode(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor,
        global_hint: torch.Tensor | None = None, distribution_at: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`encode`'s features + the global hint -> conv5-10 and the heads (see `forward`)."""
        ab, x = self.decode_features(c1, c2, c3, c4, global_hint)
        if self.distribution is None:
            return ab, None
        if distribution_at is None:
            return ab, self.distribution(x)
        features = x.flatten(2)[:, :, distribution_at]
        weight = self.distribution.weight.flatten(1)
        logits = torch.einsum("qc,bcn->bqn", weight.to(features.dtype), features)
        return ab, logits + self.distribution.bias.to(logits.dtype)[:, None]

    def forward(
        self, inputs: torch.Tensor, global_hint: torch.Tensor | None = None,
        distribution_at: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) inputs (C = `config.input_channels`; H, W multiples of 8), optional (B, Q + 3)
        global hint -> (normalised a*b* (B, 2, H, W) in [-1, 1], bin logits (B, Q, H, W) or None).

        `distribution_at`, flat pixel indices (N,), evaluates the distribution head at those pixels
        only, giving logits (B, Q, N): the head is per-pixel, and its full (B, Q, H, W) map is far
        larger than the rest of the network's activations, so training samples pixels.
        """
        return self.decode(*self.encode(inputs), global_hint, distribution_at)


PRESETS: dict[str, CUNetConfig] = {
    # The paper's network (Tables 5-8): width 64, BN before sigmoid.
    "paper": CUNetConfig(width=64, activation="sigmoid", norm_position="before"),
    # CPU-trainable: a quarter of the paper's width (1/16 of its compute). ReLU because a short CPU
    # budget cannot afford sigmoid's slower start; the evaluation issue's ablation measures the choice.
    "small": CUNetConfig(width=16, activation="relu", norm_position="before"),
}


def build_model(preset_or_config: str | CUNetConfig) -> CUNet:
    """A fresh CU-net from a preset name ("paper", "small") or a config."""
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}; choose from {sorted(PRESETS)}")
        preset_or_config = PRESETS[preset_or_config]
    return CUNet(preset_or_config)
