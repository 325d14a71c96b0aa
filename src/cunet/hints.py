"""User hints -> network inputs, and their simulation from ground truth for training.

Local hints (Zhang et al. 2017): an a*b* map and a mask, both zero except in small square patches
where a colour was given. Global hint: an a*b* histogram over the in-gamut bins and/or a mean
saturation, each with an "is given" flag so that "not given" differs from "gray".

This module owns the one validated hint value, `Hints`: the CLI's text and JSON formats, the web
app and the Python API only produce it, so every front end accepts and refuses the same things with
the same messages.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cunet.color import mean_saturation, normalize_ab, normalize_l, rgb_to_lab
from cunet.errors import CunetError
from cunet.fields import shorten as _short
from cunet.gamut import ab_histogram, num_bins
from cunet.io import existing_file
from cunet.propagation import DomainTransform, propagate_points
from cunet.train_config import HintSimulation

MAX_PATCH = 9
AB_LIMIT = 128.0
POINT_SYNTAX = "x,y,#rrggbb[,size]"
HINT_KEYS = ("points", "strokes", "saturation", "reference", "histogram")
#: A stroke's width in photo pixels and its vertices; the points of one request; and the hint patches at
#: the working size (points plus stroke samples), which is what the work grows with: more than a user
#: draws, few enough that an update stays under a second or so (issue 21: 1.5 M points took 320 s).
MAX_STROKE_WIDTH = 256
MAX_STROKE_VERTICES = 10_000
MAX_POINTS = 2_000
MAX_STROKES = 1_000
MAX_HINT_PATCHES = 10_000
#: Largest hints document (a file or a request body), checked before it is read: 2,000 points take ~170 KB.
MAX_HINTS_BYTES = 2**20
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_POINT_PATTERN = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*(#?\w+)\s*(?:,\s*(\S+?)\s*)?$")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_coordinate(value, what: str) -> float:
    """A finite pixel coordinate (int or float, not bool) -> float."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise CunetError(f"{what} must be a finite number, got {_short(value)}")
    return float(value)


def check_patch_size(value, what: str = "size") -> int:
    """A point's square patch side: a whole number of pixels from 1 to MAX_PATCH (2.7 and True are refused)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        if not (_is_number(value) and float(value).is_integer()):
            raise CunetError(f"{what} must be a whole number of pixels from 1 to {MAX_PATCH}, got {_short(value)}")
    if not 1 <= int(value) <= MAX_PATCH:
        raise CunetError(f"{what} {int(value)} out of range: use 1 to {MAX_PATCH} pixels")
    return int(value)


def parse_color(value) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb' (as in CSS) or an (r, g, b) triple of 0-255 integers -> (r, g, b)."""
    if isinstance(value, str):
        match = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", value.strip())
        if match:
            digits = match.group(1)
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    elif isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3:
        if all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            return int(value[0]), int(value[1]), int(value[2])
    raise CunetError(f"bad colour {_short(value)}: expected '#rrggbb' (or r, g, b in 0-255)")


