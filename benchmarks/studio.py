"""Round trip of a hint change in cunet studio (issue 12): request -> PNG bytes on a live server.

A `cunet studio` server (bundled model, default backend) is started as a user starts it, as its
own process on a free loopback port; one client opens a 1024-px photo and moves a colour point N
times, each move a new POST /api/photos/{id}/colorize whose preview PNG is read to the end.
Reported: p50/p95 of the round trip, and the same for a saturation change (the cached encoding is
reused), for the full-resolution download, and for a stroke beside the same number of points. The
whole run is made twice, against a server with bilinear and one with guided up-sampling (the
default), and the ratios of the two are reported (measured in one run, on the same machine state).
`--baseline-model M` adds a guided server with the weights M (an earlier default, say) and the
bundled model's ratios to it, so that a new default's cost is a same-run ratio too.

    python benchmarks/studio.py --out benchmarks/results/studio.json
    python benchmarks/studio.py --baseline-model models/v2-stage4.safetensors
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from cunet.io import write_atomic


def percentiles(seconds: list[float]) -> dict:
    values = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 1), "p95_ms": round(float(np.percentile(values, 95)), 1),
            "runs": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/studio.json"))
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--baseline-model", type=Path, default=None,
                        help="also measure a guided server with these weights, and the bundled model's ratios to it")
    args = parser.parse_args()
    if args.baseline_model is not None and not args.baseline_model.is_file():
        raise SystemExit(f"error: --baseline-model {args.baseline_model}: no such file")
    servers = {"bilinear": ["--upsample", "bilinear"], "guided": ["--upsample", "guided"]}
    if args.baseline_model is not None:
        servers["baseline_model"] = ["--upsample", "guided", "--model", str(args.baseline_model)]
    report = {}
    for name, options in servers.items():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-c", "from cunet.cli import main; main()", "studio", "--port",
                                   str(port), *options], stdout=subprocess.DEVNULL)
        try:
            report[name] = measure(port, args.updates)
        finally:
            server.terminate()
            server.wait(timeout=30)
    keys = ("point_move", "saturation_change", "full_resolution_download", "stroke_move")
    report["guided_over_bilinear"] = {
        key: round(report["guided"][key]["p50_ms"] / report["bilinear"][key]["p50_ms"], 2) for key in keys}
    if args.baseline_model is not None:
        report["baseline_model"]["model"] = str(args.baseline_model)
        report["bundled_over_baseline_model"] = {
            key: round(report["guided"][key]["p50_ms"] / report["baseline_model"][key]["p50_ms"], 2) for key in keys}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


def measure(port: int, updates: int) -> dict:
    """Time the round trips against the server on `port`, once it answers."""
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            info = httpx.get(base_url + "/api/info").json()
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit("the studio server did not start within 60 s") from None
            time.sleep(0.1)
    photo = Image.fromarray(skdata.astronaut()).convert("L").resize((1024, 1024), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    report = {"command": "python benchmarks/studio.py", "threads": torch.get_num_threads(), "photo": "1024x1024 JPEG",
              "working_size": info["working_size"], "server": "cunet studio --port PORT (its own process)"}
    with httpx.Client(base_url=base_url, timeout=60, headers={"Origin": base_url}) as client:
        opened = client.post("/api/photos", files={"file": ("p.jpg", buffer.getvalue(), "image/jpeg")}).json()
        report["preview"] = f"{opened['preview_width']}x{opened['preview_height']}"
        url = f"/api/photos/{opened['id']}/colorize"

        def timed(bodies, full=False) -> list[float]:
            times = []
            for body in bodies:
                start = time.perf_counter()
                answer = client.post(url + ("?full=1" if full else ""), json=body)
                answer.read()
                times.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text
            return times

        moves = [{"points": [{"x": 200 + (i * 13) % 600, "y": 400, "color": "#c03020", "size": 5}]}
                 for i in range(updates + 5)]
        report["point_move"] = percentiles(timed(moves)[5:])
        saturations = [{"points": moves[0]["points"], "saturation": (i % 10) / 10} for i in range(updates + 5)]
        report["saturation_change"] = percentiles(timed(saturations)[5:])
        report["full_resolution_download"] = percentiles(timed(moves[:12], full=True)[2:])
        # A stroke across the photo and points at its samples' spacing (8 px: one working pixel apart).
        strokes = [{"strokes": [{"points": [[200, 400 + i % 7], [800, 400 + i % 7]], "color": "#2050c0", "width": 5}]}
                   for i in range(updates // 2 + 5)]
        rows = [{"points": [{"x": x, "y": 400 + i % 7, "color": "#2050c0", "size": 5} for x in range(200, 801, 8)]}
                for i in range(updates // 2 + 5)]
        report["stroke_move"] = percentiles(timed(strokes)[5:])
        report["same_number_of_points_move"] = percentiles(timed(rows)[5:])
        report["points_in_the_stroke_row"] = len(rows[0]["points"])
    return report


if __name__ == "__main__":
    main()
