"""Colouring many photos: decoding ahead and encoding behind on threads, the network in batches.

A folder of scans is mostly waiting on JPEG/PNG decoding and encoding, which PIL does without
holding Python's GIL, and on the full-resolution join, which numpy does without it too. So photos
are decoded (and their working-size L* made) by a small thread pool ahead of the network; photos
whose working shapes agree go through the network together; and each result is joined at full
resolution and written by another pool while the network works on the next batch. Results come
back in input order, one per output file, with the error if that photo failed: a damaged scan
stops nothing else.
"""

from __future__ import annotations

import sys
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from cunet.colorizer import MOVED_NOTE, Colorizer, PreparedPhoto
from cunet.errors import CunetError
from cunet.hints import Hints
from cunet.io import load_photo, save_image_atomic

#: Photos of one working shape sent through the network together.
BATCH = 8


@dataclass(frozen=True)
class Outcome:
    """What became of one output: its file, and the error message if it was not written."""

    source: Path
    target: Path
    error: str | None = None


@dataclass
class _Item:
    source: Path
    target: Path
    prepared: PreparedPhoto | None = None
    error: str | None = None


def _note_moved_points(colorizer: Colorizer, prepared: PreparedPhoto, hints: Hints, source: Path,
                       note: Callable[[str], None]) -> None:
    """A note for each point whose colour cannot show at its pixel's lightness (it moves > MOVED_NOTE)."""
    width, height = prepared.size
    if not hints.points or not all(point.inside(width, height) for point in hints.points):
        return  # a point outside the photo is the error the colouring reports
    for colour in colorizer.point_colours(prepared, hints):
        if colour.moved > MOVED_NOTE:
            note(f"note: {source.name}: {colour.note()}")


def _load(colorizer: Colorizer, source: Path, target: Path, size: int, all_frames: bool,
          frame_target: Callable[[Path, int], Path], note: Callable[[str], None], hints: Hints) -> list[_Item]:
    """One input file -> its items (one per frame with `all_frames`), each decoded and prepared."""
    try:
        photo = load_photo(source)
        if photo.frames > 1 and not all_frames:
            note(f"note: {source} has {photo.frames} frames; colouring the first (--all-frames colours each)")
        if not all_frames or photo.frames == 1:
            frames = [(photo, target)]
        else:
            frames = [(photo if i == 0 else load_photo(source, i), frame_target(target, i)) for i in range(photo.frames)]
        items = []
        for frame, frame_file in frames:
            prepared = colorizer.prepare(frame)
            prepared.working(size)
            items.append(_Item(source, frame_file, prepared))
        _note_moved_points(colorizer, items[0].prepared, hints, source, note)
        return items
    except CunetError as error:
        return [_Item(source, target, error=str(error))]


def _write(colorizer: Colorizer, source: Path, target: Path, prepared: PreparedPhoto, ab: torch.Tensor,
           quality: int | None, on_written: Callable[[Path], None]) -> Outcome:
    try:
        save_image_atomic(colorizer.finish(prepared, ab, threads=1), target, quality)
    except CunetError as error:
        return Outcome(source, target, str(error))
    on_written(target)
    return Outcome(source, target)


def colorize_files(
    colorizer: Colorizer, jobs: list[tuple[Path, Path]], hints: Hints | None = None, size: int | None = None,
    all_frames: bool = False, frame_target: Callable[[Path, int], Path] | None = None,
    quality: int | None = None, threads: int | None = None, batch: int = BATCH,
    note: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    on_written: Callable[[Path], None] = lambda target: None,
) -> Iterator[Outcome]:
    """Colour (source, target) files; yields one Outcome per output file, in input order.

    `threads` (PyTorch's count by default) decode and write beside the network; `batch` photos of
    one working shape share a network pass. Memory holds at most about 2 x `batch` decoded photos.
    `on_written(target)` is called, on a writer thread, as each file lands. When the caller stops
    early (Ctrl+C, or closing the iterator), queued work is dropped and the files being written are
    finished: each file is whole or absent.
    """
    hints = hints or Hints()
    size = colorizer.working_size if size is None else size
    workers = max(1, threads or torch.get_num_threads())
    frame_target = frame_target or (lambda target, i: target.with_name(f"{target.stem}_frame{i + 1}{target.suffix}"))
    with ThreadPoolExecutor(workers) as readers, ThreadPoolExecutor(workers) as writers, \
            _dropping_queued_work(readers, writers):
        loading: deque[Future] = deque()
        writing: deque[Future | Outcome] = deque()
        queue = iter(jobs)

        def load_ahead() -> None:
            while len(loading) < 2 * batch:
                job = next(queue, None)
                if job is None:
                    return
                loading.append(readers.submit(_load, colorizer, job[0], job[1], size, all_frames, frame_target, note,
                                              hints))

        load_ahead()
        while loading or writing:
            ready: list[_Item] = []
            while loading and len(ready) < batch:
                ready.extend(loading.popleft().result())
                load_ahead()
            done: dict[int, Future | Outcome] = {}
            for group in _same_shape_groups(ready, size):
                for item, result in zip(group, _predict(colorizer, group, hints, size)):
                    if isinstance(result, str):
                        done[id(item)] = Outcome(item.source, item.target, result)
                    else:
                        done[id(item)] = writers.submit(_write, colorizer, item.source, item.target, item.prepared,
                                                       result, quality, on_written)
            for item in ready:  # input order
                writing.append(done[id(item)])
                item.prepared = None  # a writer holds it now: memory follows the queues
            while writing and (isinstance(writing[0], Outcome) or writing[0].done() or len(writing) > 2 * batch
                               or not loading):
                first = writing.popleft()
                yield first if isinstance(first, Outcome) else first.result()


@contextmanager
def _dropping_queued_work(*pools: ThreadPoolExecutor):
    """On any early exit, cancel what the pools have not started (they still finish what they have)."""
    try:
        yield
    except BaseException:
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        raise


def _predict(colorizer: Colorizer, group: list[_Item], hints: Hints, size: int) -> list[torch.Tensor | str]:
    """a*b* for each item of a group (one network pass), or its error message; a group that fails
    (a point outside one photo, say) is retried photo by photo, so that only the bad ones fail."""
    if group[0].error is not None:
        return [group[0].error]
    try:
        return colorizer.predict_ab_batch([item.prepared for item in group], hints, size)
    except CunetError as error:
        if len(group) == 1:
            return [str(error)]
    results: list[torch.Tensor | str] = []
    for item in group:
        results.extend(_predict(colorizer, [item], hints, size))
    return results


def _same_shape_groups(items: list[_Item], size: int) -> list[list[_Item]]:
    """Items in order, grouped by working shape (a failed item alone), each group's order kept."""
    groups: dict[object, list[_Item]] = {}
    for index, item in enumerate(items):
        key = ("error", index) if item.error is not None else item.prepared.working(size)[0]
        groups.setdefault(key, []).append(item)
    return list(groups.values())
