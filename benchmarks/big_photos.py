"""Peak memory and wall time of `cunet colorize` on very large and very thin photos (issue 9).

Each photo is written to a temporary folder, then coloured by a fresh `cunet colorize` process run
under GNU time (`/usr/bin/time -v`), whose "Maximum resident set size" is the figure reported:
the whole process (Python, torch, the model, the decoded photo and the join), not just our arrays.

    python benchmarks/big_photos.py --out benchmarks/results/big_photos.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data as skdata
from tqdm import tqdm

from cunet.io import write_atomic

CASES = {  # name: (width, height, format)
    "3x20000 strip (PNG)": (20000, 3, "png"),
    "6000x4000 (JPEG)": (6000, 4000, "jpg"),
    "12000x8000, 96 MP (JPEG)": (12000, 8000, "jpg"),
    "12000x12000, 144 MP (JPEG)": (12000, 12000, "jpg"),
}


def make_photo(width: int, height: int, path: Path) -> None:
    """A gray photo with real content (the astronaut, tiled and scaled), saved as a B/W scan would be."""
    tile = Image.fromarray(skdata.astronaut()).convert("L")
    scale = max(1, min(width, height) // 512)
    tile = tile.resize((512 * scale, 512 * scale), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (width, height))
    for top in range(0, height, tile.height):
        for left in range(0, width, tile.width):
            canvas.paste(tile, (left, top))
    canvas.save(path, quality=90) if path.suffix == ".jpg" else canvas.save(path)


def measure(path: Path, out: Path, threads: int) -> dict:
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "cunet.cli", "colorize", str(path), "-o", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.group(1).split(":")))) if wall else None
    return {"exit_code": result.returncode, "peak_rss_gb": int(peak.group(1)) / 2**20 if peak else None,
            "wall_s": seconds, "output_size": list(Image.open(out).size) if result.returncode == 0 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/big_photos.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("error: this benchmark needs GNU time (/usr/bin/time; Debian package 'time')")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (width, height, suffix) in tqdm(CASES.items(), desc="photos", unit="photo"):
            if args.only and name not in args.only:
                continue
            photo = Path(folder) / f"in.{suffix}"
            make_photo(width, height, photo)
            results[name] = {"width": width, "height": height, **measure(photo, Path(folder) / "out.png", args.threads)}
            tqdm.write(f"{name}: {results[name]}")
            photo.unlink()
    report = {"command": "cunet colorize PHOTO -o out.png (bundled model) under /usr/bin/time -v",
              "threads": args.threads, "cases": results}
    write_atomic(args.out, lambda handle: handle.write((json.dumps(report, indent=2) + "\n").encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
