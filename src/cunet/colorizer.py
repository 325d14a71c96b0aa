"""The one inference pipeline, shared by the CLI, the web app, evaluation and benchmarks.

The network runs at a working size (the scale it was trained at, short side = `working_size`),
its a*b* is up-sampled to the photo's full size and joined with the photo's own full-resolution L*.
A model with a distribution head offers two a*b* estimates: the regression head (the safe average
of plausible colours) and the annealed mean of the per-pixel distribution over the a*b* bins (more
vivid); `decode` picks one or a blend, and `distribution` gives the per-pixel probabilities.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cunet.checkpoint import MAX_CHROMA_GAIN, load_model, stored_info
from cunet.color import denormalize_ab, fit_in_gamut, lab_to_rgb, rgb_to_lab, srgb_lightness
from cunet.errors import CunetError
from cunet.gamut import annealed_mean_of_head, bin_probabilities, in_gamut_bins, num_bins
from cunet.hints import (MAX_HINT_PATCHES, Hints, PointHint, encode_global_hint, encode_point_hints, network_inputs,
                         photo_histogram)
from cunet.io import Photo, load_photo
from cunet.join import join_full_resolution
from cunet.model import CUNet
from cunet.point_fill import DEFAULT_FILL, FillSettings, fill_points, fill_transform, hint_reach
from cunet.propagation import DomainTransform
from cunet.runtime import check_backend, make_runtime
from cunet.upsample import DEFAULT_UPSAMPLER, check_upsampler, guide_shape, guided_coefficients

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray | Photo
DEFAULT_WEIGHTS = "default.safetensors"
DECODINGS = ("regression", "annealed", "blend")
#: The global hint of automatic colouring (no histogram or reference given): none, or the photo's own
#: histogram as the model's histogram head predicts it from L* (`Colorizer.predicted_histogram`).
AUTOMATIC_GLOBALS = ("none", "predicted")
#: Working short sides users may ask for: below 16 the three poolings leave nothing; above 1024 the
#: network's activations alone pass several GB, for no gain from a model trained at 128-256.
WORKING_SIZE_RANGE = (16, 1024)
#: The working shape's long side is at most this many times its short side: a 3 x 20000 strip is run
#: at 8 x 1024 instead of 128 x 853,336.
MAX_WORKING_ASPECT = 8
#: Variants are picked among this many nearest gallery photos: the nearest, then one typical photo
#: of each other colour group among them (`Gallery.spread`). Measured on the val photos with the
#: bundled model (benchmarks/variant_spread.py; best of 4 over automatic, macro): k-medoids on the
#: Hellinger distance from 32 / 64 / 128 +1.02 / +1.08 / +1.07 dB; on plain histograms (Euclidean)
#: from 32 / 64 +0.95 / +0.95; farthest-point sampling from 16 +0.90.
VARIANT_POOL = 64
#: Without a distribution head, suggestions pool the colour histograms of this many nearest gallery photos.
SUGGESTION_MATCHES = 16


#: With this many points and strokes the automatic palette and chroma gain have given way everywhere,
#: not only in the hints' regions (`Colorizer.hints_lead`); fewer take a share of the way. Measured
#: (benchmarks/hints_lead.py, docs/v3.md section 8): of 1, 5 and 10, the largest whose 10- and 50-point
#: PSNR is no lower than the previous default's, so that a first click changes the rest of the photo least.
HINTS_FOR_FULL_WAY = 10

#: A point whose colour moves more than this (a*b* units) to fit the gamut at its lightness is reported.
MOVED_NOTE = 10.0


def _rgb_hex(rgb) -> str:
    """'#rrggbb' of one sRGB colour, 3 values in [0, 1]."""
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in rgb)


def _hex(lab: torch.Tensor) -> str:
    """'#rrggbb' of one L*a*b* colour (3,)."""
    return _rgb_hex(lab_to_rgb(lab.float().view(3, 1, 1)).flatten())


@dataclass(frozen=True)
class PointColour:
    """What a colour point will show: the asked colour, the pixel's L*, the colour at that L* inside
    sRGB's gamut (what the output can show), and how far the a*b* moved."""

    index: int
    asked: str
    lightness: float
    shown: str
    moved: float

    def note(self) -> str:
        return f"point {self.index + 1}: {self.asked} at L*={self.lightness:.0f} shows as {self.shown}"

    def to_json(self) -> dict:
        return {"asked": self.asked, "lightness": round(self.lightness, 1), "shown": self.shown,
                "moved": round(self.moved, 1)}


@dataclass(frozen=True)
class Suggestion:
    """A likely colour at a pixel: '#rrggbb' (at the pixel's own lightness), its a*b*, its probability."""

    color: str
    a: float
    b: float
    p: float

    def to_json(self) -> dict:
        return {"color": self.color, "a": round(self.a, 2), "b": round(self.b, 2), "p": round(self.p, 4)}


def check_decoding(decode: str, temperature: float, blend: float, has_head: bool, chroma_gain: float = 1.0) -> None:
    """The one rule for decoding settings: `Colorizer` applies it, and export before storing them."""
    if isinstance(chroma_gain, bool) or not isinstance(chroma_gain, numbers.Real) or not 0 < chroma_gain <= MAX_CHROMA_GAIN:
        raise CunetError(f"chroma gain must lie in (0, {MAX_CHROMA_GAIN:g}], got {chroma_gain!r}")
    if decode not in DECODINGS:
        raise CunetError(f"decode must be one of {', '.join(DECODINGS)}, got {decode!r}")
    if decode != "regression" and not has_head:
        raise CunetError(f"decode {decode!r} needs a model with a distribution head")
    if not 0 < temperature <= 1 or not 0 <= blend <= 1:
        raise CunetError("temperature must lie in (0, 1] and blend in [0, 1]")


