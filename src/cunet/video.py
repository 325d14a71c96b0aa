"""Colouring films with steady colour: the photo pipeline (`Colorizer`: hints, network, point fill,
guided join) run frame by frame, plus what keeps the colour from flickering.

- **Shots.** A cut is where the L* histogram changes by more than `CUT_THRESHOLD` (total variation
  between consecutive frames' 32-bin histograms at the working size; the threshold is measured by
  `benchmarks/video.py` on the colour clips joined end to end). Everything below resets at a cut.
- **One palette per shot.** Each shot gets one global hint: the reference's histogram if given, else
  the mean a*b* histogram of the network's own automatic colours on the shot's first
  `PALETTE_FRAMES` frames (read ahead: memory stays a few frames), so the palette does not wander
  (`palette_from="predicted"`: the mean of the histogram head's predictions for those frames instead;
  more colourful, 0.15 dB lower on the colour clips, benchmarks/video.py).
  Keyed points and strokes take over from a palette the shot made itself, as a photo's points take
  over from its predicted palette (`Colorizer.hints_lead`); a reference's palette is the user's and stays.
- **Colour carried by optical flow.** DIS flow (OpenCV) on the working-size L* between consecutive
  frames, both ways; where the forward-backward check and the lightness agree, the frame's a*b* is
  `blend` x its own prediction + (1 - blend) x the previous output warped to it; elsewhere (occluded,
  uncovered) its own prediction. With `every` > 1 the network runs on every `every`-th frame of a
  shot and the frames between take the previous output warped, everywhere: what a pan uncovers
  shows the nearest edge colour for up to `every` - 1 frames (the network is most of a frame's time).
- **Keyed hints.** `{"frame": N, "points": [...], "strokes": [...], ...}`: from frame N (0-based) on
  until the next keyed frame, the points and stroke vertices moved along by the flow; at a cut the
  points and strokes end (what they marked has gone) and the global parts (histogram, reference,
  saturation) go on. A keyed frame takes its own prediction whole (the new hints show at once).

All of it works on the working-size a*b* (cheap); the join then brings each frame to full resolution
guided by its own L*, as for photos. Each part can be switched off (`Steadiness`) to measure it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from cunet.colorizer import Colorizer, PreparedPhoto
from cunet.errors import CunetError
from cunet.flow import consistent, dis_flow, warp
from cunet.hints import HINT_KEYS, Hints, hints_from_json, photo_histogram, read_hints_file
from cunet.video_io import Frame

#: Total variation between consecutive frames' L* histograms above which a new shot starts: 1.25 x
#: the largest change frame to frame inside any clip of ../shared/data/video (0.155, the flicker of a
#: silent film; the colour clips' largest is 0.130; between clips 0.16 to 0.96, benchmarks/video.py).
CUT_THRESHOLD = 0.19
LIGHTNESS_BINS = 32
#: Frames at the start of a shot whose automatic colours make the shot's palette.
PALETTE_FRAMES = 3
#: What a shot's own palette is made of: the frames' automatic colours, or the histogram head's prediction.
PALETTE_SOURCES = ("frames", "predicted")
#: Share of a frame's own prediction where the previous output, warped, is trusted, and how often the
#: network runs: benchmarks/video.py on the colour clips (palette on) — blend 0.35 / 0.2 every frame:
#: PSNR +0.03 / +0.06 dB over per-frame colouring, a*b* warping error -67 % / -70 %; blend 0.2 with the
#: network on every 3rd / 4th / 6th frame: +0.12 / +0.13 / +0.15 dB, -72 % / -74 % / -75 %. Every 4th
#: is the default: the network is most of a frame's time, and 4 keeps fresh colour within 0.16 s at 25 fps.
BLEND = 0.2
EVERY = 4
#: A pixel is not trusted where the flow check says occluded (`cunet.flow.consistent`) or where its L*
#: differs from the previous frame's, warped, by more than this.
LIGHTNESS_SLACK = 12.0
MAX_KEYED_HINTS = 10_000


@dataclass(frozen=True)
class Steadiness:
    """What keeps a film's colour steady; each part can be switched off to see what it buys."""

    cuts: bool = True
    shot_palette: bool = True
    stabilise: bool = True
    blend: float = BLEND
    every: int = EVERY  # with stabilise off, the network runs on every frame
    cut_threshold: float = CUT_THRESHOLD
    palette_from: str = "frames"  # PALETTE_SOURCES

    def __post_init__(self) -> None:
        if not 0 < self.blend <= 1:
            raise CunetError(f"the blend must be in (0, 1], got {self.blend!r}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or not 1 <= self.every <= 30:
            raise CunetError(f"--every must be a whole number from 1 to 30, got {self.every!r}")
        if not 0 < self.cut_threshold <= 1:
            raise CunetError(f"the cut threshold must be in (0, 1], got {self.cut_threshold!r}")
        if self.palette_from not in PALETTE_SOURCES:
            raise CunetError(f"--palette-from must be one of {', '.join(PALETTE_SOURCES)}, got {self.palette_from!r}")


@dataclass(frozen=True)
class KeyedHints:
    """Hints that apply from `frame` (0-based) on, until the next keyed frame (points and strokes end at a cut)."""

    frame: int
    hints: Hints


def keyed_hints_from_json(data, origin: str = "hints", base: Path | None = None) -> tuple[KeyedHints, ...]:
    """A film's hints document -> keyed hints in frame order. Either one photo hints object (it applies
    from frame 0, or from its "frame"), or a list of them, each with a "frame"."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise CunetError(f"{origin}: an empty list of keyed hints")
    if len(items) > MAX_KEYED_HINTS:
        raise CunetError(f"{origin}: {len(items):,} keyed hints; the limit is {MAX_KEYED_HINTS:,}")
    keyed, seen = [], set()
    for index, item in enumerate(items):
        where = f"{origin}: keyed hints {index}" if isinstance(data, list) else origin
        if not isinstance(item, dict):
            raise CunetError(f"{where}: must be a JSON object with \"frame\" and any of {', '.join(HINT_KEYS)}")
        frame = item.get("frame", 0)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise CunetError(f"{where}: frame must be a frame number (0, 1, 2, ...), got {frame!r}")
        if isinstance(data, list) and "frame" not in item:
            raise CunetError(f"{where}: says no frame; each keyed hint needs a \"frame\"")
        if frame in seen:
            raise CunetError(f"{where}: frame {frame} is keyed twice")
        seen.add(frame)
        hints = hints_from_json({k: v for k, v in item.items() if k != "frame"}, where, base)
        keyed.append(KeyedHints(frame, hints))
    return tuple(sorted(keyed, key=lambda k: k.frame))


def load_video_hints(path: str | os.PathLike) -> tuple[KeyedHints, ...]:
    """A film's JSON hints file -> keyed hints; every error names the file and the hint."""
    path, data = read_hints_file(path)
    return keyed_hints_from_json(data, str(path), path.parent)


def lightness_histogram(lightness: np.ndarray) -> np.ndarray:
    """A frame's L* (h, w) in [0, 100] -> its normalised `LIGHTNESS_BINS`-bin histogram."""
    counts, _ = np.histogram(lightness, bins=LIGHTNESS_BINS, range=(0.0, 100.0))
    return counts / max(counts.sum(), 1)


def histogram_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Total variation between two normalised histograms: 0 the same, 1 disjoint."""
    return float(0.5 * np.abs(previous - current).sum())


def _moved(x: float, y: float, forward: np.ndarray, scale: tuple[float, float]) -> tuple[float, float]:
    """A full-resolution position moved by the working-size forward flow (scale = working / full)."""
    height, width = forward.shape[:2]
    column = int(np.clip(np.floor(x * scale[0]), 0, width - 1))
    row = int(np.clip(np.floor(y * scale[1]), 0, height - 1))
    dx, dy = forward[row, column]
    return x + float(dx) / scale[0], y + float(dy) / scale[1]


def carried(hints: Hints, forward: np.ndarray, scale: tuple[float, float], size: tuple[int, int]) -> Hints:
    """`hints` on the next frame: points and stroke vertices moved by the flow; those that left the
    picture dropped (a stroke when any vertex left)."""
    width, height = size
    points = []
    for point in hints.points:
        x, y = _moved(point.x, point.y, forward, scale)
        moved = replace(point, x=x, y=y)
        if moved.inside(width, height):
            points.append(moved)
    strokes = []
    for stroke in hints.strokes:
        vertices = tuple(_moved(x, y, forward, scale) for x, y in stroke.vertices)
        moved = replace(stroke, vertices=vertices)
        if moved.inside(width, height):
            strokes.append(moved)
    return Hints(tuple(points), hints.histogram, hints.saturation, None, tuple(strokes))


@dataclass
class _Item:
    """A frame on its way: decoded, its working-size L* and whether it starts a shot."""

    index: int
    frame: Frame  # its timestamp only: the pixels live in `prepared`
    prepared: PreparedPhoto
    lightness: np.ndarray  # (h, w) float32, L* at the working size
    starts_shot: bool


class FilmColorizer:
    """Colours a stream of frames with steady colour (see the module's docstring).

    `run(frames)` is a generator: one frame out per frame in, in order; memory holds a few frames.
    `reference_histogram`: one global hint for every shot (a reference photo's), instead of each
    shot's own palette. `keyed`: keyed hints (`keyed_hints_from_json`).
    """

    def __init__(self, colorizer: Colorizer, steadiness: Steadiness = Steadiness(),
                 keyed: tuple[KeyedHints, ...] = (), reference_histogram: torch.Tensor | None = None,
                 size: int | None = None, join_threads: int = 1):
        self.colorizer, self.steadiness, self.size = colorizer, steadiness, size
        if (steadiness.shot_palette and steadiness.palette_from == "predicted" and reference_histogram is None
                and colorizer.model.histogram is None):
            raise CunetError("--palette-from predicted needs a model with a histogram head (cunet fit-histogram-head)")
        self.keyed = {k.frame: self._hints_for_key(k.hints) for k in keyed}  # references read now, not mid-film
        self.reference_histogram = reference_histogram
        self.join_threads = join_threads
        self.cuts: list[int] = []  # frames that started a shot after the first, as found
        self.network_frames = 0

    def _hints_for_key(self, hints: Hints) -> Hints:
        """A keyed hint's reference photo -> its histogram, read once."""
        if hints.reference is None or hints.histogram is not None:
            return hints
        return Hints(hints.points, self.colorizer.global_histogram(hints), hints.saturation, None, hints.strokes)

    def _items(self, frames: Iterable[Frame]) -> Iterator[_Item]:
        previous = None
        for index, frame in enumerate(frames):
            prepared = self.colorizer.prepare(frame.rgb)
            _, lightness = prepared.working(self.size or self.colorizer.working_size)
            lightness = lightness[0, 0].numpy()
            histogram = lightness_histogram(lightness)
            cut = previous is not None and self.steadiness.cuts and \
                histogram_change(previous, histogram) > self.steadiness.cut_threshold
            if cut:
                self.cuts.append(index)
            previous = histogram
            yield _Item(index, Frame(None, frame.pts, frame.time_base), prepared, lightness, index == 0 or cut)

    def run(self, frames: Iterable[Frame]) -> Iterator:
        """Per frame, in order, a zero-argument callable that joins its colour at full resolution into
        a `Frame` (`cunet.video_io.transcode` runs them on its writer thread, beside the network). A
        generator: frames are read as they are needed."""
        for item, ab in self._colours(self._items(frames)):
            yield partial(self._joined, item, ab)

    def frames(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """The coloured frames themselves, in order, joined on this thread (for films held in memory)."""
        for join in self.run(frames):
            yield join()

    def _joined(self, item: _Item, ab: torch.Tensor) -> Frame:
        image = self.colorizer.finish(item.prepared, ab, threads=self.join_threads)
        return Frame(np.asarray(image.convert("RGB")), item.frame.pts, item.frame.time_base)

    def _colours(self, items: Iterator[_Item]) -> Iterator[tuple[_Item, torch.Tensor]]:
        """(item, working-size a*b*) per frame: shots' palettes read ahead, then each frame in order."""
        self._hints, self.cuts[:] = Hints(), []  # a second film starts clean
        wants_palette = self.steadiness.shot_palette and self.reference_histogram is None
        waiting: list[_Item] = []  # a shot's first frames, until its palette is known
        palette = self.reference_histogram
        for item in items:
            if item.starts_shot:
                if waiting:
                    yield from self._shot_frames(waiting, self._palette(waiting))
                    waiting = []
                self._start_shot()
                if wants_palette:
                    waiting = [item]
                    continue
            elif waiting:
                waiting.append(item)
                if len(waiting) == PALETTE_FRAMES:
                    palette = self._palette(waiting)
                    yield from self._shot_frames(waiting, palette)
                    waiting = []
                continue
            yield from self._shot_frames([item], palette)
        if waiting:
            yield from self._shot_frames(waiting, self._palette(waiting))

    def _palette(self, items: list[_Item]) -> torch.Tensor:
        """A shot's global hint: the mean histogram of the network's automatic colours on its first frames
        (as decoded: the chroma gain acts once, on the frames' colour, not on the hint too), or of the
        histogram head's predictions for them."""
        self.network_frames += len(items)
        if self.steadiness.palette_from == "predicted":
            histograms = torch.stack([self.colorizer.predicted_histogram(item.prepared, self.size) for item in items])
        else:
            abs_ = self.colorizer.predict_ab_batch([item.prepared for item in items], Hints(), self.size,
                                                   chroma_gain=1.0)
            histograms = torch.stack([photo_histogram(ab[0]) for ab in abs_])
        mean = histograms.mean(0)
        return mean / mean.sum()

    def _start_shot(self) -> None:
        self._previous: tuple[_Item, np.ndarray] | None = None  # (item, output a*b* (h, w, 2))
        # Points and strokes end at a cut; the global parts go on (`_colours` sets the film's first hints).
        self._hints = Hints(histogram=self._hints.histogram, saturation=self._hints.saturation)
        self._since_network = 0

    def _shot_frames(self, items: list[_Item], palette: torch.Tensor | None) -> Iterator[tuple[_Item, torch.Tensor]]:
        for item in items:
            yield item, self._frame_colour(item, palette)

    def _frame_colour(self, item: _Item, palette: torch.Tensor | None) -> torch.Tensor:
        previous = self._previous if self.steadiness.stabilise or self._hints.has_local() else None
        forward = backward = None
        if previous is not None:
            before = _uint8(previous[0].lightness)
            now = _uint8(item.lightness)
            backward, forward = dis_flow(now, before), dis_flow(before, now)
        keyed = item.index in self.keyed
        if keyed:
            self._hints = self.keyed[item.index]
        elif forward is not None and self._hints.has_local():
            height, width = item.lightness.shape
            full_width, full_height = item.prepared.size
            self._hints = carried(self._hints, forward, (width / full_width, height / full_height),
                                  item.prepared.size)
        run_network = (previous is None or keyed or not self.steadiness.stabilise
                       or self._since_network + 1 >= self.steadiness.every)
        if run_network:
            hints, shot_palette = self._hints, palette
            if self.reference_histogram is not None:  # the user's reference: it stays under points
                if hints.histogram is None:
                    hints = replace(hints, histogram=self.reference_histogram)
                shot_palette = None
            # A palette made from the shot's own automatic colours gives way to keyed points (`Colorizer.hints_lead`).
            predicted = self.colorizer.predict_ab(item.prepared, hints, self.size,
                                                  palette=shot_palette)[0].permute(1, 2, 0).numpy()
            self.network_frames += 1
            self._since_network = 0
        else:
            self._since_network += 1
        if not self.steadiness.stabilise or previous is None or keyed:
            ab = predicted  # a keyed frame shows its new hints at once, not faded in over frames
        else:
            warped = warp(previous[1], backward)
            if not run_network:
                ab = warped
            else:
                trusted = consistent(backward, forward)
                trusted &= np.abs(warp(previous[0].lightness, backward) - item.lightness) <= LIGHTNESS_SLACK
                blend = self.steadiness.blend
                ab = np.where(trusted[..., None], blend * predicted + (1 - blend) * warped, predicted)
        ab = np.ascontiguousarray(ab, dtype=np.float32)
        self._previous = (item, ab)
        return torch.from_numpy(ab).permute(2, 0, 1)[None]


def _uint8(lightness: np.ndarray) -> np.ndarray:
    return np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8)
