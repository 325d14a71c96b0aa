"""Which query descriptor finds the best reference photo? (issue 10: the measured choice)

For each descriptor a gallery can be queried by — the a*b* histogram of the model's own automatic
colouring (compared with the gallery's real histograms), the network's bottleneck features, the
paper's luminance histogram (eq. 24) and, as a floor, a random gallery photo — run `cunet.evaluate` with the
global settings none (automatic), retrieved (top-1) and variants (best of K, an oracle pick, with
the variants' mutual a*b* distance), macro-averaged over sources, on the val photos. The gallery
must be built from the train split only (`cunet gallery build ... --split train`).

    python benchmarks/retrieval.py ../shared/data/people ../shared/data/people-scenes \
        --gallery ../runs/gallery/train_bundled.gallery --out benchmarks/results/retrieval.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from cunet.colorizer import Colorizer
from cunet.evaluate import evaluate, evaluation_set
from cunet.gallery import Gallery
from cunet.io import write_atomic


def with_descriptor(gallery: Gallery, descriptor: str) -> Gallery:
    """The same gallery, queried only by `descriptor` ("random": luminance replaced by noise)."""
    if descriptor == "default":
        return gallery
    if descriptor in ("features", "luminance", "predicted", "predicted+luminance"):
        return replace(gallery, query_descriptor=descriptor)
    noise = torch.rand(len(gallery), gallery.luminance.shape[1], generator=torch.Generator().manual_seed(0))
    return replace(gallery, luminance=noise, query_descriptor="luminance")


def gallery_benchmark_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every gallery benchmark takes (this one and variant_spread.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("data", nargs="+")
    parser.add_argument("--gallery", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="photos per source")
    return parser


def gallery_benchmark_setting(args: argparse.Namespace) -> tuple[Colorizer, Gallery, list, list]:
    """(colouriser, gallery, val photo paths, their sources) from those arguments."""
    paths, sources = evaluation_set(args.data, "val", args.limit)
    return Colorizer.from_pretrained(args.model), Gallery.load(args.gallery), paths, sources


def main() -> None:
    parser = gallery_benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--descriptors", default="default,predicted,features,luminance,random",
                        help="default: the gallery's own rule (predicted first match, then features)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/retrieval.json"))
    args = parser.parse_args()
    colorizer, gallery, paths, sources = gallery_benchmark_setting(args)
    results = {}
    for descriptor in args.descriptors.split(","):
        report = evaluate(paths, ["cunet"], [0], ["none", "retrieved", "variants"], colorizer, sources=sources,
                          gallery=with_descriptor(gallery, descriptor), variants=args.variants)
        rows = {r["global"]: r for r in report["results"]}
        results[descriptor] = {
            setting: {"psnr": row["psnr"], "colorfulness": row["colorfulness"],
                      **({"psnr_gain": row["psnr_gain"]} if "psnr_gain" in row else {}),
                      "by_source": {name: value["psnr"]["mean"] for name, value in row["by_source"].items()},
                      **({"variant_distance": row["variant_distance"]} if "variant_distance" in row else {})}
            for setting, row in rows.items()}
        print(descriptor, {s: round(v["psnr"]["mean"], 2) for s, v in results[descriptor].items()})
    summary = {"photos": len(paths), "sources": report["sources"], "gallery": str(args.gallery),
               "gallery_photos": len(gallery), "model": str(args.model or "bundled default"),
               "variants": args.variants, "average": report["average"], "descriptors": results}
    write_atomic(args.out, lambda handle: handle.write((json.dumps(summary, indent=2) + "\n").encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
