"""Print a stored `cunet evaluate` report's main settings as the headline (the macro over the sources
that are not face crops) beside its macro over every source, from the report's per-source means.

For reports written before the headline left face crops out (their `psnr` averaged every source):

    python scripts/restate_headline.py docs/results/val/report.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cunet.evaluate import restate_headline
from cunet.sources import FACE_CROP_SOURCES

SETTINGS = [("predicted gray", "gray", 0, "none"), ("automatic", "cunet", 0, "none"),
            ("+ ground-truth histogram", "cunet", 0, "gt"), ("+ retrieved histogram", "cunet", 0, "retrieved"),
            ("+ predicted histogram", "cunet", 0, "predicted"), ("10 points", "cunet", 10, "none"),
            ("Levin et al., 10 points", "levin", 10, "none"), ("50 points", "cunet", 50, "none"),
            ("Levin et al., 50 points", "levin", 50, "none")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path, help="report.json of cunet evaluate")
    parser.add_argument("--exclude-from-headline", default=",".join(FACE_CROP_SOURCES))
    args = parser.parse_args()
    report = restate_headline(json.loads(args.report.read_text()),
                              [name for name in args.exclude_from_headline.split(",") if name])
    results = {(r["method"], r["points"], r["global"]): r for r in report["results"]}
    gray = results.get(("gray", 0, "none"))
    print(f"headline: macro over {', '.join(report['headline_sources'])}; "
          f"left out: {', '.join(report['excluded_from_headline']) or 'none'}")
    print("| setting | headline PSNR (dB) | vs gray | macro, all sources | colourfulness (truth) |")
    print("|---|---|---|---|---|")
    for label, *key in SETTINGS:
        result = results.get(tuple(key))
        if result is None:
            continue
        versus = f"{result['psnr']['mean'] - gray['psnr']['mean']:+.2f}" if gray and key[0] != "gray" else "—"
        print(f"| {label} | {result['psnr']['mean']:.2f} ± {result['psnr']['sem']:.2f} | {versus} | "
              f"{result['macro_all']['psnr']['mean']:.2f} | {result['colorfulness']['mean']:.1f} "
              f"({result['colorfulness_gt']['mean']:.1f}) |")


if __name__ == "__main__":
    main()