@dataclass(frozen=True)
class PointHint:
    """One user colour point: centre (x, y) in pixels, an a*b* colour, a square patch of `size` px.

    Every way of making one is checked here, so a bad point is a CunetError naming the problem.
    """

    x: float
    y: float
    a: float
    b: float
    size: int = 3
    #: How far the colour is pushed after the network (`cunet.point_fill`): 1 = the asked colour exactly on
    #: the patch and over its region, 0 = the network's own answer to the hint.
    strength: float = 1.0
    #: The '#rrggbb' the user picked, when the point was made from one (messages quote it).
    picked: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", check_coordinate(self.x, "point x"))
        object.__setattr__(self, "y", check_coordinate(self.y, "point y"))
        for name in ("a", "b"):
            value = getattr(self, name)
            if not _is_number(value) or not -AB_LIMIT <= float(value) <= AB_LIMIT:
                raise CunetError(f"point {name}* must be a number in [-128, 128], got {_short(value)}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "size", check_patch_size(self.size, "point size"))
        if not _is_number(self.strength) or not 0 <= float(self.strength) <= 1:
            raise CunetError(f"point strength must be a number in [0, 1], got {_short(self.strength)}")
        object.__setattr__(self, "strength", float(self.strength))

    @classmethod
    def from_rgb(cls, x: float, y: float, rgb, size: int = 3, strength: float = 1.0) -> PointHint:
        """A point whose colour is '#rrggbb' or an 8-bit sRGB triple; only its a*b* is kept (L comes from
        the photo)."""
        colour = parse_color(rgb)
        (a, b), = srgb_ab([colour])
        return cls(x=x, y=y, a=a, b=b, size=size, strength=strength, picked="#%02x%02x%02x" % colour)

    def inside(self, width: int, height: int) -> bool:
        """Whether the pixel nearest to (x, y) lies inside a width x height image."""
        return 0 <= np.floor(self.x + 0.5) < width and 0 <= np.floor(self.y + 0.5) < height

    def scaled(self, scale_x: float, scale_y: float) -> PointHint:
        """The same point on an image resized by (scale_x, scale_y); the patch stays within 1..MAX_PATCH px,
        the sides the network was trained with."""
        size = min(MAX_PATCH, max(1, round(self.size * min(scale_x, scale_y))))
        # Pixel centres sit at i + 0.5, so they map through (i + 0.5) * scale - 0.5.
        return PointHint((self.x + 0.5) * scale_x - 0.5, (self.y + 0.5) * scale_y - 0.5, self.a, self.b, size,
                         self.strength, self.picked)


def as_point(value, what: str = "point") -> PointHint:
    """A PointHint, or an (x, y, colour[, size]) tuple as a Python user would write it -> PointHint."""
    if isinstance(value, PointHint):
        return value
    if isinstance(value, (tuple, list)) and len(value) in (3, 4):
        size = value[3] if len(value) == 4 else 3
        return _checked_point(lambda: PointHint.from_rgb(value[0], value[1], value[2], size), what)
    raise CunetError(f"{what}: expected a PointHint or (x, y, '#rrggbb'[, size]), got {_short(value)}")


@dataclass(frozen=True)
class StrokeHint:
    """A scribble of one colour (Levin et al.'s interaction): a polyline of (x, y) vertices in pixels,
    drawn `width` pixels wide. It becomes hint pixels along the line at the working size (`samples`),
    so the network, the gamut fit and the point fill treat it as a row of points."""

    vertices: tuple[tuple[float, float], ...]
    a: float
    b: float
    width: int = 5
    strength: float = 1.0
    picked: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.vertices, (tuple, list)) or not 1 <= len(self.vertices) <= MAX_STROKE_VERTICES:
            raise CunetError(f"stroke points must be a list of 1 to {MAX_STROKE_VERTICES} [x, y] pairs, "
                             f"got {_short(self.vertices)}")
        vertices = []
        for vertex in self.vertices:
            if not isinstance(vertex, (tuple, list)) or len(vertex) != 2:
                raise CunetError(f"stroke points must be [x, y] pairs, got {_short(vertex)}")
            vertices.append((check_coordinate(vertex[0], "stroke x"), check_coordinate(vertex[1], "stroke y")))
        object.__setattr__(self, "vertices", tuple(vertices))
        colour = PointHint(0, 0, self.a, self.b, 1, self.strength)  # the same checks and messages as a point's
        object.__setattr__(self, "a", colour.a)
        object.__setattr__(self, "b", colour.b)
        object.__setattr__(self, "strength", colour.strength)
        width = self.width
        if not isinstance(width, numbers.Integral) or isinstance(width, bool) or not 1 <= width <= MAX_STROKE_WIDTH:
            if not (_is_number(width) and float(width).is_integer() and 1 <= float(width) <= MAX_STROKE_WIDTH):
                raise CunetError(f"stroke width must be a whole number of pixels from 1 to {MAX_STROKE_WIDTH}, "
                                 f"got {_short(width)}")
        object.__setattr__(self, "width", int(width))

    @classmethod
    def from_rgb(cls, vertices, rgb, width: int = 5, strength: float = 1.0) -> StrokeHint:
        point = PointHint.from_rgb(0, 0, rgb)
        return cls(vertices, point.a, point.b, width, strength, point.picked)

    def inside(self, width: int, height: int) -> bool:
        return all(PointHint(x, y, 0.0, 0.0, 1).inside(width, height) for x, y in self.vertices)

    def length(self) -> float:
        """The polyline's length in pixels."""
        return float(sum(np.hypot(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(self.vertices, self.vertices[1:])))

    def _centres(self, scale_x: float, scale_y: float) -> tuple[np.ndarray, int]:
        """Patch centres along the line on an image resized by (scale_x, scale_y), one every half patch
        side (so that they cover the line without gaps), and the patch side (the width there, 1..MAX_PATCH)."""
        size = min(MAX_PATCH, max(1, round(self.width * min(scale_x, scale_y))))
        step = max(1.0, size / 2)
        scaled = (np.asarray(self.vertices, dtype=np.float64) + 0.5) * (scale_x, scale_y) - 0.5
        segments = scaled[1:] - scaled[:-1]
        counts = np.ceil(np.hypot(segments[:, 0], segments[:, 1]) / step).astype(np.int64)
        which = np.repeat(np.arange(len(segments)), counts)
        along = (np.arange(len(which)) - np.repeat(np.cumsum(counts) - counts, counts) + 1) / counts[which]
        return np.concatenate([scaled[:1], scaled[which] + segments[which] * along[:, None]]), size

    def sample_bound(self, scale_x: float, scale_y: float) -> int:
        """At most how many patches `samples` gives, counted without making them (the work cap's check)."""
        size = min(MAX_PATCH, max(1, round(self.width * min(scale_x, scale_y))))
        scaled = (np.asarray(self.vertices, dtype=np.float64) + 0.5) * (scale_x, scale_y) - 0.5
        lengths = np.hypot(*(scaled[1:] - scaled[:-1]).T)
        return 1 + int(min(np.ceil(lengths / max(1.0, size / 2)).sum(), 2.0**62))  # an endless line: a huge count

    def samples(self, scale_x: float, scale_y: float) -> list[PointHint]:
        """Square patches along the line on an image resized by (scale_x, scale_y) (`_centres`), one per
        working pixel: in the order the line first reaches each pixel, at the last centre there."""
        centres, size = self._centres(scale_x, scale_y)
        pixels = np.floor(centres + 0.5).astype(np.int64)
        codes = pixels[:, 0] * (1 << 32) + pixels[:, 1]
        _, first = np.unique(codes, return_index=True)
        _, last_reversed = np.unique(codes[::-1], return_index=True)
        last = len(codes) - 1 - last_reversed
        chosen = centres[last[np.argsort(first)]]
        return [PointHint(x, y, self.a, self.b, size, self.strength, self.picked) for x, y in chosen.tolist()]


def _checked_point(make, what: str) -> PointHint:
    try:
        return make()
    except CunetError as error:
        raise CunetError(f"{what}: {error}") from None


@dataclass(frozen=True, eq=False)
class Hints:
    """Everything a user can tell the network, validated: colour points (in the photo's pixels), a
    global a*b* histogram over the in-gamut bins, a mean saturation in [0, 1], and/or a reference
    colour photo (its histogram becomes the global hint unless `histogram` is given)."""

    points: tuple[PointHint, ...] = ()
    histogram: torch.Tensor | None = None
    saturation: float | None = None
    reference: Path | None = None
    strokes: tuple[StrokeHint, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.points, (tuple, list)):
            raise CunetError(f"points must be a list of points, got {type(self.points).__name__}")
        if len(self.points) > MAX_POINTS:  # counted before any point is converted: the cap bounds the work
            raise CunetError(f"{len(self.points):,} points; the limit is {MAX_POINTS:,}")
        object.__setattr__(self, "points", tuple(as_point(p, f"point {i}") for i, p in enumerate(self.points)))
        if not isinstance(self.strokes, (tuple, list)) or not all(isinstance(s, StrokeHint) for s in self.strokes):
            raise CunetError(f"strokes must be a list of cunet.hints.StrokeHint, got {_short(self.strokes)}")
        object.__setattr__(self, "strokes", tuple(self.strokes))
        if len(self.strokes) > MAX_STROKES:
            raise CunetError(f"{len(self.strokes):,} strokes; the limit is {MAX_STROKES:,}")
        vertices = sum(len(stroke.vertices) for stroke in self.strokes)
        if vertices > MAX_STROKE_VERTICES:
            raise CunetError(f"{vertices:,} stroke points in all; the limit is {MAX_STROKE_VERTICES:,}")
        if self.histogram is not None:
            object.__setattr__(self, "histogram", check_histogram(self.histogram))
        if self.saturation is not None:
            object.__setattr__(self, "saturation", check_saturation(self.saturation))
        if self.reference is not None:
            if not isinstance(self.reference, (str, os.PathLike)) or not str(self.reference).strip():
                raise CunetError(f"reference must be the path of a colour photo, got {_short(self.reference)}")
            object.__setattr__(self, "reference", Path(self.reference))

    def merged(self, other: Hints) -> Hints:
        """These hints plus `other`'s: points are added after ours, other global hints win where given."""
        return Hints(
            self.points + other.points,
            other.histogram if other.histogram is not None else self.histogram,
            other.saturation if other.saturation is not None else self.saturation,
            other.reference if other.reference is not None else self.reference,
            self.strokes + other.strokes,
        )

    def has_local(self) -> bool:
        """Whether there is any point or stroke."""
        return bool(self.points or self.strokes)

    def to_json(self) -> dict:
        """The hints-file form that `hints_from_json` reads back; points keep their exact a*b*."""
        data: dict = {"points": [{"x": p.x, "y": p.y, "a": p.a, "b": p.b, "size": p.size}
                                 | ({"strength": p.strength} if p.strength != 1 else {}) for p in self.points]}
        if self.strokes:
            data["strokes"] = [{"points": [list(v) for v in s.vertices], "a": s.a, "b": s.b, "width": s.width}
                               | ({"strength": s.strength} if s.strength != 1 else {}) for s in self.strokes]
        if self.histogram is not None:
            data["histogram"] = [float(v) for v in self.histogram]
        if self.saturation is not None:
            data["saturation"] = self.saturation
        if self.reference is not None:
            data["reference"] = str(self.reference)
        return data


def check_saturation(value, what: str = "saturation") -> float:
    """A mean saturation: a number (not a bool) in [0, 1]."""
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise CunetError(f"{what} must be a number in [0, 1], got {_short(value)}")
    return float(value)


def check_histogram(value, what: str = "histogram") -> torch.Tensor:
    """A global a*b* histogram: num_bins() finite non-negative numbers with a positive sum -> float tensor."""
    try:
        histogram = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32).flatten()
    except (TypeError, ValueError):
        raise CunetError(f"{what} must be a list of {num_bins()} numbers") from None
    if isinstance(value, (str, bytes)) or histogram.numel() != num_bins():
        raise CunetError(f"{what} must have {num_bins()} bins (the in-gamut a*b* bins), got {histogram.numel()}")
    if not bool(torch.isfinite(histogram).all()) or bool((histogram < 0).any()) or float(histogram.sum()) <= 0:
        raise CunetError(f"{what} must be non-negative with a positive sum")
    return histogram


