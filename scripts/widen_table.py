"""The width arms' table (docs/v3.md, section 11) from their training logs.

Every arm starts from one colouring (stage 8, widened by `cunet widen` or not) at the same step, and
step k's batch, crops and hints come from a generator seeded by (seed, k), so at equal steps the arms
have seen the very same photos: their training losses at equal steps are a paired comparison of
what each width fits. Printed per arm: steps and images/s in its training minutes; the training loss
(the logged running mean) averaged over the steps every arm reached (and by 100-step windows, from the
first logged step), and over each arm's own last 250 steps (equal minutes; not paired); and each
validation (128², headline over the non-face sources) as gains over gray.

    python scripts/widen_table.py docs/training/v3widen/w16.log.jsonl docs/training/v3widen/w24.log.jsonl \
        docs/training/v3widen/w32.log.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cunet.train import read_log


def arm(path: Path) -> dict:
    records = read_log(path)
    start = next(r for r in records if r["event"] == "start")
    trains = [r for r in records if r["event"] == "train"]
    ended = max(r["train_seconds"] for r in records if "train_seconds" in r)
    # the log starts at the first logged step: its first steps' seconds at the rate of the rest
    per_step = (ended - trains[0]["train_seconds"]) / (trains[-1]["step"] - trains[0]["step"])
    return {"name": f"w{start['config']['width']}", "start": start["step"], "trains": {r["step"]: r for r in trains},
            "vals": [r for r in records if r["event"] == "val"],
            "minutes": per_step * (trains[-1]["step"] - start["step"]) / 60}


def mean_loss(run: dict, steps) -> float:
    return float(np.mean([run["trains"][s]["loss"] for s in steps]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="each arm's log.jsonl, the baseline first")
    args = parser.parse_args()
    runs = [arm(path) for path in args.logs]
    shared = sorted(set.intersection(*(set(run["trains"]) for run in runs)))  # steps every arm logged
    first = max(run["start"] for run in runs) + 100  # past the running mean's first steps
    common = [s for s in shared if s >= first]
    base = mean_loss(runs[0], common)
    print(f"paired steps {common[0]}-{common[-1]} ({len(common)} logged)\n")
    print("| arm | steps | training minutes | img/s | loss, common steps (− first arm) | loss, own last 250 steps |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        steps = sorted(run["trains"])
        last = [s for s in steps if s > steps[-1] - 250]
        rate = np.mean([run["trains"][s]["images_per_s"] for s in steps[1:]])
        loss = mean_loss(run, common)
        print(f"| {run['name']} | {steps[-1] - run['start']:,} | {run['minutes']:.1f} | {rate:.1f} | "
              f"{loss:.3f} ({loss - base:+.3f}) | {mean_loss(run, last):.3f} |")
    print("\n| 100-step window from | " + " | ".join(f"{run['name']} − {runs[0]['name']}" for run in runs[1:]) + " |")
    print("|---|" + "---|" * (len(runs) - 1))
    for low in range(shared[0], shared[-1] + 1, 100):
        window = [s for s in shared if low <= s < low + 100]
        if window:
            base = mean_loss(runs[0], window)
            print(f"| {low:,} | " + " | ".join(f"{mean_loss(run, window) - base:+.3f}" for run in runs[1:]) + " |")
    print("\n| arm | step | automatic − gray | 10 points − gray | colourfulness (truth) |")
    print("|---|---|---|---|---|")
    for run in runs:
        for val in run["vals"]:
            print(f"| {run['name']} | {val['step']:,} | {val['auto'] - val['gray']:+.2f} | "
                  f"{val['points10'] - val['gray']:+.2f} | {val['colorfulness_auto']:.1f} ({val['colorfulness_gt']:.1f}) |")


if __name__ == "__main__":
    main()