def check_automatic_global(setting: str, has_head: bool, temperature: float = 1.0) -> None:
    """The one rule for the automatic global hint: `Colorizer` applies it, and export before storing it."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.05 <= temperature <= 1:
        raise CunetError(f"histogram temperature must lie in [0.05, 1], got {temperature!r}")
    if setting not in AUTOMATIC_GLOBALS:
        raise CunetError(f"automatic global hint must be one of {', '.join(AUTOMATIC_GLOBALS)}, got {setting!r}")
    if setting == "predicted" and not has_head:
        raise CunetError("automatic global hint 'predicted' needs a model with a histogram head "
                         "(cunet fit-histogram-head adds one)")


def sharpened(histogram: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T) renormalised (T = 1: unchanged): a predicted histogram is the mean of the plausible
    ones, broader than any photo's own; a lower T keeps its likeliest colours."""
    if temperature == 1:
        return histogram
    powered = torch.exp((histogram.clamp_min(1e-30).log() - histogram.max().log()) / temperature)
    return powered / powered.sum()


def bundled_weights() -> Path:
    """Path of the default model that ships inside the package."""
    return Path(str(resources.files("cunet") / "weights" / DEFAULT_WEIGHTS))


def check_working_size(size) -> int:
    """A working short side: a whole number in WORKING_SIZE_RANGE."""
    low, high = WORKING_SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not low <= size <= high:
        raise CunetError(f"working size must be a whole number of pixels from {low} to {high}, got {size!r}")
    return int(size)


def working_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the short side near `short_side`, aspect kept, both multiples of 8 (three 2x poolings).

    The long side is capped at MAX_WORKING_ASPECT x short_side, so very thin photos stay small.
    """
    scale = min(short_side / min(height, width), MAX_WORKING_ASPECT * short_side / max(height, width))
    return (max(8, round(height * scale / 8) * 8), max(8, round(width * scale / 8) * 8))


def working_pixel(shape: tuple[int, int], size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    """(row, column) in a map of `shape` (h, w) of the photo pixel (x, y) of a photo of `size` (width, height)."""
    row = min(shape[0] - 1, max(0, int((y + 0.5) * shape[0] / size[1])))
    column = min(shape[1] - 1, max(0, int((x + 0.5) * shape[1] / size[0])))
    return row, column


def _resize(tensor: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *shape); antialiased when shrinking, bilinear when growing."""
    if tuple(tensor.shape[-2:]) == tuple(shape):
        return tensor
    shrinking = shape[0] < tensor.shape[-2] or shape[1] < tensor.shape[-1]
    return F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=shrinking)


def working_lab(rgb: torch.Tensor, short_side: int) -> torch.Tensor:
    """sRGB (1, 3, H, W) -> its L*a*b* (1, 3, h, w) at the working shape for `short_side`: what the
    network, the global-hint histograms and the gallery's descriptors all see."""
    return rgb_to_lab(_resize(rgb, working_shape(rgb.shape[-2], rgb.shape[-1], short_side)))


def _patch_means(points: list[PointHint], lightness: torch.Tensor) -> torch.Tensor:
    """The mean of L* (1, 1, h, w) over each point's patch (n,), from the integral image: the same
    cost for 10 points or 10,000."""
    from cunet.hints import _patch_bounds

    height, width = lightness.shape[-2:]
    integral = F.pad(lightness[0, 0].double().cumsum(0).cumsum(1), (1, 0, 1, 0))
    bounds = torch.tensor([_patch_bounds(p.y, p.size, height) + _patch_bounds(p.x, p.size, width) for p in points])
    y0, y1, x0, x1 = bounds.unbind(1)
    sums = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return (sums / ((y1 - y0) * (x1 - x0))).float()


def _fitted(points, lightness: torch.Tensor) -> tuple[PointHint, ...]:
    """The points with their a*b* fitted into sRGB's gamut at their patches' L* (n,): what each can
    show there (`cunet.color.fit_in_gamut`)."""
    if not points:
        return ()
    fitted = fit_in_gamut(lightness, torch.tensor([[p.a, p.b] for p in points]))
    return tuple(PointHint(p.x, p.y, a, b, p.size, p.strength, p.picked) for p, (a, b) in zip(points, fitted.tolist()))


@dataclass(frozen=True)
class NetworkOutputs:
    """One photo's network outputs at the working shape, what `Colorizer._decoded` turns into a*b*.

    `regression` (1, 2, h, w) and `head_features` (the distribution head's input, or None) are the
    outputs under the photo's global hint. Where the user's points or strokes speak, `reach` (1, 1, h, w)
    says how much (`Colorizer._reach`): there the chroma gain fades to 1 and, if the global hint was
    the automatic palette, `no_palette` holds the outputs without it, which take over. With enough
    hints to take over everywhere the network runs without the palette alone (`no_palette` None)."""

    regression: torch.Tensor
    head_features: torch.Tensor | None
    reach: torch.Tensor | None = None
    no_palette: tuple[torch.Tensor, torch.Tensor | None] | None = None


def _has_gain(decodings) -> bool:
    """Whether any (decode, temperature, blend[, chroma gain]) carries a gain other than 1."""
    return any(len(decoding) > 3 and decoding[3] != 1.0 for decoding in decodings)