def parse_points(text: str, origin: str = "--points") -> tuple[PointHint, ...]:
    """'x,y,#rrggbb[,size];...' -> points (size defaults to 3 px, at most 9). An empty list is an error:
    it is almost always a quoting mistake."""
    parts = [part for part in text.split(";") if part.strip()]
    if not parts:
        raise CunetError(f"{origin}: no points in {_short(text)}; expected {POINT_SYNTAX};...")
    if len(parts) > MAX_POINTS:
        raise CunetError(f"{origin}: {len(parts):,} points; the limit is {MAX_POINTS:,}")
    points = []
    for part in parts:
        match = _POINT_PATTERN.match(part)
        if not match:
            raise CunetError(f"{origin}: bad point {_short(part.strip())}: expected {POINT_SYNTAX}, e.g. 120,80,#c08060,5")
        x, y, colour, size = match.groups()
        where = f"{origin}: point {_short(part.strip())}"
        points.append(_checked_point(lambda: PointHint.from_rgb(float(x), float(y), colour, size or 3), where))
    return tuple(points)


def srgb_ab(colours: list[tuple[int, int, int]]) -> list[tuple[float, float]]:
    """8-bit sRGB triples -> their (a*, b*), all in one conversion (a hints document may hold a thousand)."""
    if not colours:
        return []
    rgb = torch.tensor(colours, dtype=torch.float32).T.reshape(3, 1, len(colours)) / 255.0
    lab = rgb_to_lab(rgb).reshape(3, -1)
    return list(zip(lab[1].tolist(), lab[2].tolist()))


