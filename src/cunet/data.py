"""Training photos: manifests and folders, their sources, gray-photo filtering, an in-memory decoded
cache, crops, and per-source sampling.

Decoding JPEGs is the slowest part of a CPU training step, so each photo is decoded once, shrunk
to a small short side, and kept in memory; every step then only crops and flips.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2lab
from tqdm import tqdm

from cunet.errors import CunetError
from cunet.io import IMAGE_SUFFIXES, load_rgb8

#: A photo whose 99th-percentile Lab chroma is below this is "near gray" and teaches gray output.
GRAY_CHROMA_P99 = 8.0


def read_manifest(path: str | Path, split: str | None = None) -> list[Path]:
    """Photos listed in a manifest.csv (column `file` relative to the manifest; optional `split`)."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise CunetError(f"{path}: cannot read manifest ({error.strerror})") from None
    if rows and "file" not in rows[0]:
        raise CunetError(f"{path}: manifest has no 'file' column")
    if split is not None:
        if rows and "split" not in rows[0]:
            raise CunetError(f"{path}: manifest has no 'split' column, cannot select split {split!r}")
        rows = [row for row in rows if row["split"] == split]
    return [path.parent / row["file"] for row in rows]


def manifest_has_splits(source: str | Path) -> bool:
    """Whether `source` is a manifest.csv (or a folder holding one) with a `split` column."""
    path = Path(source)
    manifest = path / "manifest.csv" if path.is_dir() else path
    if not (manifest.is_file() and manifest.suffix == ".csv"):
        return False
    with manifest.open(newline="") as handle:
        return "split" in (next(csv.reader(handle), None) or [])


def list_photos(source: str | Path, split: str | None = None) -> list[Path]:
    """Photos of a manifest.csv, of a folder holding one, or (recursively, sorted) of a plain folder."""
    source = Path(source)
    if source.is_dir() and (source / "manifest.csv").is_file():
        source = source / "manifest.csv"
    if source.is_file() and source.suffix == ".csv":
        return read_manifest(source, split)
    if source.is_dir():
        return find_images(source)
    raise CunetError(f"{source}: not a folder or manifest.csv")


def list_labelled_photos(source: str | Path, split: str | None = None) -> list[tuple[Path, str]]:
    """Like `list_photos`, each photo with the name of its source: the manifest's `source` column,
    else the first folder of its path below the manifest or folder (else that folder's own name)."""
    source = Path(source)
    if source.is_dir() and (source / "manifest.csv").is_file():
        source = source / "manifest.csv"
    root = source.parent if source.is_file() else source
    labels: dict[Path, str] = {}
    if source.is_file() and source.suffix == ".csv":
        with source.open(newline="") as handle:
            labels = {root / row["file"]: row["source"] for row in csv.DictReader(handle) if row.get("source")}
    labelled = []
    for path in list_photos(source, split):
        if path in labels:
            labelled.append((path, labels[path]))
            continue
        parts = path.relative_to(root).parts if path.is_relative_to(root) else path.parts
        labelled.append((path, parts[0] if len(parts) > 1 else root.resolve().name))
    return labelled


def sampling_probabilities(labels: list[str], weights: dict[str, float] | None = None) -> np.ndarray:
    """Each photo's chance of being drawn: uniform over photos without `weights`; with them, each
    source's share is proportional to its weight and its photos share it equally.

    `weights` must name every source of `labels` and no other, so that a typo cannot silently drop one.
    """
    counts = Counter(labels)
    if not weights:
        return np.full(len(labels), 1.0 / len(labels))
    unknown, missing = set(weights) - set(counts), set(counts) - set(weights)
    if unknown:
        raise CunetError(f"source_weights names sources not in the data: {sorted(unknown)} (found {sorted(counts)})")
    if missing:
        raise CunetError(f"source_weights must give every source a weight; missing {sorted(missing)}")
    if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights.values()):
        raise CunetError("source_weights must be numbers >= 0")
    total = sum(weights.values())
    if total <= 0:
        raise CunetError("source_weights must give at least one source a positive weight")
    probabilities = np.array([weights[label] / total / counts[label] for label in labels])
    return probabilities / probabilities.sum()


def find_images(folder: Path) -> list[Path]:
    """Every image file below `folder`, recursively, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_near_gray(rgb8: np.ndarray, threshold: float = GRAY_CHROMA_P99) -> bool:
    """True when a uint8 (H, W, 3) photo's 99th-percentile chroma is below `threshold`."""
    lab = rgb2lab(rgb8[::2, ::2])
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return bool(np.percentile(chroma, 99) < threshold)


@dataclass
class PhotoCache:
    """Decoded photos (uint8 (H, W, 3), short side >= the crop size) held in memory."""

    photos: list[np.ndarray]
    dropped_gray: int = 0
    dropped_small: int = 0
    dropped_unreadable: int = 0
    sources: list[str] = field(default_factory=list)  # each kept photo's source, when labels were given

    @classmethod
    def build(
        cls, paths: list[Path], short_side: int, crop: int, progress: bool = True, labels: list[str] | None = None
    ) -> PhotoCache:
        photos: list[np.ndarray] = []
        sources: list[str] = []
        gray = small = unreadable = 0
        for number, path in enumerate(tqdm(paths, desc="decoding photos", unit="img", disable=not progress,
                                           leave=False)):
            try:
                rgb = load_rgb8(path, short_side)
            except (OSError, ValueError, SyntaxError, CunetError):
                unreadable += 1
                continue
            if min(rgb.shape[:2]) < crop:
                small += 1
            elif is_near_gray(rgb):
                gray += 1
            else:
                photos.append(rgb)
                if labels is not None:
                    sources.append(labels[number])
        if not photos:
            raise CunetError(f"no usable training photos among {len(paths)} (too small, gray or unreadable)")
        return cls(photos, gray, small, unreadable, sources)

    def __len__(self) -> int:
        return len(self.photos)

    def random_crops(self, indices: np.ndarray, crop: int, rng: np.random.Generator) -> torch.Tensor:
        """Random crop x random horizontal flip of the photos at `indices` -> uint8 (B, 3, crop, crop)."""
        batch = np.empty((len(indices), crop, crop, 3), dtype=np.uint8)
        for slot, index in enumerate(indices):
            photo = self.photos[index]
            y = int(rng.integers(0, photo.shape[0] - crop + 1))
            x = int(rng.integers(0, photo.shape[1] - crop + 1))
            patch = photo[y : y + crop, x : x + crop]
            batch[slot] = patch[:, ::-1] if rng.random() < 0.5 else patch
        return torch.from_numpy(batch).permute(0, 3, 1, 2)

    def center_squares(self, size: int) -> torch.Tensor:
        """Every photo's central square resized to size x size -> uint8 (N, 3, size, size), for validation."""
        from PIL import Image

        squares = []
        for photo in self.photos:
            side = min(photo.shape[:2])
            y = (photo.shape[0] - side) // 2
            x = (photo.shape[1] - side) // 2
            square = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.Resampling.BICUBIC)
            squares.append(np.asarray(square))
        return torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2)
