"""The one inference pipeline, shared by the CLI, the web app, evaluation and benchmarks.

The network runs at a working size (the scale it was trained at, short side = `working_size`),
its a*b* is up-sampled to the photo's full size and joined with the photo's own full-resolution L*.
A model with a distribution head offers two a*b* estimates: the regression head (the safe average
of plausible colours) and the annealed mean of the per-pixel distribution over the a*b* bins (more
vivid); `decode` picks one or a blend, and `distribution` gives the per-pixel probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cunet.checkpoint import load_model
from cunet.color import denormalize_ab, join_lab, rgb_to_lab
from cunet.errors import CunetError
from cunet.gamut import decode_distribution
from cunet.hints import PointHint, encode_global_hint, encode_point_hints, network_inputs, photo_histogram
from cunet.io import Photo, load_photo, to_pil
from cunet.model import CUNet

ImageInput = str | os.PathLike | Image.Image | np.ndarray | Photo
DEFAULT_WEIGHTS = "default.safetensors"
DECODINGS = ("regression", "annealed", "blend")


def check_decoding(decode: str, temperature: float, blend: float, has_head: bool) -> None:
    """The one rule for decoding settings: `Colorizer` applies it, and export before storing them."""
    if decode not in DECODINGS:
        raise CunetError(f"decode must be one of {', '.join(DECODINGS)}, got {decode!r}")
    if decode != "regression" and not has_head:
        raise CunetError(f"decode {decode!r} needs a model with a distribution head")
    if not 0 < temperature <= 1 or not 0 <= blend <= 1:
        raise CunetError("temperature must lie in (0, 1] and blend in [0, 1]")


def bundled_weights() -> Path:
    """Path of the default model that ships inside the package."""
    return Path(str(resources.files("cunet") / "weights" / DEFAULT_WEIGHTS))


def working_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the short side near `short_side`, aspect kept, both multiples of 8 (three 2x poolings)."""
    scale = short_side / min(height, width)
    return (max(8, round(height * scale / 8) * 8), max(8, round(width * scale / 8) * 8))