def _points_from_json(items: list, origin: str) -> tuple[PointHint, ...]:
    """A document's "points" -> PointHints; the count is checked before any point is read."""
    if len(items) > MAX_POINTS:
        raise CunetError(f"{origin}: {len(items):,} points; the limit is {MAX_POINTS:,}")
    read = []
    for index, item in enumerate(items):
        where = f"{origin}: points[{index}]"
        if not isinstance(item, dict):
            raise CunetError(f"{where}: expected an object {{\"x\", \"y\", \"color\", \"size\"?}}, got {_short(item)}")
        unknown = set(item) - {"x", "y", "color", "size", "a", "b", "strength"}
        if unknown:
            raise CunetError(f"{where}: unknown keys {_short(sorted(unknown))}; use x, y, color (or a, b), size, strength")
        if "x" not in item or "y" not in item:
            raise CunetError(f"{where}: needs x and y")
        if "color" in item:
            read.append((where, item, _checked_point(lambda: parse_color(item["color"]), where)))
        elif "a" in item and "b" in item:
            read.append((where, item, None))
        else:
            raise CunetError(f"{where}: needs a color '#rrggbb'")
    converted = iter(srgb_ab([colour for _, _, colour in read if colour is not None]))
    points = []
    for where, item, colour in read:
        a, b = (item["a"], item["b"]) if colour is None else next(converted)
        picked = None if colour is None else "#%02x%02x%02x" % colour
        points.append(_checked_point(lambda: PointHint(item["x"], item["y"], a, b, item.get("size", 3),
                                                       item.get("strength", 1.0), picked), where))
    return tuple(points)


