"""How should the K variants be picked from the photos nearest to a query? (issue 10)

`Gallery.spread` takes, from the `pool` nearest gallery photos, the first plus K - 1 others. This
runs `cunet.evaluate`'s best-of-K setting (an oracle pick among the K colourings, with their mutual
a*b* distance) on the val photos for several ways of choosing them:

- cunet: the shipped rule, k-medoids with PAM's greedy start on the Hellinger distance between
  the a*b* histograms (Euclidean on their square roots);
- euclidean: the same on the plain histograms (the rule shipped before);
- farthest: each next one the photo farthest in colour from those taken (farthest-point sampling);
- medoids-farthest: k-medoids on the plain histograms seeded by farthest-point sampling.

    python benchmarks/variant_spread.py ../shared/data/people ../shared/data/people-scenes \
        --gallery ../runs/gallery/train_v2s4.gallery --rules cunet:64,euclidean:32 \
        --out benchmarks/results/variant_spread.json
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import cunet.colorizer as colorizer_module
from cunet.evaluate import evaluate
from cunet.gallery import Gallery, medoid_spread, refine_medoids
from cunet.io import write_atomic
from retrieval import gallery_benchmark_parser, gallery_benchmark_setting  # beside this file

SHIPPED_SPREAD = Gallery.spread


def farthest(gallery: Gallery, order: torch.Tensor, k: int, pool: int) -> list[int]:
    candidates = list(dict.fromkeys(order[:pool].tolist()))
    chosen = candidates[:1]
    while len(chosen) < min(k, len(candidates)):
        rest = [i for i in candidates if i not in chosen]
        gaps = torch.cdist(gallery.histograms[rest].float(), gallery.histograms[chosen].float()).min(dim=1).values
        chosen.append(rest[int(gaps.argmax())])
    return chosen


def medoids_farthest(gallery: Gallery, order: torch.Tensor, k: int, pool: int) -> list[int]:
    candidates = list(dict.fromkeys(order[:pool].tolist()))
    if len(candidates) <= k:
        return candidates
    histograms = gallery.histograms[candidates].float()
    distances = torch.cdist(histograms, histograms)
    chosen = [0]
    while len(chosen) < k:
        gaps = distances[:, chosen].min(dim=1).values
        gaps[chosen] = -1.0
        chosen.append(int(gaps.argmax()))
    return [candidates[i] for i in refine_medoids(distances, chosen)]


def euclidean(gallery: Gallery, order: torch.Tensor, k: int, pool: int) -> list[int]:
    candidates = list(dict.fromkeys(order[:pool].tolist()))
    if len(candidates) <= k:
        return candidates
    return [candidates[i] for i in medoid_spread(gallery.histograms[candidates].float(), k)]


RULES = {"cunet": SHIPPED_SPREAD, "euclidean": euclidean, "farthest": farthest, "medoids-farthest": medoids_farthest}


def main() -> None:
    parser = gallery_benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--rules", default="cunet:64,euclidean:32,farthest:16,medoids-farthest:32",
                        help="RULE:POOL pairs; rules: " + ", ".join(RULES))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/variant_spread.json"))
    args = parser.parse_args()
    colorizer, gallery, paths, sources = gallery_benchmark_setting(args)
    results = {}
    try:
        for item in args.rules.split(","):
            rule, pool = item.split(":")
            Gallery.spread = RULES[rule]
            colorizer_module.VARIANT_POOL = int(pool)
            report = evaluate(paths, ["cunet"], [0], ["none", "variants"], colorizer, sources=sources,
                              gallery=gallery, variants=args.variants)
            rows = {r["global"]: r for r in report["results"]}
            gain = rows["variants"]["psnr"]["mean"] - rows["none"]["psnr"]["mean"]
            results[item] = {"best_of_k": rows["variants"]["psnr"], "gain_over_automatic": gain,
                             "gain_paired_sem": rows["variants"]["psnr_gain"]["sem"],
                             "variant_distance": rows["variants"]["variant_distance"],
                             "by_source_gain": {name: value["psnr"]["mean"] - rows["none"]["by_source"][name]["psnr"]["mean"]
                                                for name, value in rows["variants"]["by_source"].items()}}
            print(item, f"best of {args.variants}: {gain:+.3f} dB")
    finally:
        Gallery.spread = SHIPPED_SPREAD
    summary = {"photos": len(paths), "gallery": str(args.gallery), "variants": args.variants,
               "average": report["average"], "rules": results}
    write_atomic(args.out, lambda handle: handle.write((json.dumps(summary, indent=2) + "\n").encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