def _photo_tensor(photo: Photo) -> torch.Tensor:
    return torch.from_numpy(photo.rgb).permute(2, 0, 1)[None]


@dataclass(eq=False)
class PreparedPhoto:
    """A photo decoded once, with what every later call reuses: its full-resolution pixels and, per
    working size, the working shape and L* there. An editor that re-colours on every click holds one."""

    photo: Photo
    _working: dict = field(default_factory=dict, repr=False)
    _transforms: dict = field(default_factory=dict, repr=False)
    #: (key, features) of the last encoding (conv1-4): a new global hint alone reuses it.
    _encoded: tuple | None = field(default=None, repr=False)
    #: The predicted histogram per (runtime, working size): the same for every later point change.
    _predicted: dict = field(default_factory=dict, repr=False)
    _fills: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full-resolution photo."""
        return self.photo.size

    def working(self, size: int) -> tuple[tuple[int, int], torch.Tensor]:
        """(working shape (h, w), L* (1, 1, h, w)) for a working short side, computed once."""
        width, height = self.size
        shape = working_shape(height, width, size)
        return shape, self.lightness_at(shape)

    def lightness_at(self, shape: tuple[int, int]) -> torch.Tensor:
        """The photo's L* (1, 1, h, w) resized to `shape` (antialiased), computed once per shape: the
        network's input and the guided up-sampler's guide."""
        shape = tuple(shape)
        if shape not in self._working:
            self._working[shape] = srgb_lightness(_resize(_photo_tensor(self.photo), shape))
        return self._working[shape]

    def patch_lightness(self, points: tuple[PointHint, ...]) -> torch.Tensor:
        """The mean full-resolution L* (n,) over each point's patch."""
        from cunet.hints import _patch_bounds

        width, height = self.size
        values = []
        for point in points:
            y0, y1 = _patch_bounds(point.y, point.size, height)
            x0, x1 = _patch_bounds(point.x, point.size, width)
            patch = torch.from_numpy(np.ascontiguousarray(self.photo.rgb[y0:y1, x0:x1])).permute(2, 0, 1)[None]
            values.append(srgb_lightness(patch).mean())
        return torch.stack(values) if values else torch.zeros(0)

    def fill_transforms(self, size: int,
                        settings: FillSettings = DEFAULT_FILL) -> tuple[DomainTransform, DomainTransform]:
        """The point fill's transforms at a working size (`cunet.point_fill`): this photo's L*, and a
        flat photo's of the same shape (what an open region would give), made on the first point."""
        key = (size, *settings.transform_key)
        if key not in self._fills:
            shape, lightness = self.working(size)
            self._fills[key] = fill_transform(lightness, settings), fill_transform(torch.zeros(1, 1, *shape), settings)
        return self._fills[key]

    def domain_transform(self, size: int) -> DomainTransform:
        """The point spread's L*-only half at a working size, made on the first colour point:
        later point changes re-run only the passes over the points (`cunet.propagation`)."""
        if size not in self._transforms:
            self._transforms[size] = DomainTransform(self.working(size)[1])
        return self._transforms[size]


