"""The a*b* up-sampler on its own: how much of a photo's colour comes back from a small a*b* map.

Each val photo's true a*b* is shrunk by 4x, 8x and 16x (area average), then brought back to the
photo's stored size by each method, guided by the photo's true L* (the guide at the small size is
its L* shrunk the same way). The score is the PSNR of the joined RGB (true L* + up-sampled a*b*)
against the photo, per source; the headline is the macro average over the sources that are not face
crops (`cunet.sources`). The guided filter is also swept over radius and regulariser, to choose
`cunet.upsample.RADIUS` and `EPSILON`, and run without its L* term (slopes 0: the compensated
bilinear alone), to show how much of the gain the photo's L* brings, and with a weaker back-projection
(compensation 0 ... 0.75), to show what each part brings here and end to end (below).

    python benchmarks/upsampling.py --data ../shared/data/people/manifest.csv \
        ../shared/data/people-scenes/manifest.csv ../shared/data/scenes/manifest.csv \
        --per-source 25 --out benchmarks/results/upsampling.json

With `--model` (a weights file, or "bundled"), the same photos at their stored size are coloured
automatically by the network at `--working-size`, and its a*b* is up-sampled by each method (one
network pass per photo): the end-to-end check that what helps true colour also helps the network's.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cunet.color import lab_to_rgb, rgb_to_lab
from cunet.data import list_labelled_photos
from cunet.io import load_rgb8, write_atomic
from cunet.metrics import psnr
from cunet.sources import headline_sources, macro_mean
from cunet.upsample import EPSILON, RADIUS, guided_upsample

FACTORS = (4, 8, 16)
SWEEP = [(r, e) for r in (1, 2, 3) for e in (1.0, 4.0, 16.0)]


#: Weights of the back-projection (`cunet.upsample.guided_coefficients`' compensation) swept both ways.
COMPENSATIONS = (0.0, 0.25, 0.5, 0.75)


def compensation_sweep() -> dict:
    return {f"guided, compensation {c:g}": (RADIUS, EPSILON, c) for c in COMPENSATIONS}


def methods(sweep: bool) -> dict:
    chosen = {"bilinear": None, f"guided r={RADIUS} eps={EPSILON:g}": (RADIUS, EPSILON),
              "compensated bilinear (guided without L*)": (RADIUS, 1e12)}
    if sweep:
        chosen.update({f"guided r={r} eps={e:g}": (r, e) for r, e in SWEEP})
        chosen.update(compensation_sweep())
    return chosen


def upsampled(ab_small: torch.Tensor, l_small: torch.Tensor, l_full: torch.Tensor, setting) -> torch.Tensor:
    if setting is None:
        return F.interpolate(ab_small, size=l_full.shape[-2:], mode="bilinear", align_corners=False)
    return guided_upsample(ab_small, l_small, l_full, *setting)


def end_to_end_settings() -> dict:
    return {"bilinear": None, f"guided r={RADIUS} eps={EPSILON:g}": (RADIUS, EPSILON, 1.0),
            **compensation_sweep(), "compensated bilinear (guided without L*)": (RADIUS, 1e12, 1.0)}


def score_network(colorizer, rgb8: np.ndarray, settings: dict) -> dict[str, float]:
    """The network's automatic a*b* at the working size, up-sampled to the photo by each method."""
    prepared = colorizer.prepare(rgb8)
    ab = colorizer.predict_ab(prepared)
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1)[None].float() / 255)
    small = prepared.lightness_at(tuple(ab.shape[-2:]))
    return {name: joined_psnr(lab[:, :1], upsampled(ab, small, lab[:, :1], setting), rgb8)
            for name, setting in settings.items()}


def joined_psnr(lightness: torch.Tensor, ab: torch.Tensor, target8: np.ndarray) -> float:
    """PSNR against the photo of its own L* (1, 1, H, W) joined with a*b* (1, 2, H, W)."""
    out = lab_to_rgb(torch.cat([lightness, ab], dim=1))
    return float(psnr(out[0].permute(1, 2, 0).numpy(), target8))


