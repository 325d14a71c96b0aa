"""How far a point's correction should reach and what should stop it (`cunet.point_fill.FillSettings`).

After the network each point's miss is spread over the photo, edge-aware (`cunet.point_fill`); its
reach, the L* step that stops it, the texture it ignores and the shares that make it full or none
were set by hand on synthetic photos. This scores each setting, one changed at a time from the
default (and any combinations given), with `cunet.evaluate`'s protocol (the same photos and points
for every row) on the *train* split, so that the choice is not made on the photos it is judged on:
the headline PSNR (the macro over the sources that are not face crops) at each point count, and
their mean, by which the rows are ranked.

`--levin-residual` adds a different way to spread the misses: the network's answer without the fill
plus its misses propagated by Levin et al.'s optimisation at the photo's full size (what a slower,
global solve would buy over the domain transform), beside the fill and no fill on the same photos.

    python benchmarks/point_fill_settings.py --limit 15 --out benchmarks/results/point_fill_settings.json
    python benchmarks/point_fill_settings.py --limit 15 --only --levin-residual \
        --out benchmarks/results/point_fill_levin_residual.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cunet.baselines import levin_ab
from cunet.color import denormalize_ab
from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.evaluate import Harness, _lab_of, _to_uint8, evaluate, evaluation_set, load_eval_photo, protocol_points
from cunet.hints import encode_point_hints
from cunet.io import write_atomic
from cunet.metrics import psnr
from cunet.point_fill import DEFAULT_FILL, FillSettings
from cunet.sources import headline_sources

DATA = ["../shared/data/people", "../shared/data/people-scenes", "../shared/data/scenes"]
#: Each field's other values, tried one at a time from the default.
ONE_AT_A_TIME = {
    "sigma_space": [32.0, 128.0, 256.0],
    "sigma_range": [3.0, 12.0, 24.0],
    "texture_radius": [0, 1, 4],
    "full_share": [0.1, 0.5],
    "none_share": [0.001, 0.05],
}


def parse_settings(text: str) -> FillSettings:
    """'sigma_space=128,sigma_range=12' -> FillSettings with those fields changed."""
    types = {f.name: type(getattr(DEFAULT_FILL, f.name)) for f in fields(FillSettings)}
    changes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in types:
            raise SystemExit(f"error: unknown fill setting {name!r}; choose from {', '.join(types)}")
        try:
            changes[name] = types[name](value)
        except ValueError:
            kind = "a whole number" if types[name] is int else "a number"
            raise SystemExit(f"error: fill setting {name} must be {kind}, got {value!r}") from None
    try:
        return replace(DEFAULT_FILL, **changes)
    except CunetError as error:
        raise SystemExit(f"error: {error}") from None


def label_of(settings: FillSettings) -> str:
    changed = [f"{f.name}={getattr(settings, f.name):g}" for f in fields(FillSettings)
               if getattr(settings, f.name) != getattr(DEFAULT_FILL, f.name)]
    return ", ".join(changed) or "default"


def levin_residual_rows(model: Colorizer, paths: list[Path], sources: list[str], counts: list[int]) -> dict:
    """Headline PSNR by point count of: the fill (default), no fill, and no fill plus the misses
    spread by Levin et al. on the full-size L* (the protocol's photos and points)."""
    filled, unfilled = Harness(model), Harness(replace(model, point_fill=False))
    scores: dict = defaultdict(lambda: defaultdict(list))
    for index, path in enumerate(tqdm(paths, desc="levin residual", unit="photo")):
        rgb8 = load_eval_photo(path)
        lab = _lab_of(rgb8)
        lightness = lab[:1]
        for count in counts:
            points = protocol_points(lab[1:], count, index)
            raw = unfilled.run("cunet", lightness, points, None)
            raw_ab = _lab_of(raw)[1:]
            maps = encode_point_hints(points, *lightness.shape[1:])
            miss = (denormalize_ab(maps[:2]) - raw_ab).permute(1, 2, 0).double().numpy()
            spread = levin_ab(lightness[0].double().numpy(), miss, maps[2].numpy() > 0)
            residual = _to_uint8(lightness, raw_ab + torch.from_numpy(spread).permute(2, 0, 1).float())
            for label, output in (("fill (default)", filled.run("cunet", lightness, points, None)),
                                  ("no fill", raw), ("no fill + Levin-propagated misses", residual)):
                scores[label][count, sources[index]].append(float(psnr(output, rgb8)))
    kept = headline_sources(sources)
    return {label: {str(count): float(np.mean([np.mean(by[count, name]) for name in kept])) for count in counts}
            for label, by in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=DATA, help="folders or manifest.csv files")
    parser.add_argument("--split", default="train", help="which split of a manifest to score on")
    parser.add_argument("--model", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--points", default="1,5,10,50", help="comma-separated point counts")
    parser.add_argument("--limit", type=int, default=15, help="first N photos of each source")
    parser.add_argument("--only", nargs="*", default=None, help="score these settings (and the default) only")
    parser.add_argument("--also", nargs="*", default=[], help="more settings, e.g. sigma_space=128,sigma_range=12")
    parser.add_argument("--levin-residual", action="store_true", help="also score misses spread by Levin et al.")
    parser.add_argument("--out", default="benchmarks/results/point_fill_settings.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    paths, sources = evaluation_set(args.data, args.split, args.limit)
    counts = [int(value) for value in args.points.split(",")]
    model = Colorizer.from_pretrained(args.model)
    if args.only is not None:
        candidates = [DEFAULT_FILL] + [parse_settings(text) for text in args.only]
    else:
        candidates = [DEFAULT_FILL] + [replace(DEFAULT_FILL, **{name: value})
                                       for name, values in ONE_AT_A_TIME.items() for value in values]
    candidates += [parse_settings(text) for text in args.also]
    rows = {}
    for settings in candidates:
        report = evaluate(paths, ["cunet"], counts, ["none"], replace(model, fill_settings=settings), progress=False,
                          sources=sources)
        by_count = {str(r["points"]): r["psnr"]["mean"] for r in report["results"]}
        mean = sum(by_count.values()) / len(by_count)
        rows[label_of(settings)] = {"settings": {f.name: getattr(settings, f.name) for f in fields(FillSettings)},
                                    "psnr": by_count, "mean": mean}
        print(f"{label_of(settings):<32}" + "".join(f"{c:>4} pt {v:6.2f}" for c, v in by_count.items())
              + f"   mean {mean:6.3f}", flush=True)
    best = max(rows, key=lambda label: rows[label]["mean"])
    result = {"data": args.data, "split": args.split, "model": args.model or "bundled default",
              "photos": len(paths), "points": counts, "figures": "headline PSNR (dB) by point count",
              "rows": rows, "best": best}
    if args.levin_residual:
        result["levin_residual"] = levin_residual_rows(model, paths, sources, counts)
        for label, by_count in result["levin_residual"].items():
            print(f"{label:<36}" + "".join(f"{c:>4} pt {v:6.2f}" for c, v in by_count.items()), flush=True)
    text = json.dumps(result, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"best: {best}\nwrote {args.out}")


if __name__ == "__main__":
    main()