@dataclass
class Colorizer:
    """A loaded CU-net plus how to run it. `colorize` is what users call."""

    model: CUNet
    working_size: int = 128
    info: dict = field(default_factory=dict)
    decode: str = "regression"  # or "annealed" / "blend" (needs a distribution head)
    temperature: float = 0.38  # of the annealed mean: 1 = the plain mean, towards 0 the mode
    blend: float = 0.5  # share of the annealed mean in "blend"
    backend: str = "auto"  # how the network runs: cunet.runtime.BACKENDS
    automatic_global: str = "none"  # or "predicted" (needs a histogram head): AUTOMATIC_GLOBALS
    histogram_temperature: float = 1.0  # of the predicted histogram: p^(1/T), renormalised; below 1 sharper
    upsample: str = DEFAULT_UPSAMPLER  # to full resolution: "guided" (by the photo's L*) or "bilinear"
    point_fill: bool = True  # after the network, correct towards each point over its region (cunet.point_fill)
    #: How far that correction reaches and what stops it; the same reach is where the automatic palette
    #: and the chroma gain give way to the points (`hints_lead`).
    fill_settings: FillSettings = DEFAULT_FILL
    chroma_gain: float = 1.0  # the decoded a*b* times this: the plainest lever for more (or less) colour
    #: The automatic palette and the chroma gain (above or below 1) give way to points and strokes over
    #: their regions and, in proportion to their count, everywhere, fully at `hints_for_full_way` of them
    #: (`NetworkOutputs`); False keeps them everywhere (for comparison: benchmarks/hints_lead.py).
    hints_lead: bool = True
    hints_for_full_way: int = HINTS_FOR_FULL_WAY
    name: str = "the model"  # what messages call it: its file, when it came from one

    def __post_init__(self) -> None:
        check_decoding(self.decode, self.temperature, self.blend, self.model.distribution is not None,
                       self.chroma_gain)
        check_automatic_global(self.automatic_global, self.model.histogram is not None, self.histogram_temperature)
        self.working_size = check_working_size(self.working_size)
        self.backend = check_backend(self.backend)
        self.upsample = check_upsampler(self.upsample)
        if not isinstance(self.fill_settings, FillSettings):
            raise CunetError(f"fill_settings must be a cunet.point_fill.FillSettings, got {self.fill_settings!r}")
        full_way = self.hints_for_full_way
        if isinstance(full_way, bool) or not isinstance(full_way, numbers.Integral) or full_way < 1:
            raise CunetError(f"hints_for_full_way must be a whole number of hints, 1 or more; got {full_way!r}")
        self._runtime = None
        if self.model.config.global_bins not in (0, num_bins()):
            raise CunetError(f"this model's global hint has {self.model.config.global_bins} bins; "
                             f"cunet's a*b* gamut has {num_bins()}")

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, working_size: int | None = None, decode: str | None = None,
        backend: str = "auto", automatic_global: str | None = None, histogram_temperature: float | None = None,
        upsample: str = DEFAULT_UPSAMPLER, chroma_gain: float | None = None,
    ) -> Colorizer:
        """The bundled default model (path None) or a weights/checkpoint file. `decode`,
        `chroma_gain` and `automatic_global` default to the choices stored with the weights (measured
        when they were exported), else the regression head, no gain and no global hint; `backend`
        picks how the network runs (`cunet.runtime`)."""
        path = bundled_weights() if path is None else Path(path)
        model, metadata = load_model(path)
        info = stored_info(path, metadata)
        stored = info["decode"]
        try:
            return cls(model, working_size or info["working_size"], info, decode or stored["method"],
                       stored["temperature"], stored["blend"], backend, automatic_global or info["automatic_global"],
                       info["histogram_temperature"] if histogram_temperature is None else histogram_temperature,
                       upsample, chroma_gain=stored["gain"] if chroma_gain is None else chroma_gain, name=str(path))
        except CunetError as error:
            if (working_size, decode, automatic_global, histogram_temperature, chroma_gain) == (None,) * 5:
                raise CunetError(f"{path}: {error}") from None  # the file's own settings are wrong
            raise

    @property
    def runtime(self):
        """The network's runtime (`cunet.runtime`), made on first use: ONNX export takes ~0.2 s."""
        if self._runtime is None:
            self._runtime = make_runtime(self.model, self.backend)
        return self._runtime

    def prepare(self, image: ImageInput | PreparedPhoto) -> PreparedPhoto:
        """Decode a photo once for several calls (`colorize`, `predict_ab`, `distribution`, `suggest`)."""
        return image if isinstance(image, PreparedPhoto) else PreparedPhoto(load_photo(image))

    def histogram_of(self, image: ImageInput) -> torch.Tensor:
        """A colour photo's global-hint histogram, taken at the working size as in training."""
        return photo_histogram(working_lab(_photo_tensor(load_photo(image)), self.working_size)[0, 1:])

    def global_histogram(self, hints: Hints) -> torch.Tensor | None:
        """The histogram the network gets: the given one, else the reference photo's, else none."""
        if hints.histogram is not None:
            return hints.histogram
        if hints.reference is not None:
            try:
                return self.histogram_of(hints.reference)
            except CunetError as error:
                raise CunetError(f"reference: {error}") from None
        return None

    @torch.no_grad()
    def colorize(
        self,
        image: ImageInput | PreparedPhoto,
        hints: Hints | None = None,
        *,
        points: list | None = None,
        histogram: torch.Tensor | np.ndarray | None = None,
        saturation: float | None = None,
        reference: ImageInput | None = None,
        size: int | None = None,
        strokes: list | None = None,
    ) -> Image.Image:
        """Colour a photo; returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size.

        Args:
            image: path, encoded bytes, PIL image, or array (gray, RGB, RGBA; uint8, uint16 or float in
                [0, 1]), or a `PreparedPhoto` from `prepare` (decoded once for many calls).
            hints: a validated `Hints`; or give its parts as the keywords below (not both).
            points: colour points in the input's pixel coordinates: PointHint or (x, y, '#rrggbb'[, size]).
            histogram: a global a*b* histogram over the in-gamut bins (overrides `reference`).
            saturation: a global mean saturation in [0, 1].
            reference: a colour photo (path or image) whose colour histogram becomes the global hint.
            size: working short side (default: the model's training scale).
            strokes: colour scribbles: `cunet.hints.StrokeHint`s (polylines in the input's pixels).

        Bad input of any kind raises CunetError with a message meant for the user.
        """
        prepared = self.prepare(image)
        hints = self._hints(hints, points, histogram, saturation, reference, strokes)
        return self.finish(prepared, self.predict_ab(prepared, hints, size=size))

    def colour_field(self, prepared: PreparedPhoto, ab: torch.Tensor,
                     target: tuple[int, int] | None = None) -> torch.Tensor:
        """What the join up-samples for a*b* (1, 2, h, w) of this photo: the a*b* itself (bilinear) or
        the guided up-sampler's coefficients (`cunet.upsample`), for an output of `target` (H, W)
        (default: the photo's own size; the studio's preview is smaller)."""
        if self.upsample == "bilinear":
            return ab
        width, height = prepared.size
        target = (height, width) if target is None else (min(target[0], height), min(target[1], width))
        small = tuple(ab.shape[-2:])
        if target[0] <= small[0] and target[1] <= small[1]:
            return ab
        guide = prepared.lightness_at(guide_shape(small, target))
        return guided_coefficients(ab, prepared.lightness_at(small), guide)

    def finish(self, prepared: PreparedPhoto, ab: torch.Tensor, threads: int | None = None) -> Image.Image:
        """The photo's own full-resolution L* joined with a*b* (1, 2, h, w), up-sampled as `upsample`
        says -> its colour image (with its alpha, if it had one). `threads` for the join: PyTorch's
        count by default."""
        photo = prepared.photo
        rgb8 = join_full_resolution(photo.rgb, self.colour_field(prepared, ab), threads=threads)
        if photo.alpha is None:
            return Image.fromarray(rgb8)
        alpha = np.clip(np.rint(photo.alpha * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.dstack([rgb8, alpha]))

    def _hints(self, hints, points, histogram, saturation, reference, strokes=None) -> Hints:
        """The keyword form of the hints -> one validated Hints (a reference image becomes its histogram)."""
        given = any(value is not None for value in (points, histogram, saturation, reference, strokes))
        if hints is not None:
            if not isinstance(hints, Hints):
                raise CunetError(f"hints must be a cunet.hints.Hints, got {type(hints).__name__}")
            if given:
                raise CunetError("give either hints or points/strokes/histogram/saturation/reference, not both")
            return hints
        if points is not None and not isinstance(points, (list, tuple)):
            raise CunetError(f"points must be a list of points, got {type(points).__name__}")
        if strokes is not None and not isinstance(strokes, (list, tuple)):
            raise CunetError(f"strokes must be a list of cunet.hints.StrokeHint, got {type(strokes).__name__}")
        if reference is not None and histogram is None and not isinstance(reference, (str, os.PathLike)):
            histogram, reference = self.histogram_of(reference), None
        return Hints(tuple(points or ()), histogram, saturation, reference, tuple(strokes or ()))

    @torch.no_grad()
    def predict_ab(self, image: ImageInput | PreparedPhoto, hints: Hints | None = None,
                   size: int | None = None, chroma_gain: float | None = None,
                   palette: torch.Tensor | None = None) -> torch.Tensor:
        """The network's a*b* (1, 2, h, w) at the working shape, decoded as `decode` says, with the
        points filled in (`point_fill`). `chroma_gain` replaces this colorizer's own (1: the colour
        as decoded, what a histogram fed back to the network must be taken from). `palette`: an
        automatic global hint (Q,) in place of the predicted histogram — a film's shot palette, made
        from its own automatic colours —, which gives way to the hints as the predicted one does."""
        prepared, hints = self.prepare(image), hints or Hints()
        key = self._encoding_key(prepared, hints, size)
        decoding = self._decoding(chroma_gain)
        outputs = self._run(prepared, hints, size, key, [decoding], palette)
        return self._filled(prepared, key, self._decoded(outputs, decoding))

    def _decoding(self, chroma_gain: float | None = None) -> tuple[str, float, float, float]:
        """This colorizer's (decode, temperature, blend, chroma gain), the gain replaced if given."""
        return self.decode, self.temperature, self.blend, self.chroma_gain if chroma_gain is None else chroma_gain

    def _filled(self, prepared: PreparedPhoto, key: tuple, ab: torch.Tensor) -> torch.Tensor:
        """a*b* corrected towards the encoding key's points over their regions (`cunet.point_fill`), if
        `point_fill`."""
        _, working, scaled = key
        if not self.point_fill or not scaled:
            return ab
        return fill_points(ab, list(scaled), *prepared.fill_transforms(working, self.fill_settings),
                           self.fill_settings)

    @torch.no_grad()
    def predict_ab_batch(self, photos: list[PreparedPhoto], hints: Hints | None = None,
                         size: int | None = None, chroma_gain: float | None = None) -> list[torch.Tensor]:
        """`predict_ab` for photos of one working shape, the same hints for each, in one network pass:
        what batch colouring runs (`cunet.batch`)."""
        hints = hints or Hints()
        keys = [self._encoding_key(prepared, hints, size) for prepared in photos]
        prepared_inputs = [self._network_input(prepared, key) for prepared, key in zip(photos, keys)]
        if len({tuple(inputs.shape) for inputs in prepared_inputs}) > 1:
            raise CunetError("predict_ab_batch needs photos of one working shape")
        features = self.runtime.encode(torch.cat(prepared_inputs))
        if self.automatic_global == "predicted" and not hints.has_local():  # the batch's encoding is the point-free one
            for prepared, key, histogram in zip(photos, keys, self._histograms_of(features)):
                prepared._predicted.setdefault(key, histogram)
        gives_way = self._palette_gives_way(hints, keys[0])
        batch, plain = self._decode_giving_way(
            features, hints, gives_way,
            lambda: None if self.model.global_hint is None else
            torch.cat([self._global_hint(hints, prepared, size) for prepared in photos]))

        def one(outputs, i):
            return denormalize_ab(outputs[0][i:i + 1]), None if outputs[1] is None else outputs[1][i:i + 1]

        decoding = self._decoding(chroma_gain)
        needs_reach = gives_way or _has_gain([decoding])
        return [self._filled(prepared, key, self._decoded(NetworkOutputs(
                    *one(batch, i), self._reach(prepared, key, hints) if needs_reach else None,
                    None if plain is None else one(plain, i)), decoding))
                for i, (prepared, key) in enumerate(zip(photos, keys))]

    @torch.no_grad()
    def predict_ab_decodings(self, image: ImageInput | PreparedPhoto, decodings: list[tuple],
                             hints: Hints | None = None, size: int | None = None) -> list[torch.Tensor]:
        """`predict_ab` for each (decode, temperature, blend, chroma gain) of `decodings` from one
        network pass: what choosing the stored decoding compares (`benchmarks/decoding_choice.py`).
        A 3-tuple means no gain (1), whatever this colorizer's own is."""
        for decode, temperature, blend, *gain in decodings:
            check_decoding(decode, temperature, blend, self.model.distribution is not None, *gain)
        prepared, hints = self.prepare(image), hints or Hints()
        key = self._encoding_key(prepared, hints, size)
        outputs = self._run(prepared, hints, size, key, decodings)
        return [self._filled(prepared, key, self._decoded(outputs, decoding)) for decoding in decodings]

    def _decoded(self, outputs: NetworkOutputs, decoding: tuple | None = None) -> torch.Tensor:
        """The a*b* the user sees from the network's outputs, as `decoding` (decode, temperature,
        blend[, chroma gain]) says; by default this colorizer's own. Where hints speak (`outputs.reach`)
        the outputs without the automatic palette take over and the gain fades to 1: a point's region
        gets the network's answer to the point, not a palette or a gain tuned for automatic colour.
        The gain scales the network's colour before the points' correction, so points keep their
        exact (gamut-fitted) colour; colour pushed out of the gamut is clipped in the join."""
        decode, temperature, blend, *gain = decoding or self._decoding()
        gain = gain[0] if gain else 1.0

        def decoded(regression, head_features):
            if decode == "regression":
                return regression
            head = self.model.distribution
            annealed = annealed_mean_of_head(head_features, head.weight.detach(), head.bias.detach(), temperature)
            return annealed if decode == "annealed" else blend * annealed + (1 - blend) * regression

        ab = decoded(outputs.regression, outputs.head_features)
        reach = outputs.reach
        if reach is None:
            return self._finite(ab if gain == 1.0 else ab * gain)
        if outputs.no_palette is not None:
            ab = torch.lerp(ab, decoded(*outputs.no_palette), reach)
        return self._finite(ab if gain == 1.0 else ab * (gain + (1.0 - gain) * reach))

    def _reach(self, prepared: PreparedPhoto, key: tuple, hints: Hints) -> torch.Tensor | None:
        """How much the user's hints speak for each pixel (1, 1, h, w), if hints lead: each point's or
        stroke's own region (`cunet.point_fill.hint_reach`; the network sees every point at full
        strength, so a point's `strength` does not narrow it), and everywhere at least the hints'
        count over `hints_for_full_way`."""
        _, working, scaled = key
        if not self.hints_lead or not scaled:
            return None
        shape = prepared.working(working)[0]
        if self._full_way(hints):
            return torch.ones(1, 1, *shape)
        floor = (len(hints.points) + len(hints.strokes)) / self.hints_for_full_way
        return hint_reach(list(scaled), shape, *prepared.fill_transforms(working, self.fill_settings),
                          self.fill_settings).clamp_min(floor)

    def _full_way(self, hints: Hints) -> bool:
        """Whether the hints are enough to take over everywhere (`hints_for_full_way`)."""
        return self.hints_lead and len(hints.points) + len(hints.strokes) >= self.hints_for_full_way

    def _palette_gives_way(self, hints: Hints, key: tuple, palette: torch.Tensor | None = None) -> bool:
        """Whether the global hint is an automatic palette (predicted, or given as `palette`) and the
        key's points take over from it."""
        automatic = palette is not None or self.automatic_global == "predicted"
        return (self.hints_lead and bool(key[2]) and automatic and self.model.global_hint is not None
                and hints.histogram is None and hints.reference is None)

    def _plain_hint(self, hints: Hints) -> torch.Tensor:
        """The (1, Q + 3) global hint with no histogram (the saturation, if given)."""
        return encode_global_hint(None, hints.saturation)[None]

    def _finite(self, values: torch.Tensor) -> torch.Tensor:
        """`values`, or a CunetError if the network gave NaN or Inf: weights that passed every check
        when read can still overflow (no picture of garbage is written)."""
        if not bool(torch.isfinite(values).all()):
            raise CunetError(f"{self.name}: the network gave NaN or infinite colours; its weights are broken")
        return values

    @torch.no_grad()
    def distribution(self, image: ImageInput | PreparedPhoto, hints: Hints | None = None, size: int | None = None) -> torch.Tensor:
        """Per-pixel probabilities (Q, h, w) over the in-gamut a*b* bins (`cunet.gamut.in_gamut_bins`)
        at the working shape: what colour suggestions read. Needs a distribution head."""
        if self.model.distribution is None:
            raise CunetError("this model has no distribution head (train with distribution_head = true)")
        outputs = self._run(self.prepare(image), hints or Hints(), size)
        head = self.model.distribution

        def probabilities(head_features):
            logits = head(head_features.to(head.weight.device, head.weight.dtype)).float().cpu()
            return bin_probabilities(logits[0]).movedim(-1, 0)

        chances = probabilities(outputs.head_features)
        if outputs.no_palette is not None:  # where the hints lead, the colouring the user sees has no palette
            chances = torch.lerp(chances, probabilities(outputs.no_palette[1]), outputs.reach[0])
        return self._finite(chances)

    def check_hints(self, image: ImageInput | PreparedPhoto, hints: Hints, size: int | None = None) -> None:
        """Whether `hints` can colour this photo (points and strokes inside it, the patch cap), without
        running the network: a CunetError saying what is wrong, else nothing."""
        self._encoding_key(self.prepare(image), hints, size)

    def _encoding_key(self, prepared: PreparedPhoto, hints: Hints, size: int | None) -> tuple:
        """What the encoding (conv1-4) depends on: the runtime, the working size and the points there."""
        size = self.working_size if size is None else check_working_size(size)
        width, height = prepared.size
        for point in hints.points:
            if not point.inside(width, height):
                raise CunetError(f"point ({point.x:g}, {point.y:g}) lies outside the {width}x{height} image")
        for index, stroke in enumerate(hints.strokes):
            if not stroke.inside(width, height):
                raise CunetError(f"stroke {index + 1} leaves the {width}x{height} image")
        shape, lightness = prepared.working(size)
        scale_x, scale_y = shape[1] / width, shape[0] / height
        bound = len(hints.points) + sum(stroke.sample_bound(scale_x, scale_y) for stroke in hints.strokes)
        if bound > MAX_HINT_PATCHES:  # checked before a patch is made: the cap bounds the work
            raise CunetError(f"the points and strokes make over {MAX_HINT_PATCHES:,} hint patches at the "
                             f"working size; use fewer or shorter strokes")
        scaled = [p.scaled(scale_x, scale_y) for p in hints.points]
        for stroke in hints.strokes:
            scaled += stroke.samples(scale_x, scale_y)
        return self.runtime, size, _fitted(scaled, _patch_means(scaled, lightness) if scaled else None)

    def point_colours(self, image: ImageInput | PreparedPhoto, hints: Hints) -> list[PointColour]:
        """For each point: the asked colour, the L* there, the colour it will show and how far it moved;
        the colour is fitted at the photo's own full-resolution L* on the patch, what the markers and
        notes report. The network and the fill get the fit at the mean working-size L* of the patch,
        which on a large photo averages a wider area (the two agree where the patch's lightness is even)."""
        prepared = self.prepare(image)
        lightness = prepared.patch_lightness(hints.points)
        shown = _fitted(hints.points, lightness)
        colours = []
        for index, (point, fitted, value) in enumerate(zip(hints.points, shown, lightness.tolist())):
            moved = float(np.hypot(point.a - fitted.a, point.b - fitted.b))
            asked = point.picked or _hex(torch.tensor([value, point.a, point.b]))
            colours.append(PointColour(index, asked, value, _hex(torch.tensor([value, fitted.a, fitted.b])), moved))
        return colours

    def _network_input(self, prepared: PreparedPhoto, key: tuple) -> torch.Tensor:
        """The network's input (1, C, h, w) for an encoding key: L*, the point maps (and their spread)."""
        _, size, scaled = key
        shape, lightness = prepared.working(size)
        point_maps = encode_point_hints(list(scaled), *shape)[None]
        propagate = self.model.config.propagated_hints
        transform = prepared.domain_transform(size) if propagate and scaled else None
        return network_inputs(lightness, point_maps, propagate, transform)

    def _global_hint(self, hints: Hints, prepared: PreparedPhoto, size: int | None,
                     palette: torch.Tensor | None = None) -> torch.Tensor | None:
        """The (1, Q + 3) global hint: the given histogram or reference, else the automatic `palette`
        if given, else (automatic global "predicted") the photo's predicted histogram, else none; with
        the saturation, if given."""
        if self.model.global_hint is None:
            return None
        histogram = self.global_histogram(hints)
        if histogram is None:
            histogram = palette
        if histogram is None and self.automatic_global == "predicted":
            histogram = self.predicted_histogram(prepared, size)
        return encode_global_hint(histogram, hints.saturation)[None]

    @torch.no_grad()
    def predicted_histogram(self, image: ImageInput | PreparedPhoto, size: int | None = None) -> torch.Tensor:
        """The photo's own a*b* histogram (Q,) over the in-gamut bins as the histogram head predicts
        it from L* alone (no points: a point added later must not change the whole photo's palette),
        sharpened by `histogram_temperature`. Computed once per photo and working size."""
        if self.model.histogram is None:
            raise CunetError("this model has no histogram head (cunet fit-histogram-head adds one)")
        prepared = self.prepare(image)
        key = self._encoding_key(prepared, Hints(), size)
        if key not in prepared._predicted:
            if prepared._encoded is not None and prepared._encoded[0] == key:
                features = prepared._encoded[1]
            else:
                features = self.runtime.encode(self._network_input(prepared, key))
            prepared._predicted[key] = self._histograms_of(features)[0]
        return sharpened(prepared._predicted[key], self.histogram_temperature)

    def _histograms_of(self, features: tuple) -> torch.Tensor:
        """The histogram head on an encoding's conv4 features (any runtime's) -> (B, Q) on the CPU."""
        c4 = torch.as_tensor(features[3]).to(self.model.histogram.layers[0].weight.device)
        return self.model.predict_histogram(c4).cpu()

    def _run(self, prepared: PreparedPhoto, hints: Hints, size: int | None,
             key: tuple | None = None, decodings: list[tuple] = (), palette: torch.Tensor | None = None
             ) -> NetworkOutputs:
        """The network's outputs at the working shape; the photo's last encoding (conv1-4) is reused
        when only the global hint changed. `key`: the `_encoding_key`, when the caller has it;
        `decodings`: those the outputs are for (the hints' reach is needed only under a gain or the
        palette); `palette`: as `predict_ab` takes it."""
        key = self._encoding_key(prepared, hints, size) if key is None else key
        if prepared._encoded is not None and prepared._encoded[0] == key:
            features = prepared._encoded[1]
        else:
            features = self.runtime.encode(self._network_input(prepared, key))
            prepared._encoded = (key, features)
        gives_way = self._palette_gives_way(hints, key, palette)
        (predicted, head_features), plain = self._decode_giving_way(
            features, hints, gives_way, lambda: self._global_hint(hints, prepared, size, palette))
        no_palette = None if plain is None else (denormalize_ab(plain[0]), plain[1])
        reach = self._reach(prepared, key, hints) if gives_way or _has_gain(decodings) else None
        return NetworkOutputs(denormalize_ab(predicted), head_features, reach, no_palette)

    def _decode_giving_way(self, features: tuple, hints: Hints, gives_way: bool, global_hint) -> tuple:
        """(the decoder's outputs under `global_hint()`, the outputs without the palette or None) for an
        encoding of B photos: where the palette gives way both passes run, unless the hints take over
        everywhere (`hints_for_full_way`), where one pass without the palette is all there is to show."""
        plain = self._plain_hint(hints).repeat(features[0].shape[0], 1) if gives_way else None
        if gives_way and self._full_way(hints):
            return self.runtime.decode(features, plain), None
        main = self.runtime.decode(features, global_hint())
        return main, None if plain is None else self.runtime.decode(features, plain)

    def match_references(self, image: ImageInput | PreparedPhoto, k: int, gallery=None) -> list[int]:
        """Indices of k gallery photos for this gray photo: the nearest (eq. 24) first, then one typical
        photo of each other colour group among the VARIANT_POOL nearest, so that k colourings differ."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 64:
            raise CunetError(f"the number of variants must be a whole number from 1 to 64, got {k!r}")
        gallery, order = self._gallery_order(image, gallery)
        return gallery.spread(order, int(k), max(VARIANT_POOL, int(k)))

    def _gallery_order(self, image: ImageInput | PreparedPhoto, gallery) -> tuple[object, torch.Tensor]:
        """(the gallery, its indices nearest first by the descriptor it offers this model)."""
        from cunet.gallery import bundled_gallery

        gallery = bundled_gallery() if gallery is None else gallery
        prepared = self.prepare(image)
        orders = [gallery.rank(self._gallery_query(prepared, gallery, descriptor), descriptor)
                  for descriptor in gallery.descriptor_for(self.model).split("+")]
        # "predicted+features": the first match by the first descriptor, the others by the second.
        if len(orders) == 1:
            return gallery, orders[0]
        return gallery, torch.cat([orders[0][:1], orders[1][orders[1] != orders[0][0]]])

    def _gallery_query(self, prepared: PreparedPhoto, gallery, descriptor: str) -> torch.Tensor:
        if descriptor == "predicted":  # the a*b* histogram of this model's own automatic colouring, as decoded
            return photo_histogram(self.predict_ab(prepared, size=gallery.working_size, chroma_gain=1.0)[0])
        return gallery.describe(self.model, prepared.working(gallery.working_size)[1], descriptor)

    @torch.no_grad()
    def variants(self, image: ImageInput | PreparedPhoto, k: int, gallery=None,
                 hints: Hints | None = None, size: int | None = None) -> list[tuple[Hints, Image.Image]]:
        """k colourings from k gallery photos (`match_references`), each one's a*b* histogram as the
        global hint (with the points and saturation of `hints`, if given): the paper's "variety of
        reasonable colouring effects"."""
        from cunet.gallery import bundled_gallery

        gallery = bundled_gallery() if gallery is None else gallery
        prepared = self.prepare(image)
        base = hints or Hints()
        results = []
        for index in self.match_references(prepared, k, gallery):
            chosen = Hints(base.points, gallery.histograms[index], base.saturation, strokes=base.strokes)
            results.append((chosen, self.colorize(prepared, chosen, size=size)))
        return results

    @torch.no_grad()
    def colour_probabilities(self, image: ImageInput | PreparedPhoto, hints: Hints | None = None,
                             gallery=None) -> tuple[torch.Tensor, str]:
        """Per-pixel probabilities over the in-gamut bins, (Q, h, w), and where they come from: "model"
        (the distribution head, given `hints`) or, for a model without a head, "gallery": the pooled
        colour histograms of the nearest gallery photos, the same at every pixel, (Q, 1, 1)."""
        prepared = self.prepare(image)
        if self.model.distribution is not None:
            return self.distribution(prepared, hints), "model"
        gallery, order = self._gallery_order(prepared, gallery)
        return gallery.histograms[order[:SUGGESTION_MATCHES]].mean(0)[:, None, None], "gallery"

    def suggest(self, image: ImageInput | PreparedPhoto, x: float, y: float, top: int = 8,
                hints: Hints | None = None, gallery=None) -> tuple[list[Suggestion], str]:
        """The `top` most likely colours at pixel (x, y) of the photo, most likely first, and where they
        come from ("model" or "gallery", see `colour_probabilities`). Each colour is shown at the
        pixel's own lightness, as it would appear there."""
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or not 1 <= top <= 64:
            raise CunetError(f"top must be a whole number from 1 to 64, got {top!r}")
        prepared = self.prepare(image)
        width, height = prepared.size
        probe = PointHint(x, y, 0.0, 0.0, 1)  # checks x and y like any point
        if not probe.inside(width, height):
            raise CunetError(f"pixel ({x:g}, {y:g}) lies outside the {width}x{height} image")
        probabilities, source = self.colour_probabilities(prepared, hints, gallery)
        row, column = working_pixel(probabilities.shape[-2:], prepared.size, probe.x, probe.y)
        values, bins = torch.topk(probabilities[:, row, column], min(int(top), probabilities.shape[0]))
        shape, lightness = prepared.working(self.working_size)
        l_row, l_column = working_pixel(shape, prepared.size, probe.x, probe.y)
        ab = in_gamut_bins()[bins]
        lab = torch.cat([lightness[0, :, l_row, l_column].expand(len(bins))[:, None], ab], dim=1)
        rgb = lab_to_rgb(lab.T[:, :, None])[:, :, 0].T
        return [Suggestion(_rgb_hex(colour), float(a), float(b),
                           float(p)) for colour, (a, b), p in zip(rgb, ab.tolist(), values)], source