def _resize(tensor: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *shape); antialiased when shrinking, bilinear when growing."""
    if tuple(tensor.shape[-2:]) == tuple(shape):
        return tensor
    shrinking = shape[0] < tensor.shape[-2] or shape[1] < tensor.shape[-1]
    return F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=shrinking)


def _photo_tensor(photo: Photo) -> torch.Tensor:
    return torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]


@dataclass
class Colorizer:
    """A loaded CU-net plus how to run it. `colorize` is what users call."""

    model: CUNet
    working_size: int = 128
    info: dict = field(default_factory=dict)
    decode: str = "regression"  # or "annealed" / "blend" (needs a distribution head)
    temperature: float = 0.38  # of the annealed mean: 1 = the plain mean, towards 0 the mode
    blend: float = 0.5  # share of the annealed mean in "blend"

    def __post_init__(self) -> None:
        check_decoding(self.decode, self.temperature, self.blend, self.model.distribution is not None)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, working_size: int | None = None, decode: str | None = None
    ) -> Colorizer:
        """The bundled default model (path None) or a weights/checkpoint file. `decode` defaults to the
        choice stored with the weights (measured when they were exported), else the regression head."""
        path = bundled_weights() if path is None else Path(path)
        model, metadata = load_model(path)
        info = metadata.get("info", {})
        if metadata.get("kind") == "checkpoint":
            info = {"working_size": metadata["extra"].get("train_config", {}).get("crop", 128)}
        stored = info.get("decode", {})
        return cls(model, working_size or int(info.get("working_size", 128)), info,
                   decode or stored.get("method", "regression"), float(stored.get("temperature", 0.38)),
                   float(stored.get("blend", 0.5)))

    def histogram_of(self, image: ImageInput) -> torch.Tensor:
        """A colour photo's global-hint histogram, taken at the working size as in training."""
        rgb = _photo_tensor(load_photo(image))
        small = _resize(rgb, working_shape(*rgb.shape[-2:], self.working_size))
        return photo_histogram(rgb_to_lab(small)[0, 1:])

    @torch.no_grad()
    def colorize(
        self,
        image: ImageInput,
        points: list[PointHint] | None = None,
        histogram: torch.Tensor | np.ndarray | None = None,
        saturation: float | None = None,
        reference: ImageInput | None = None,
        size: int | None = None,
    ) -> Image.Image:
        """Colour a photo; returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size.

        Args:
            image: path, PIL image, or array (gray, RGB, RGBA; uint8, uint16 or float in [0, 1]).
            points: colour points in the input's pixel coordinates.
            histogram: a global a*b* histogram over the in-gamut bins (overrides `reference`).
            saturation: a global mean saturation in [0, 1].
            reference: a colour photo whose colour histogram becomes the global hint.
            size: working short side (default: the model's training scale).
        """
        photo = load_photo(image)
        if reference is not None and histogram is None:
            histogram = self.histogram_of(reference)
        ab = self.predict_ab(photo, points or [], histogram, saturation, size or self.working_size)
        rgb = _photo_tensor(photo)
        lightness = rgb_to_lab(rgb)[:, :1]
        colour = join_lab(lightness, _resize(ab, tuple(lightness.shape[-2:])))
        return to_pil(colour[0].permute(1, 2, 0).numpy(), photo.alpha)

    def predict_ab(
        self, photo: Photo, points: list[PointHint], histogram, saturation: float | None, size: int
    ) -> torch.Tensor:
        """The network's a*b* (1, 2, h, w) at the working shape for a decoded photo, decoded as `decode` says."""
        regression, logits = self._run(photo, points, histogram, saturation, size)
        if self.decode == "regression":
            return regression
        annealed = decode_distribution(logits, self.temperature)
        if self.decode == "annealed":
            return annealed
        return self.blend * annealed + (1 - self.blend) * regression

    @torch.no_grad()
    def distribution(
        self, image: ImageInput, points: list[PointHint] | None = None, histogram=None,
        saturation: float | None = None, size: int | None = None,
    ) -> torch.Tensor:
        """Per-pixel probabilities (Q, h, w) over the in-gamut a*b* bins (`cunet.gamut.in_gamut_bins`)
        at the working shape: what colour suggestions read. Needs a distribution head."""
        if self.model.distribution is None:
            raise CunetError("this model has no distribution head (train with distribution_head = true)")
        _, logits = self._run(load_photo(image), points or [], histogram, saturation, size or self.working_size)
        return torch.softmax(logits[0], dim=0)

    def _run(
        self, photo: Photo, points: list[PointHint], histogram, saturation: float | None, size: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(regression a*b* (1, 2, h, w), bin logits (1, Q, h, w) or None) at the working shape."""
        if size < 16:
            raise CunetError(f"working size must be at least 16, got {size}")
        height, width = photo.rgb.shape[:2]
        for point in points:
            if not point.inside(width, height):
                raise CunetError(f"point ({point.x:g}, {point.y:g}) lies outside the {width}x{height} image")
        shape = working_shape(height, width, size)
        small = _resize(_photo_tensor(photo), shape)
        lightness = rgb_to_lab(small)[:, :1]
        scaled = [p.scaled(shape[1] / width, shape[0] / height) for p in points]
        point_maps = encode_point_hints(scaled, *shape)[None]
        try:
            global_hint = encode_global_hint(histogram, saturation)[None]
        except ValueError as error:
            raise CunetError(str(error)) from None
        parameter = next(self.model.parameters())
        inputs = network_inputs(lightness, point_maps, self.model.config.propagated_hints)
        inputs = inputs.to(parameter.device, parameter.dtype)
        if self.model.global_hint is None:
            global_hint = None
        else:
            global_hint = global_hint.to(parameter.device, parameter.dtype)
        predicted, logits = self.model(inputs, global_hint)
        return denormalize_ab(predicted.float().cpu()), None if logits is None else logits.float().cpu()
