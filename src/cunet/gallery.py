"""A reference gallery (paper §4.1, eq. 24): colour photos indexed by what a gray photo can be
compared with, each carrying the a*b* histogram that becomes the global hint when it is picked.

Per photo the gallery stores its a*b* histogram over the in-gamut bins, two query descriptors —
the paper's luminance histogram, and the network's own bottleneck features (mean and spread of
conv4 over the photo, standardised over the gallery) — an optional small thumbnail and its source
path. Matches are ranked by Euclidean distance between descriptors (eq. 24). The bottleneck
descriptor belongs to the model that computed it: a gallery remembers that model's fingerprint,
and a query with another model falls back to the luminance histogram.

Stored as safetensors (tensors + a JSON metadata string): no pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from cunet.checkpoint import FLOAT_DTYPES, open_tensors, write_tensors
from cunet.errors import CunetError
from cunet.gamut import num_bins
from cunet.hints import network_inputs, photo_histogram
from cunet.io import load_rgb8
from cunet.model import CUNet

FORMAT = "cunet-gallery/1"
LUMINANCE_BINS = 32
THUMBNAIL = 64
DESCRIPTORS = ("predicted", "features", "luminance")
DEFAULT_GALLERY = "default.gallery"
#: Most photos a gallery file may hold (the bundled one has a few thousand).
MAX_GALLERY_PHOTOS = 1_000_000


def luminance_histogram(lightness: torch.Tensor) -> torch.Tensor:
    """L* (*, 1, H, W) in [0, 100] -> normalised histogram (*, LUMINANCE_BINS): the paper's descriptor."""
    flat = lightness.float().flatten(-3).clamp(0, 100)
    index = (flat * (LUMINANCE_BINS / 100.0)).long().clamp_max(LUMINANCE_BINS - 1)
    counts = torch.zeros(*index.shape[:-1], LUMINANCE_BINS)
    counts.scatter_add_(-1, index, torch.ones_like(flat))
    return counts / index.shape[-1]


@torch.no_grad()
def content_features(model: CUNet, lightness: torch.Tensor) -> torch.Tensor:
    """L* (B, 1, H, W) -> (B, 2 x 8w): the mean and the spread over the photo of the network's
    bottleneck, run with no hints: what the network recognises, whatever the photo's size."""
    empty = torch.zeros(lightness.shape[0], 3, *lightness.shape[-2:])
    inputs = network_inputs(lightness, empty, model.config.propagated_hints)
    parameter = next(model.parameters())
    bottleneck = model.bottleneck(inputs.to(parameter.device, parameter.dtype)).float().cpu().flatten(2)
    return torch.cat([bottleneck.mean(-1), bottleneck.std(-1)], dim=1)


