"""Round trip of a hint change in cunet studio (issue 12): request -> PNG bytes on a live server.

A `cunet studio` server (uvicorn, bundled model, default backend) runs on a free loopback
port in this process; one client opens a 1024-px photo and moves a colour point N times, each move
a new POST /api/photos/{id}/colorize whose preview PNG is read to the end. Reported: p50/p95 of
the round trip, and the same for a saturation change (the cached encoding is reused) and for the
full-resolution download.

    python benchmarks/studio.py --out benchmarks/results/studio.json
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn
from PIL import Image
from skimage import data as skdata

from cunet.colorizer import Colorizer
from cunet.io import write_atomic
from cunet.studio.app import create_app


def percentiles(seconds: list[float]) -> dict:
    values = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 1), "p95_ms": round(float(np.percentile(values, 95)), 1),
            "runs": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/studio.json"))
    parser.add_argument("--updates", type=int, default=100)
    args = parser.parse_args()
    colorizer = Colorizer.from_pretrained()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(colorizer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    photo = Image.fromarray(skdata.astronaut()).convert("L").resize((1024, 1024), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    report = {"command": "python benchmarks/studio.py", "threads": torch.get_num_threads(), "photo": "1024x1024 JPEG",
              "working_size": colorizer.working_size}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
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
                 for i in range(args.updates + 5)]
        report["point_move"] = percentiles(timed(moves)[5:])
        saturations = [{"points": moves[0]["points"], "saturation": (i % 10) / 10} for i in range(args.updates + 5)]
        report["saturation_change"] = percentiles(timed(saturations)[5:])
        report["full_resolution_download"] = percentiles(timed(moves[:12], full=True)[2:])
    server.should_exit = True
    thread.join(timeout=10)
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
