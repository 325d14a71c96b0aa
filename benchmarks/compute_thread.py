"""Why cunet studio runs all tensor work on one thread (`cunet.studio.compute`)

The same colour-point update (`Colorizer.predict_ab` on a prepared 1024-px photo, the point moving)
is timed on the thread that loaded the model, then on a second thread, in one process: what a web
server's worker threads did before the studio had its compute thread. p50 of each, and the ratio.

    python benchmarks/compute_thread.py --out benchmarks/results/compute_thread.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from speed import timed  # beside this file

from cunet.colorizer import Colorizer
from cunet.hints import Hints, PointHint
from cunet.io import write_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compute_thread.json"))
    args = parser.parse_args()
    colorizer = Colorizer.from_pretrained()
    prepared = colorizer.prepare(Image.fromarray(skdata.astronaut()).convert("L").resize((1024, 1024)))
    state = {"i": 0}

    def move_point() -> None:
        state["i"] += 1
        colorizer.predict_ab(prepared, Hints((PointHint(200 + (state["i"] * 13) % 600, 400, 40, 30, 3),)))

    def p50_ms() -> float:
        return round(statistics.median(timed(move_point, args.repeats)) * 1000, 2)

    report = {"command": "python benchmarks/compute_thread.py", "threads": torch.get_num_threads(),
              "loading_thread_p50_ms": p50_ms()}
    other: dict = {}
    worker = threading.Thread(target=lambda: other.update(p50=p50_ms()))
    worker.start()
    worker.join()
    report["second_thread_p50_ms"] = other["p50"]
    report["second_over_loading"] = round(other["p50"] / report["loading_thread_p50_ms"], 2)
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
