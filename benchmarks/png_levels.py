"""Which zlib level for PNG outputs? (issue 11: `io.PNG_COMPRESS_LEVEL`)

Colours the benchmark photos (long side 1024, as in benchmarks/speed.py) with the bundled model and
encodes each result at every level asked for, in this process: the median encode time and the total
size per level, and both as ratios to PIL's default level 6.

    python benchmarks/png_levels.py --out benchmarks/results/png_levels.json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

from speed import source_photos  # beside this file

from cunet.colorizer import Colorizer
from cunet.io import write_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--levels", default="0,1,3,6,9")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/png_levels.json"))
    args = parser.parse_args()
    colorizer = Colorizer.from_pretrained()
    outputs = [colorizer.colorize(photo) for photo in source_photos(args.photos)]
    levels = {}
    for level in map(int, args.levels.split(",")):
        seconds, size = [], 0
        for image in outputs:
            buffer = io.BytesIO()
            start = time.perf_counter()
            image.save(buffer, format="PNG", compress_level=level)
            seconds.append(time.perf_counter() - start)
            size += buffer.tell()
        levels[str(level)] = {"median_ms": round(statistics.median(seconds) * 1000, 1), "total_kb": size // 1000}
    default = levels.get("6")
    if default:
        for entry in levels.values():
            entry["time_vs_level_6"] = round(entry["median_ms"] / default["median_ms"], 2)
            entry["size_vs_level_6"] = round(entry["total_kb"] / default["total_kb"], 3)
    report = {"command": "python benchmarks/png_levels.py", "photos": len(outputs),
              "sizes": sorted({f"{image.width}x{image.height}" for image in outputs}), "levels": levels}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
