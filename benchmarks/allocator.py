"""Page faults and update latency with and without `cunet.allocator.keep_freed_memory` (issue 11)

glibc's default thresholds make each process a lottery: some keep freed tensors in the heap, most
return them to the system and fault them in again every update. So the comparison is between
processes: `--processes` fresh Python processes each way, alternating, each timing a colour point
moving on the same prepared 1024-px photo (as `benchmarks/speed.py`) at working sizes 128 and 256,
and counting the minor page faults per update (getrusage).

    python benchmarks/allocator.py --out benchmarks/results/allocator.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

MODES = ("glibc-default", "keep-freed-memory")


def child(mode: str, repeats: int) -> dict:
    """One process: p50 of a point move and page faults per update at each working size."""
    if mode == "keep-freed-memory":
        from cunet.allocator import keep_freed_memory

        assert keep_freed_memory()
    import torch

    from cunet.colorizer import Colorizer
    from cunet.hints import Hints, PointHint
    from speed import source_photos, timed  # beside this file

    torch.set_num_threads(2)
    colorizer = Colorizer.from_pretrained()
    prepared = colorizer.prepare(source_photos(1)[0])
    width, height = prepared.size
    result = {}
    for size in (128, 256):
        state = {"i": 0}

        def move_point() -> None:
            state["i"] += 1
            x = (0.2 + 0.6 * (state["i"] % 50) / 50) * width
            colorizer.predict_ab(prepared, Hints((PointHint(x, height / 2, 40, 30, 3),)), size=size)

        for _ in range(5):  # first use of a size: its L*, spread transform and buffers
            move_point()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        seconds = timed(move_point, repeats, warmup=0)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        result[str(size)] = {"p50_ms": round(statistics.median(seconds) * 1000, 2),
                             "faults_per_update": round(faults / repeats)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5, help="Fresh processes each way.")
    parser.add_argument("--repeats", type=int, default=40, help="Timed updates per size and process.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/allocator.json"))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return
    runs = {mode: [] for mode in MODES}
    for _ in tqdm(range(args.processes), desc="process pairs"):
        for mode in MODES:
            output = subprocess.run([sys.executable, __file__, "--child", mode, "--repeats", str(args.repeats)],
                                    check=True, capture_output=True, text=True).stdout
            runs[mode].append(json.loads(output.splitlines()[-1]))
    summary = {mode: {size: {"p50_ms_median_over_processes": statistics.median(r[size]["p50_ms"] for r in results),
                             "faults_per_update_median_over_processes":
                                 statistics.median(r[size]["faults_per_update"] for r in results)}
                      for size in ("128", "256")} for mode, results in runs.items()}
    ratio = {size: round(summary["keep-freed-memory"][size]["p50_ms_median_over_processes"]
                         / summary["glibc-default"][size]["p50_ms_median_over_processes"], 3) for size in ("128", "256")}
    from cunet.io import write_atomic

    report = {"command": "python benchmarks/allocator.py", "processes_each": args.processes,
              "repeats": args.repeats, "summary": summary,
              "p50_ratio_keep_over_default": ratio, "processes": runs}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps({"summary": summary, "p50_ratio_keep_over_default": ratio}, indent=2))


if __name__ == "__main__":
    main()