def hints_from_json(data, origin: str = "hints", base: Path | None = None) -> Hints:
    """A decoded hints document -> Hints. `origin` names the file in every message; a relative
    reference path is taken from `base` (the hints file's folder).

    {"points": [{"x", "y", "color" | "a" and "b", "size"?, "strength"?}, ...],
     "strokes": [{"points": [[x, y], ...], "color" | "a" and "b", "width"?, "strength"?}, ...],
     "saturation"?, "reference"?, "histogram"?}
    """
    if not isinstance(data, dict):
        raise CunetError(f"{origin}: hints must be a JSON object with any of {', '.join(HINT_KEYS)}")
    unknown = set(data) - set(HINT_KEYS)
    if unknown:
        raise CunetError(f"{origin}: unknown hint keys {_short(sorted(unknown))}; use {', '.join(HINT_KEYS)}")
    items = data.get("points", [])
    if not isinstance(items, list):
        raise CunetError(f"{origin}: points must be a list of objects, got {_short(items)}")
    points = _points_from_json(items, origin)
    items = data.get("strokes", [])
    if not isinstance(items, list):
        raise CunetError(f"{origin}: strokes must be a list of objects, got {_short(items)}")
    if len(items) > MAX_STROKES:
        raise CunetError(f"{origin}: {len(items):,} strokes; the limit is {MAX_STROKES:,}")
    vertices = sum(len(item["points"]) for item in items if isinstance(item, dict) and isinstance(item.get("points"), list))
    if vertices > MAX_STROKE_VERTICES:
        raise CunetError(f"{origin}: {vertices:,} stroke points in all; the limit is {MAX_STROKE_VERTICES:,}")
    strokes = tuple(_stroke_from_json(item, f"{origin}: strokes[{i}]") for i, item in enumerate(items))
    saturation = histogram = reference = None
    if "saturation" in data:
        saturation = check_saturation(data["saturation"], f"{origin}: saturation")
    if "histogram" in data:
        histogram = check_histogram(data["histogram"], f"{origin}: histogram")
    if "reference" in data:
        if not isinstance(data["reference"], str) or not data["reference"].strip():
            raise CunetError(f"{origin}: reference must be the path of a colour photo, got {_short(data['reference'])}")
        reference = Path(data["reference"])
        if base is not None and not reference.is_absolute():
            reference = base / reference
        if not reference.is_file():
            raise CunetError(f"{origin}: reference {str(reference)!r}: no such file")
    try:
        return Hints(points, histogram, saturation, reference, strokes)
    except CunetError as error:
        raise CunetError(f"{origin}: {error}") from None


