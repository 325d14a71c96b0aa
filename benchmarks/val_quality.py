"""Quality of a model on held-out photos, the first issue's acceptance protocol.

Each photo is resized to 256x256 (PIL bicubic); ground truth is its Lab. Point hints are P x P
patches (P = 5) whose positions come from numpy.random.default_rng(i), i = the photo's index in
sorted file order, each holding the patch's mean ground-truth a*b*. The global hint is the ground
truth's own histogram (an oracle, as in the paper's Table 10). PSNR is on 8-bit RGB (eq. 25-26).

    python benchmarks/val_quality.py --data ../shared/data/people --out benchmarks/results/val_quality.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from cunet.color import join_lab, rgb_to_lab
from cunet.colorizer import Colorizer
from cunet.data import list_photos
from cunet.hints import ground_truth_points
from cunet.io import write_atomic
from cunet.metrics import psnr

SIZE = 256


def evaluate(colorizer: Colorizer, paths: list[Path], points: int, patch: int, size: int | None) -> dict[str, list[float]]:
    """Per-photo PSNR for each setting."""
    scores: dict[str, list[float]] = {"gray": [], "automatic": [], "gt_histogram": [], f"points_{points}": [],
                                      f"points_{points}_gt_histogram": []}
    for index, path in enumerate(tqdm(paths, desc="evaluating", unit="photo")):
        with Image.open(path) as image:
            rgb8 = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC))
        rgb = torch.from_numpy(rgb8).permute(2, 0, 1).float() / 255.0
        lab = rgb_to_lab(rgb)
        hints = ground_truth_points(lab[1:], [patch] * points, np.random.default_rng(index))
        histogram = colorizer.histogram_of(rgb8)
        gray = join_lab(lab[:1], torch.zeros_like(lab[1:]))
        scores["gray"].append(float(psnr(gray, rgb)))
        runs = {"automatic": {}, "gt_histogram": {"histogram": histogram}, f"points_{points}": {"points": hints},
                f"points_{points}_gt_histogram": {"points": hints, "histogram": histogram}}
        for name, kwargs in runs.items():
            result = colorizer.colorize(rgb8, size=size, **kwargs)
            scores[name].append(float(psnr(np.asarray(result), rgb8)))
    return scores


def summarise(scores: dict[str, list[float]]) -> dict:
    summary = {}
    for name, values in scores.items():
        array = np.asarray(values)
        summary[name] = {"psnr_mean": float(array.mean()), "psnr_sem": float(array.std(ddof=1) / np.sqrt(len(array))),
                         "gain_over_gray_db": float(array.mean() - np.mean(scores["gray"]))}
    return summary


def by_source(paths: list[Path], scores: dict[str, list[float]]) -> dict:
    """The same summary per source folder (the sources differ a lot: face crops gain most from colour)."""
    groups: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        groups.setdefault(path.parent.name, []).append(index)
    return {source: {"photos": len(indices), **summarise({k: [v[i] for i in indices] for k, v in scores.items()})}
            for source, indices in groups.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/people", help="folder with manifest.csv (val split used)")
    parser.add_argument("--model", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--patch", type=int, default=5)
    parser.add_argument("--size", type=int, default=None, help="working size (default: the model's)")
    parser.add_argument("--out", default="benchmarks/results/val_quality.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    colorizer = Colorizer.from_pretrained(args.model)
    paths = sorted(list_photos(args.data, args.split))[: args.limit]
    started = time.perf_counter()
    scores = evaluate(colorizer, paths, args.points, args.patch, args.size)
    summary = summarise(scores)
    report = {
        "protocol": f"{args.split} split, {SIZE}x{SIZE} bicubic, {args.points} points of {args.patch}x{args.patch} "
                    "(default_rng(i)), oracle histogram; PSNR on 8-bit RGB",
        "model": args.model or "bundled default",
        "working_size": args.size or colorizer.working_size,
        "photos": len(paths),
        "seconds": round(time.perf_counter() - started, 1),
        "results": summary,
        "by_source": by_source(paths, scores),
    }
    text = json.dumps(report, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"{'setting':<28}{'PSNR (dB)':>12}{'± sem':>8}{'vs gray':>10}")
    for name, values in summary.items():
        print(f"{name:<28}{values['psnr_mean']:>12.2f}{values['psnr_sem']:>8.2f}{values['gain_over_gray_db']:>+10.2f}")
    for source, values in report["by_source"].items():
        gains = ", ".join(f"{k} {v['gain_over_gray_db']:+.2f}" for k, v in values.items() if k not in ("photos", "gray"))
        print(f"  {source} ({values['photos']} photos, gray {values['gray']['psnr_mean']:.2f} dB): {gains}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
