"""Quality of a model on the val splits, by source: a thin call of `cunet.evaluate` (the protocol
lives there once), for cunet's headline settings and for each way of decoding its output.

The headline figure is the macro average over the sources that are not face crops (each weighs the
same; `cunet.sources`), with each source's own figures, face crops too, beside it. With a distribution
head, `--decodes regression,annealed:0.38,blend:0.5` scores each decoding (annealed:TEMPERATURE,
blend:SHARE of the annealed mean, each with an optional *GAIN, the chroma gain) on the same photos:
the measured choice that `cunet export --decode ... --temperature ... --blend ... --chroma-gain ...`
stores with the weights.

    python benchmarks/val_quality.py --data ../shared/data/people ../shared/data/people-scenes \
        --out benchmarks/results/val_quality.json
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

SETTINGS = [("gray", 0, "none", "gray"), ("cunet", 0, "none", "automatic"), ("cunet", 0, "gt", "gt histogram"),
            ("cunet", 10, "none", "10 points"), ("cunet", 10, "gt", "10 points + gt histogram")]


def score(colorizer: Colorizer, paths: list[Path], sources: list[str]) -> dict:
    """The report of `cunet.evaluate` for gray and cunet at 0 and 10 points, with and without the oracle histogram."""
    return evaluate(paths, ["gray", "cunet"], [0, 10], ["none", "gt"], colorizer, sources=sources)


def table(report: dict) -> list[str]:
    """Rows: setting, headline PSNR (the macro over the sources that are not face crops), each source's
    PSNR; then colourfulness of the automatic output."""
    sources = list(report["sources"])
    lines = [f"{'setting':<26}{'headline':>9}" + "".join(f"{s[:12]:>14}" for s in sources)]
    results = {(r["method"], r["points"], r["global"]): r for r in report["results"]}
    for method, points, setting, label in SETTINGS:
        result = results[(method, points, setting)]
        lines.append(f"{label:<26}{result['psnr']['mean']:>9.2f}"
                     + "".join(f"{result['by_source'][s]['psnr']['mean']:>14.2f}" for s in sources))
    automatic = results[("cunet", 0, "none")]
    for metric, label in (("colorfulness", "colourfulness automatic"), ("colorfulness_gt", "colourfulness truth")):
        lines.append(f"{label:<26}{automatic[metric]['mean']:>9.1f}"
                     + "".join(f"{automatic['by_source'][s][metric]['mean']:>14.1f}" for s in sources))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["../shared/data/people", "../shared/data/people-scenes"],
                        help="folders or manifest.csv files (their val split)")
    parser.add_argument("--model", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--decodes", default=None,
                        help="comma-separated decodings to compare (regression, annealed:T, blend:SHARE, each with an "
                             "optional *GAIN); default: the model's own")
    parser.add_argument("--limit", type=int, default=None, help="first N photos of each source")
    parser.add_argument("--out", default="benchmarks/results/val_quality.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    paths, sources = evaluation_set(args.data, "val", args.limit)
    decodes = args.decodes.split(",") if args.decodes else [None]
    reports = {}
    for decode in decodes:
        setting, _, gain = (decode or "").partition("*")
        method, _, value = setting.partition(":")
        colorizer = Colorizer.from_pretrained(args.model, decode=method or None,
                                              chroma_gain=float(gain) if gain else None)
        if value:  # replace() re-checks the setting
            colorizer = replace(colorizer, **{"temperature" if method == "annealed" else "blend": float(value)})
        name = {"regression": "regression", "annealed": f"annealed:{colorizer.temperature:g}",
                "blend": f"blend:{colorizer.blend:g}"}[colorizer.decode]
        if colorizer.chroma_gain != 1.0:  # asked for, or stored with the weights
            name += f"*{colorizer.chroma_gain:g}"
        report = score(colorizer, paths, sources)
        report["model"] = args.model or "bundled default"
        reports[name] = report
        print(f"\ndecode: {name} ({report['photos']} photos; headline: {report['average']})")
        print("\n".join(table(report)))
    text = json.dumps({"data": args.data, "decodes": reports}, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
