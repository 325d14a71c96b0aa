"""The loss-lever arms' table (docs/v3.md, section 9) from their results in docs/results/v3_arms/.

Each arm snapshot NAME has `decoding_NAME.json` (`benchmarks/decoding_choice.py`, automatic colouring
by decoding) and `points_NAME/report.json` (`cunet evaluate --points 10,50`). Printed per snapshot:
the plain regression decoding, the colour rule's pick (the highest automatic PSNR among decodings at
>= 0.8 x the truth's colourfulness), the regression decoding's PSNR where its gain would reach exactly
0.8 x (linear between the two measured gains around it: the rule without the coarseness of the gain
grid), and 10 and 50 points.

    python scripts/arms_table.py stage6 control-s1200 rebalance025-s1200 chroma05-s1200
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path("docs/results/v3_arms")


def regression_at(decodings: dict, truth: float, share: float) -> float | None:
    """Headline PSNR of regression x gain where its colourfulness is `share` x the truth's, by linear
    interpolation between the measured gains around it (None if no two measured gains bracket it)."""
    measured = []
    for name, row in decodings.items():
        match = re.fullmatch(r"regression(?:\*[0-9.]+)?", name)
        if match:
            measured.append((row["colorfulness"]["mean"] / truth, row["psnr"]["mean"]))
    measured.sort()
    for (low_share, low_psnr), (high_share, high_psnr) in zip(measured, measured[1:]):
        if low_share <= share <= high_share:
            return low_psnr + (share - low_share) / (high_share - low_share) * (high_psnr - low_psnr)
    return None


def row(name: str) -> str:
    choice = json.loads((ROOT / f"decoding_{name}.json").read_text())
    decodings = choice["decodings"]
    truth = decodings["gray"]["colorfulness_gt"]["mean"]
    gray = decodings["gray"]["psnr"]["mean"]
    points = json.loads((ROOT / f"points_{name}" / "report.json").read_text())
    by_count = {r["points"]: r["psnr"]["mean"] for r in points["results"] if r["global"] == "none"}
    plain = decodings["regression"]
    pick = decodings[choice["chosen"]]
    at_bar = regression_at(decodings, truth, choice["vivid"])
    return (f"| {name} | {plain['psnr']['mean']:.2f} ({plain['psnr']['mean'] - gray:+.2f}) / "
            f"{plain['colorfulness']['mean'] / truth:.2f} × | {choice['chosen']}: {pick['psnr']['mean']:.2f} / "
            f"{pick['colorfulness']['mean'] / truth:.2f} × | "
            + (f"{at_bar:.2f}" if at_bar is not None else "–")
            + f" | {by_count.get(10, float('nan')):.2f} | {by_count.get(50, float('nan')):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", help="arm snapshots, as named in docs/results/v3_arms/")
    args = parser.parse_args()
    print("| snapshot | regression: PSNR (− gray) / colourfulness | the rule's pick | regression × gain at 0.8 × "
          "| 10 points | 50 points |")
    print("|---|---|---|---|---|---|")
    for name in args.names:
        print(row(name))


if __name__ == "__main__":
    main()