def _stroke_from_json(item, where: str) -> StrokeHint:
    if not isinstance(item, dict):
        raise CunetError(f"{where}: expected an object {{\"points\", \"color\", \"width\"?}}, got {_short(item)}")
    unknown = set(item) - {"points", "color", "width", "a", "b", "strength"}
    if unknown:
        raise CunetError(f"{where}: unknown keys {_short(sorted(unknown))}; use points, color (or a, b), width, strength")
    if "points" not in item:
        raise CunetError(f"{where}: needs points [[x, y], ...]")
    width, strength = item.get("width", 5), item.get("strength", 1.0)
    if "color" in item:
        return _checked_point(lambda: StrokeHint.from_rgb(item["points"], item["color"], width, strength), where)
    if "a" in item and "b" in item:
        return _checked_point(lambda: StrokeHint(item["points"], item["a"], item["b"], width, strength), where)
    raise CunetError(f"{where}: needs a color '#rrggbb'")


def read_hints_file(path: str | os.PathLike):
    """A JSON hints file -> (its path, its decoded JSON value), the size capped before it is read;
    every error names the file. Photo hints (`load_hints_file`) and a film's keyed hints read alike."""
    path = existing_file(path, "hints file")
    try:
        if path.stat().st_size > MAX_HINTS_BYTES:
            raise CunetError(f"{path}: hints file of {path.stat().st_size / 2**20:.1f} MB; the limit is "
                             f"{MAX_HINTS_BYTES // 2**20} MB")
        text = path.read_bytes()
    except OSError as error:
        raise CunetError(f"{path}: cannot read hints file ({error.strerror})") from None
    return path, decode_json(text, str(path))


def load_hints_file(path: str | os.PathLike) -> Hints:
    """A JSON hints file -> Hints; every error names the file and the hint."""
    path, data = read_hints_file(path)
    return hints_from_json(data, str(path), path.parent)


