"""How far the automatic palette and the chroma gain should give way to the user's points.

A model whose automatic colouring is made vivid by a predicted palette (the histogram head's global
hint) and a chroma gain would, left alone, keep both when points are added: the network weighs the
palette against the points and the gain overshoots every colour the points carry. `Colorizer`
lets them give way (`hints_lead`): inside each point's region (`cunet.point_fill.hint_reach`) and,
in proportion to the points' count, everywhere, fully at `hints_for_full_way` points. This scores
each way on the val photos with `cunet.evaluate`'s protocol (the same photos and points for every
variant), with Levin et al. on the same points and a baseline model (the previous default) beside:
the headline PSNR (the macro over the sources that are not face crops) and the colourfulness at
each point count.

    python benchmarks/hints_lead.py --limit 30 --baseline-model models/v2-stage4.safetensors \
        --out benchmarks/results/hints_lead.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from cunet.colorizer import Colorizer
from cunet.evaluate import evaluate, evaluation_set
from cunet.io import write_atomic

DATA = ["../shared/data/people", "../shared/data/people-scenes", "../shared/data/scenes"]
#: (label, Colorizer fields): the ways the palette and gain may meet the points.
VARIANTS = [
    ("palette and gain everywhere", {"hints_lead": False}),
    ("give way in the points' regions only", {"hints_for_full_way": 10**9}),
    ("... and everywhere from 1 point", {"hints_for_full_way": 1}),
    ("... and everywhere by 5 points", {"hints_for_full_way": 5}),
    ("... and everywhere by 10 points", {"hints_for_full_way": 10}),
]


def headline(report: dict) -> dict:
    """{points: (PSNR, colourfulness)} of a report's headline."""
    return {r["points"]: (r["psnr"]["mean"], r["colorfulness"]["mean"]) for r in report["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=DATA, help="folders or manifest.csv files (their val split)")
    parser.add_argument("--model", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--baseline-model", default=None, help="a model scored beside, as it comes")
    parser.add_argument("--points", default="0,1,5,10,50", help="comma-separated point counts")
    parser.add_argument("--limit", type=int, default=30, help="first N photos of each source")
    parser.add_argument("--out", default="benchmarks/results/hints_lead.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    paths, sources = evaluation_set(args.data, "val", args.limit)
    counts = [int(value) for value in args.points.split(",")]
    model = Colorizer.from_pretrained(args.model)
    rows = {}

    def score(label, colorizer, method="cunet"):
        report = evaluate(paths, [method], counts if method == "cunet" else [c for c in counts if c],
                          ["none"], colorizer, sources=sources)
        rows[label] = {str(points): {"psnr": psnr, "colorfulness": colour}
                       for points, (psnr, colour) in headline(report).items()}
        print(f"{label:<40}" + "".join(f"{points:>4} pt {psnr:6.2f} / {colour:4.1f}"
                                       for points, (psnr, colour) in headline(report).items()), flush=True)

    for label, fields in VARIANTS:
        score(label, replace(model, **fields))
    if args.baseline_model:
        score(f"baseline {args.baseline_model}", Colorizer.from_pretrained(args.baseline_model))
    score("Levin et al., the same points", None, "levin")
    text = json.dumps({"data": args.data, "model": args.model or "bundled default", "photos": len(paths),
                       "figures": "headline PSNR (dB) and colourfulness by point count", "rows": rows}, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