def model_fingerprint(model: CUNet) -> str:
    """A short hash of a model's weights (as float32): which model a gallery's features belong to.

    The histogram head is left out: it reads the bottleneck features and changes none of them, so a
    gallery built with a model still serves it once a head is fitted (`cunet fit-histogram-head`)."""
    config = {key: value for key, value in model.config.to_dict().items() if key != "histogram_head"}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        if name.startswith("histogram."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


#: Rounds of the k-medoids refinement in `Gallery.spread` (it settles within a few).
MEDOID_ROUNDS = 20


def refine_medoids(distances: torch.Tensor, chosen: list[int], rounds: int = MEDOID_ROUNDS) -> list[int]:
    """k-medoids' alternating refinement on a (n, n) distance matrix from the start `chosen` (indices,
    the first kept fixed): each other medoid moves to the member of its group nearest all the others."""
    for _ in range(rounds):
        group = distances[:, chosen].argmin(dim=1)
        group[chosen] = torch.arange(len(chosen))  # a medoid belongs to its own group, ties or not
        updated = chosen[:1]
        for label in range(1, len(chosen)):
            members = (group == label).nonzero().flatten()
            updated.append(int(members[distances[members][:, members].sum(dim=1).argmin()]))
        if updated == chosen:
            break
        chosen = updated
    return chosen


def medoid_spread(points: torch.Tensor, k: int) -> list[int]:
    """k rows of `points` (n, d), row 0 first and kept: k-medoids on their Euclidean distances, PAM's
    greedy start (each next medoid the one that cuts the total distance most), then `refine_medoids`."""
    distances = torch.cdist(points, points)
    chosen = [0]
    while len(chosen) < min(k, len(points)):
        nearest = distances[:, chosen].min(dim=1).values
        gains = (nearest[:, None] - distances).clamp_min(0).sum(dim=0)
        gains[chosen] = -1.0  # distinct rows even where points repeat
        chosen.append(int(gains.argmax()))
    return refine_medoids(distances, chosen)


@dataclass(eq=False)
class Gallery:
    """Indexed colour photos: a*b* histograms (N, Q), luminance histograms (N, B), standardised
    bottleneck features (N, D) or None, thumbnails (N, T, T, 3) uint8 or None, paths, sources."""

    histograms: torch.Tensor
    luminance: torch.Tensor
    features: torch.Tensor | None = None
    feature_mean: torch.Tensor | None = None
    feature_std: torch.Tensor | None = None
    thumbnails: torch.Tensor | None = None
    paths: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    model_fingerprint: str | None = None
    working_size: int = 128
    query_descriptor: str | None = None  # force one descriptor; None: `descriptor_for` decides

    def __len__(self) -> int:
        return self.histograms.shape[0]

    def descriptor_for(self, model: CUNet | None) -> str:
        """How `model` queries this gallery (measured: benchmarks/retrieval.py). The first match is the
        photo whose real histogram lies nearest to the histogram of the model's own automatic colouring
        ("predicted"); the further ones, for variants, the photos nearest in content: the network's
        bottleneck "features" when this gallery's features came from `model`, else the luminance
        histogram. `query_descriptor` forces one descriptor for every match."""
        if self.query_descriptor is not None:
            return self.query_descriptor
        if self.features is not None and model is not None and model_fingerprint(model) == self.model_fingerprint:
            return "predicted+features"
        return "predicted+luminance"

    def describe(self, model: CUNet | None, lightness: torch.Tensor, descriptor: str) -> torch.Tensor:
        """A gray photo's L* (1, 1, h, w) at the working size -> its query vector of `descriptor`."""
        if descriptor == "luminance":
            return luminance_histogram(lightness)[0]
        if descriptor != "features" or self.features is None or model is None:
            raise CunetError(f"this gallery cannot be queried by {descriptor!r}")
        query = content_features(model, lightness)
        if query.shape[1] != self.features.shape[1]:
            raise CunetError(f"this gallery's features have {self.features.shape[1]} values, the model's "
                             f"{query.shape[1]}: it was built with another model")
        return ((query - self.feature_mean) / self.feature_std)[0]

    def rank(self, query: torch.Tensor, descriptor: str) -> torch.Tensor:
        """Gallery indices, nearest first, by Euclidean distance (eq. 24) between descriptors."""
        table = {"predicted": self.histograms, "features": self.features, "luminance": self.luminance}[descriptor]
        return torch.argsort(torch.cdist(query[None].float(), table.float())[0], stable=True)

    def spread(self, order: torch.Tensor, k: int, pool: int) -> list[int]:
        """k of the first `pool` of `order`: the first (the nearest match), then one photo for each of
        the pool's other colour modes, so that k colourings are plausible yet different.

        k-medoids (`medoid_spread`, the first kept fixed) on the Hellinger distance between a*b*
        histograms (Euclidean on their square roots): each variant is the most typical member of a
        group of similar colourings, not the most extreme photo, as farthest-point sampling picked.
        On plain histograms the distance is set by the few largest bins (skin, gray, dark clothes),
        so groups differing in a smaller share of their colours were merged: best of 4 +0.95 dB
        there against +1.08 on square roots with the bundled model (benchmarks/variant_spread.py).
        """
        distinct: dict[bytes, int] = {}  # photos of one histogram give one colouring: the nearest stands for them
        for index in order[:pool].tolist():
            distinct.setdefault(self.histograms[index].numpy().tobytes(), index)
        candidates = list(distinct.values())
        if len(candidates) <= k:
            return candidates
        roots = self.histograms[candidates].float().clamp_min(0).sqrt()
        return [candidates[i] for i in medoid_spread(roots, k)]

    def info(self) -> dict:
        """What `cunet gallery info` prints: photos per source, the descriptors it can be queried by,
        the model its features belong to."""
        counts = dict(Counter(self.sources))
        descriptors = [d for d in DESCRIPTORS if d != "features" or self.features is not None]
        return {"photos": len(self), "sources": counts, "descriptors": descriptors, "model": self.model_fingerprint,
                "thumbnails": self.thumbnails is not None, "working_size": self.working_size}

    def save(self, path: str | os.PathLike) -> None:
        tensors = {"histograms": self.histograms.half(), "luminance": self.luminance.half()}
        if self.features is not None:
            tensors.update(features=self.features.half(), feature_mean=self.feature_mean.float(),
                           feature_std=self.feature_std.float())
        if self.thumbnails is not None:
            tensors["thumbnails"] = self.thumbnails
        write_tensors(Path(path), tensors, {"kind": FORMAT, "paths": self.paths, "sources": self.sources,
                                            "model": self.model_fingerprint, "working_size": self.working_size})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gallery:
        """A gallery file, every part checked before it is used: one histogram, luminance histogram,
        path and source per photo (and feature row and thumbnail, when stored), finite values."""
        with open_tensors(path, "gallery file") as file:
            fields = file.fields()
            if fields.values.get("kind") != FORMAT or "histograms" not in file.shapes:
                raise CunetError(f"{file.path}: a cunet file, but not a gallery")
            count = file.check("histograms", (None, num_bins()), FLOAT_DTYPES)[0]
            if not 1 <= count <= MAX_GALLERY_PHOTOS:
                raise CunetError(f"{file.path}: {count:,} photos; a gallery holds 1 to {MAX_GALLERY_PHOTOS:,}")
            file.check("luminance", (count, LUMINANCE_BINS), FLOAT_DTYPES)
            features = mean = std = thumbnails = None
            if "features" in file.shapes:
                width = file.check("features", (count, None), FLOAT_DTYPES)[1]
                file.check("feature_mean", (width,), FLOAT_DTYPES)
                file.check("feature_std", (width,), FLOAT_DTYPES)
                features, mean, std = (file.float_tensor(name) for name in ("features", "feature_mean", "feature_std"))
                if not bool((std > 0).all()):
                    raise CunetError(f"{file.path}: tensor feature_std must be positive")
            if "thumbnails" in file.shapes:
                side = file.check("thumbnails", (count, None, None, 3), ("U8",))[1]
                if file.shapes["thumbnails"][2] != side or side > 1024:
                    raise CunetError(f"{file.path}: tensor thumbnails must be square, at most 1024 px")
                thumbnails = file.tensor("thumbnails")
            histograms, luminance = file.float_tensor("histograms"), file.float_tensor("luminance")
            if not bool((histograms >= 0).all()) or not bool((histograms.sum(1) > 0).all()):
                raise CunetError(f"{file.path}: tensor histograms must be non-negative, each row with a positive sum")
            histograms = histograms / histograms.sum(1, keepdim=True)  # a distribution per photo, whatever was stored
            return cls(histograms, luminance, features, mean, std, thumbnails,
                       fields.texts("paths", count), fields.texts("sources", count),
                       fields.text("model", default=None, optional=True),
                       fields.integer("working_size", 16, 1024, default=128))


def bundled_gallery_path() -> Path:
    return Path(str(resources.files("cunet") / "weights" / DEFAULT_GALLERY))


_BUNDLED: dict[str, Gallery] = {}


def bundled_gallery() -> Gallery:
    """The gallery that ships inside the package (histograms and descriptors of training photos, no
    thumbnails), loaded once per process."""
    if "default" not in _BUNDLED:
        _BUNDLED["default"] = Gallery.load(bundled_gallery_path())
    return _BUNDLED["default"]


def build_gallery(
    model: CUNet | None, paths: list[Path], sources: list[str] | None = None, working_size: int = 128,
    thumbnails: bool = True, progress: bool = True,
) -> tuple[Gallery, int]:
    """Index colour photos -> (gallery, number skipped as unreadable). With a model, the bottleneck
    descriptor is stored too (standardised over these photos)."""
    from cunet.colorizer import working_lab  # lazily: colorizer imports this module's users

    sources = list(sources) if sources is not None else [Path(p).parent.name for p in paths]
    histograms, luminance, features, thumbs, kept_paths, kept_sources = [], [], [], [], [], []
    skipped = 0
    for path, source in tqdm(list(zip(paths, sources)), desc="indexing", unit="photo", disable=not progress):
        try:
            rgb8 = load_rgb8(path, max_short_side=2 * working_size)
        except (OSError, ValueError, SyntaxError):  # CunetError is a ValueError
            skipped += 1
            continue
        lab = working_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1)[None].float() / 255, working_size)
        histograms.append(photo_histogram(lab[0, 1:]))
        luminance.append(luminance_histogram(lab[:, :1])[0])
        if model is not None:
            features.append(content_features(model, lab[:, :1])[0])
        if thumbnails:
            thumbs.append(torch.from_numpy(np.array(ImageOps.fit(Image.fromarray(rgb8), (THUMBNAIL, THUMBNAIL)))))
        kept_paths.append(str(path))
        kept_sources.append(source)
    if not histograms:
        raise CunetError("no readable colour photos to index")
    gallery = Gallery(torch.stack(histograms), torch.stack(luminance), paths=kept_paths, sources=kept_sources,
                      working_size=working_size, thumbnails=torch.stack(thumbs) if thumbnails else None)
    if model is not None:
        table = torch.stack(features)
        gallery.feature_mean = table.mean(0)
        gallery.feature_std = table.std(0).clamp_min(1e-6) if len(table) > 1 else torch.ones(table.shape[1])
        gallery.features = (table - gallery.feature_mean) / gallery.feature_std
        gallery.model_fingerprint = model_fingerprint(model)
    return gallery, skipped