def decode_json(text: bytes | str, origin: str = "hints"):
    """JSON text -> its value, or a one-line CunetError naming `origin` (files and web requests alike)."""
    if len(text) > MAX_HINTS_BYTES:
        raise CunetError(f"{origin}: {len(text) / 2**20:.1f} MB of hints; the limit is {MAX_HINTS_BYTES // 2**20} MB")
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise CunetError(f"{origin}: not a text (UTF-8 JSON) file") from None
    except json.JSONDecodeError as error:
        raise CunetError(f"{origin}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise CunetError(f"{origin}: JSON nested too deeply") from None
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise CunetError(f"{origin}: not usable JSON ({error})") from None


def _patch_bounds(center: float, size: int, extent: int) -> tuple[int, int]:
    start = int(np.floor(center + 0.5)) - (size - 1) // 2
    start = min(max(start, 0), max(extent - size, 0))
    return start, min(start + size, extent)


def encode_point_hints(points: list[PointHint], height: int, width: int) -> torch.Tensor:
    """Points -> (3, H, W): normalised a*, normalised b*, mask (1 inside a patch, 0 elsewhere).

    Later points overwrite earlier ones where patches overlap, as a later click would in an editor.
    """
    hints = torch.zeros(3, height, width)
    for point in points:
        if not point.inside(width, height):
            raise CunetError(f"point ({point.x:g}, {point.y:g}) lies outside the {width}x{height} image")
        y0, y1 = _patch_bounds(point.y, point.size, height)
        x0, x1 = _patch_bounds(point.x, point.size, width)
        hints[0, y0:y1, x0:x1] = normalize_ab(torch.tensor(point.a))
        hints[1, y0:y1, x0:x1] = normalize_ab(torch.tensor(point.b))
        hints[2, y0:y1, x0:x1] = 1.0
    return hints


def network_inputs(lightness: torch.Tensor, point_maps: torch.Tensor, propagate: bool = False,
                   transform: DomainTransform | None = None) -> torch.Tensor:
    """L* (B, 1, H, W) + point-hint maps (B, 3, H, W) -> the network's (B, 4, H, W) input, or
    (B, 7, H, W) with the points' edge-aware spread appended (`propagate`, for models built with
    `propagated_hints`; `transform`: the L*'s kept `DomainTransform`, if any)."""
    channels = [normalize_l(lightness), point_maps]
    if propagate:
        channels.append(propagate_points(lightness, point_maps, transform))
    return torch.cat(channels, dim=1)


def photo_histogram(ab: torch.Tensor) -> torch.Tensor:
    """A photo's global-hint histogram (*, Q) from its a*b* (*, 2, H, W).

    Taken on a 4x average-pooled copy: colour statistics need no fine detail, and the same
    function serves training, references and evaluation so that the network sees one kind of hint.
    """
    if min(ab.shape[-2:]) >= 16:
        pooled = F.avg_pool2d(ab.float().reshape(-1, 2, *ab.shape[-2:]), 4)
        ab = pooled.reshape(*ab.shape[:-3], 2, *pooled.shape[-2:])
    return ab_histogram(ab)


def global_hint_size() -> int:
    """Length of the global-hint vector: histogram + its flag + saturation + its flag."""
    return num_bins() + 3


def encode_global_hint(histogram: torch.Tensor | None = None, saturation: float | None = None) -> torch.Tensor:
    """Histogram over the in-gamut bins (Q,) and/or mean saturation -> the (Q + 3,) global-hint vector."""
    vector = torch.zeros(global_hint_size())
    q = num_bins()
    if histogram is not None:
        histogram = check_histogram(histogram)
        vector[:q] = histogram / float(histogram.sum())
        vector[q] = 1.0
    if saturation is not None:
        vector[q + 1] = check_saturation(saturation)
        vector[q + 2] = 1.0
    return vector


def simulate_point_hints(ab: torch.Tensor, rng: np.random.Generator, sim: HintSimulation) -> torch.Tensor:
    """Ground-truth a*b* (B, 2, H, W) -> simulated point-hint maps (B, 3, H, W).

    Each image gets a geometric number of points (some get none) with random patch sides.
    """
    batch, _, height, width = ab.shape
    maps = []
    for i in range(batch):
        count = min(int(rng.geometric(sim.point_probability)) - 1, sim.max_points)
        if sim.dense_probability > 0 and rng.random() < sim.dense_probability:
            count = int(rng.integers(sim.dense_min, sim.dense_max + 1))
        sizes = [int(s) for s in rng.integers(1, sim.max_patch + 1, size=count)]
        maps.append(encode_point_hints(ground_truth_points(ab[i], sizes, rng), height, width))
    return torch.stack(maps)


def simulate_global_hints(
    ab: torch.Tensor, rgb: torch.Tensor, rng: np.random.Generator, sim: HintSimulation
) -> torch.Tensor:
    """Ground truth (B, 2, H, W) a*b* and (B, 3, H, W) sRGB -> global-hint vectors (B, Q + 3)."""
    batch = ab.shape[0]
    q = num_bins()
    vectors = torch.zeros(batch, q + 3)
    give_histogram = torch.from_numpy(rng.random(batch) < sim.histogram_probability)
    give_saturation = torch.from_numpy(rng.random(batch) < sim.saturation_probability)
    if give_histogram.any():
        vectors[give_histogram, :q] = photo_histogram(ab[give_histogram])
        vectors[give_histogram, q] = 1.0
    if give_saturation.any():
        vectors[give_saturation, q + 1] = mean_saturation(rgb[give_saturation].float())
        vectors[give_saturation, q + 2] = 1.0
    return vectors


def ground_truth_points(ab: torch.Tensor, sizes: list[int], rng: np.random.Generator) -> list[PointHint]:
    """Points a careful user would give: square patches of the given sides at uniform random
    positions (the whole patch inside the image), each holding the patch's mean ground-truth a*b*.

    `ab` is one image's (2, H, W) a*b*. The evaluation protocol and training simulation both use this.
    """
    height, width = ab.shape[-2:]
    points = []
    for size in sizes:
        y0 = int(rng.integers(0, height - size + 1))
        x0 = int(rng.integers(0, width - size + 1))
        mean = ab[:, y0 : y0 + size, x0 : x0 + size].float().mean(dim=(1, 2))
        points.append(PointHint(x0 + (size - 1) // 2, y0 + (size - 1) // 2, float(mean[0]), float(mean[1]), size))
    return points