def score_photo(rgb8: np.ndarray, factor: int, settings: dict) -> dict[str, float]:
    height, width = (rgb8.shape[0] // factor) * factor, (rgb8.shape[1] // factor) * factor
    rgb = torch.from_numpy(rgb8[:height, :width]).permute(2, 0, 1)[None].float() / 255
    lab = rgb_to_lab(rgb)
    small = F.avg_pool2d(lab, factor)
    target = rgb8[:height, :width]
    scores = {}
    for name, setting in settings.items():
        scores[name] = joined_psnr(lab[:, :1], upsampled(small[:, 1:], small[:, :1], lab[:, :1], setting), target)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="manifest.csv files (their val split)")
    parser.add_argument("--per-source", type=int, default=40, help="val photos per source (first by manifest order)")
    parser.add_argument("--no-sweep", action="store_true", help="only bilinear and the chosen guided setting")
    parser.add_argument("--model", default=None, help="end to end: a weights file or 'bundled' (see above)")
    parser.add_argument("--working-size", type=int, default=64, help="the network's working size (end to end)")
    parser.add_argument("--out", default="benchmarks/results/upsampling.json")
    args = parser.parse_args()
    photos = []
    for manifest in args.data:
        counts: dict = defaultdict(int)
        for path, source in list_labelled_photos(manifest, "val"):
            if counts[source] < args.per_source:
                counts[source] += 1
                photos.append((path, source))
    colorizer = None
    if args.model:
        from cunet.colorizer import Colorizer

        colorizer = Colorizer.from_pretrained(None if args.model == "bundled" else args.model, args.working_size)
    settings = end_to_end_settings() if colorizer else methods(not args.no_sweep)
    factors = [f"network at {args.working_size}"] if colorizer else FACTORS
    scores: dict = {factor: defaultdict(lambda: defaultdict(list)) for factor in factors}
    for path, source in tqdm(photos, desc="photos", unit="photo"):
        rgb8 = load_rgb8(path)
        if colorizer:
            for name, value in score_network(colorizer, rgb8, settings).items():
                scores[factors[0]][name][source].append(value)
            continue
        for factor in FACTORS:
            if min(rgb8.shape[:2]) < 2 * factor:
                continue
            for name, value in score_photo(rgb8, factor, settings).items():
                scores[factor][name][source].append(value)
    sources = sorted({source for _, source in photos})
    headline = headline_sources(sources)
    extra = [f"--model={args.model}", f"--working-size={args.working_size}"] if colorizer else []
    report = {"command": "python benchmarks/upsampling.py " + " ".join(
                  f"--data {' '.join(args.data)}".split() + [f"--per-source={args.per_source}"] + extra),
              "photos": len(photos), "sources": sources, "headline_sources": headline, "factors": {}}
    for factor in factors:
        table = {}
        for name in settings:
            by_source = {source: statistics.fmean(values) for source, values in scores[factor][name].items()}
            paired = {source: statistics.fmean(np.subtract(values, scores[factor]["bilinear"][source]))
                      for source, values in scores[factor][name].items()}
            table[name] = {"headline": round(macro_mean(by_source, headline), 3),
                           "paired_headline_over_bilinear": round(macro_mean(paired, headline), 4),
                           "macro_all": round(macro_mean(by_source, sources), 3),
                           "by_source": {s: round(v, 3) for s, v in sorted(by_source.items())}}
        base = table["bilinear"]["headline"]
        for entry in table.values():
            entry["headline_over_bilinear"] = round(entry["headline"] - base, 3)
        report["factors"][str(factor)] = table
    write_atomic(Path(args.out), lambda handle: handle.write((json.dumps(report, indent=1) + "\n").encode()))
    for factor, table in report["factors"].items():
        best = max(table, key=lambda n: table[n]["headline"])
        print(f"{factor}: bilinear {table['bilinear']['headline']:.2f} dB; "
              + "; ".join(f"{n} {t['headline_over_bilinear']:+.2f}" for n, t in table.items() if n != "bilinear")
              + f"  (best: {best})")


if __name__ == "__main__":
    main()
