"""Bounded work per studio request (issue 21): what a refused body costs, and the slowest request the
caps allow, as times and as ratios to a one-point update measured in the same process.

The studio app (bundled model) is driven in-process over ASGI (`TestClient`), as the page drives it:
a 2048 x 2048 gray photo (the astronaut, enlarged) is opened, then
- baseline: one colour point, preview size (the common update);
- refused: a 48 MB body of 1.5 M points (under the 64 MB upload cap, over the hints cap), and a
  document of 2,001 points (under the byte cap, over the count cap);
- allowed worst cases: 2,000 points of 2,000 different colours; strokes of 10,000 vertices in all
  that make just under the working-patch cap; each as a preview and as the full-resolution download.

    python benchmarks/request_bounds.py --out benchmarks/results/request_bounds.json
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data as skdata

from cunet.colorizer import Colorizer
from cunet.hints import MAX_HINT_PATCHES, MAX_POINTS, MAX_STROKE_VERTICES
from cunet.io import write_atomic
from cunet.studio.app import create_app


def timed(client: TestClient, url: str, body: bytes, repeats: int) -> dict:
    """Median and worst seconds of `repeats` POSTs of `body`, and the status they got."""
    times, status = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        answer = client.post(url, content=body, headers={"Content-Type": "application/json"})
        times.append(time.perf_counter() - start)
        status = answer.status_code
    return {"median_s": round(float(np.median(times)), 3), "max_s": round(max(times), 3), "status": status}


def strokes_near_the_cap(rng: np.random.Generator, side: int, working: int) -> list[dict]:
    """Curving strokes of MAX_STROKE_VERTICES vertices in all whose patches at the working size stay
    at the cap MAX_HINT_PATCHES: 0.95 working px between vertices, one patch per segment."""
    strokes, per_stroke = [], 100
    spacing = 0.95 * side / working
    for _ in range(MAX_STROKE_VERTICES // per_stroke):
        turn = np.cumsum(rng.uniform(0, 0.1, per_stroke))
        steps = np.stack([np.cos(turn), np.sin(turn)], 1) * spacing
        path = np.clip(rng.uniform(0.2, 0.8, 2) * side + np.cumsum(steps, 0), 0, side - 1)
        strokes.append({"points": path.round(1).tolist(), "color": "#%06x" % int(rng.integers(0, 2**24)),
                        "width": 3})
    return strokes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/request_bounds.json"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    side = 2048
    photo = Image.fromarray(skdata.astronaut()).convert("L").resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    colorizer = Colorizer.from_pretrained()
    client = TestClient(create_app(colorizer), base_url="http://127.0.0.1", headers={"Origin": "http://127.0.0.1"})
    opened = client.post("/api/photos", files={"file": ("p.png", buffer.getvalue(), "image/png")}).json()
    url = f"/api/photos/{opened['id']}/colorize"

    one_point = json.dumps({"points": [{"x": 900, "y": 700, "color": "#c03020", "size": 5}]}).encode()
    huge = json.dumps({"points": [{"x": 1, "y": 1, "color": "#c03020"}] * 1_500_000}, separators=(",", ":")).encode()
    over_count = json.dumps({"points": [{"x": 1, "y": 1, "a": 10, "b": 10}] * (MAX_POINTS + 1)}).encode()
    many_points = json.dumps({"points": [{"x": float(x), "y": float(y), "color": "#%06x" % c, "size": 9}
                                         for (x, y), c in zip(rng.uniform(0, side - 1, (MAX_POINTS, 2)),
                                                              rng.choice(2**24, MAX_POINTS, replace=False))]}).encode()
    strokes = strokes_near_the_cap(rng, side, colorizer.working_size)
    stroke_body = json.dumps({"strokes": strokes}).encode()

    timed(client, url, one_point, 2)  # warm-up: the first update prepares the photo's caches
    baseline = timed(client, url, one_point, 5)
    rows = {"one point (baseline)": baseline,
            "refused: 1.5 M points, 48 MB": timed(client, url, huge, args.repeats),
            f"refused: {MAX_POINTS + 1:,} points": timed(client, url, over_count, args.repeats),
            f"{MAX_POINTS:,} points of distinct colours": timed(client, url, many_points, args.repeats),
            f"strokes, {MAX_STROKE_VERTICES:,} vertices": timed(client, url, stroke_body, args.repeats),
            "one point, full resolution": timed(client, url + "?full=1", one_point, args.repeats),
            f"{MAX_POINTS:,} points, full resolution": timed(client, url + "?full=1", many_points, args.repeats)}
    for row in rows.values():
        row["vs_baseline"] = round(row["median_s"] / baseline["median_s"], 2)
    report = {"command": "python benchmarks/request_bounds.py", "threads": torch.get_num_threads(),
              "photo": f"{side}x{side} PNG", "working_size": colorizer.working_size,
              "bodies_bytes": {"1.5 M points": len(huge), "2,000 points": len(many_points), "strokes": len(stroke_body)},
              "caps": {"points": MAX_POINTS, "stroke_vertices": MAX_STROKE_VERTICES, "hint_patches": MAX_HINT_PATCHES},
              "requests": rows}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
