"""Speed of cunet on this CPU (issue 11): start-up, hint-update latency against the FLOP bound,
the full-resolution join, and folder batches against a naive loop, each baseline run in the same
process so that the ratios hold on any machine.

    python benchmarks/speed.py --out benchmarks/results/speed.json

- start-up: a fresh `cunet colorize small.png -o out.png` process, wall time (median of 5).
- FLOP bound: the network's FLOPs at the working shape (PyTorch's FlopCounterMode: convolutions and
  matrix products) divided by the GFLOP/s of a bf16 2048 x 2048 matmul measured here (issue 11's
  bound). The fp32 bound, for the paths whose outputs match fp32, divides by the faster of an fp32
  2048 x 2048 matmul (MKL) and an fp32 3x3 convolution, 256 -> 256 channels on 64 x 64 (oneDNN):
  on some CPUs MKL's matmul runs at half the convolution's rate.
- update: `Colorizer.predict_ab` on a prepared 1024-px photo after a colour point moves (the whole
  network re-runs) and after only the global hint changes (the cached encoding is reused), p50/p95
  per backend, with the max |delta a*b*| against fp32 eager PyTorch on the same photos.
- join: the fused tiled join against separate full-image sRGB -> Lab -> sRGB passes (kornia).
- batch: a folder of 1024-px photos through `cunet.batch.colorize_files` against a naive loop
  (decode, colorize, save PNG at PIL's default level, one photo after another), and the CLI on the
  same folder end to end (process start included), with its peak memory.
The process keeps freed memory for reuse (`cunet.allocator.keep_freed_memory`), as `cunet studio`
does, so the update latencies are the studio's; the in-process batch and its naive loop share that
setting, and the CLI batch runs `cunet colorize` as users do (without it). `benchmarks/allocator.py`
measures what the setting changes.
Photos: ../shared/data/bw-photos when CUNET_DATA is set (real scans, mixed shapes), else
scikit-image's sample photos.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from cunet.allocator import keep_freed_memory
from cunet.batch import colorize_files
from cunet.color import join_lab, rgb_to_lab
from cunet.colorizer import Colorizer, PreparedPhoto, working_shape
from cunet.hints import Hints, PointHint
from cunet.io import Photo, load_photo, write_atomic
from cunet.join import join_full_resolution
from cunet.runtime import BACKENDS, DEFAULT_BACKEND, onnx_available
from cunet.upsample import guide_shape, guided_coefficients


def percentiles(seconds: list[float]) -> dict:
    values = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2)}


def timed(function, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def source_photos(count: int) -> list[Image.Image]:
    """Gray photos with a long side of 1024 px."""
    data = os.environ.get("CUNET_DATA")
    folder = Path(data) / "bw-photos" / "deoldify" if data else None
    if folder is not None and folder.is_dir():
        scans = [Image.open(path).convert("L") for path in sorted(folder.glob("*.jpg"))]
        # more photos than scans: the scans again, mirrored (same shapes, other pixels)
        images = [scans[i % len(scans)].transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i >= len(scans)
                  else scans[i] for i in range(count)]
    else:
        samples = [skdata.astronaut(), skdata.camera(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
        images = [Image.fromarray(samples[i % len(samples)]).convert("L") for i in range(count)]
    scaled = []
    for image in images:
        scale = 1024 / max(image.size)
        scaled.append(image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS))
    return scaled


def matmul_gflops(dtype: torch.dtype) -> float:
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    seconds = statistics.median(timed(lambda: a @ b, 10))
    return 2 * 2048**3 / seconds / 1e9


def conv_gflops(dtype: torch.dtype) -> float:
    """GFLOP/s of a large 3x3 convolution (oneDNN, channels-last): the rate this CPU's convolutions reach."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(dtype=dtype, memory_format=torch.channels_last).eval()
    inputs = torch.randn(1, 256, 64, 64, dtype=dtype).to(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = statistics.median(timed(lambda: conv(inputs), 10))
    return 2 * 64 * 64 * 256 * 256 * 9 / seconds / 1e9


def network_flops(colorizer: Colorizer, shape: tuple[int, int]) -> float:
    model = colorizer.model
    inputs = torch.zeros(1, model.config.input_channels, *shape)
    hint = torch.zeros(1, model.global_hint_size) if model.global_hint_size else None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(inputs, hint)
    return counter.get_total_flops()


def start_up(folder: Path, repeats: int = 5) -> dict:
    small = folder / "small.png"
    Image.fromarray(skdata.astronaut()).convert("L").resize((256, 256)).save(small)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cunet.cli", "colorize", str(small), "-o", str(folder / f"s{i}.png")],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times]}


def update_latency(photos: list[Image.Image], sizes: list[int], backends: list[str], repeats: int) -> dict:
    results = {}
    eager = Colorizer.from_pretrained(backend="eager")
    for backend in tqdm(backends, desc="backends"):
        colorizer = Colorizer.from_pretrained(backend=backend)
        for size in sizes:
            prepared = colorizer.prepare(photos[0])
            width, height = prepared.size
            state = {"i": 0}

            def move_point() -> None:
                state["i"] += 1
                x = (0.2 + 0.6 * (state["i"] % 50) / 50) * width
                colorizer.predict_ab(prepared, Hints((PointHint(x, height / 2, 40, 30, 3),)), size=size)

            def change_global() -> None:
                state["i"] += 1
                colorizer.predict_ab(prepared, Hints((PointHint(width / 2, height / 2, 40, 30, 3),),
                                                     saturation=(state["i"] % 10) / 10), size=size)

            difference = 0.0
            for photo in photos[:4]:
                hints = Hints((PointHint(photo.width * 0.4, photo.height * 0.5, 50, 20, 3),))
                difference = max(difference, float((colorizer.predict_ab(photo, hints, size=size)
                                                    - eager.predict_ab(photo, hints, size=size)).abs().max()))
            results[f"{backend}@{size}"] = {
                "backend": backend, "working_size": size,
                "working_shape": list(working_shape(height, width, size)),
                "point_change": percentiles(timed(move_point, repeats)),
                "global_hint_change": percentiles(timed(change_global, repeats)),
                "max_abs_delta_ab_vs_fp32_eager": round(difference, 4),
            }
    return results


def join_speed(sizes: list[int], repeats: int) -> dict:
    results = {}
    rng = np.random.default_rng(0)
    base = np.asarray(Image.fromarray(skdata.astronaut()), dtype=np.float32) / 255
    for side in sizes:
        rgb = np.ascontiguousarray(np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((side, side)),
                                              dtype=np.float32) / 255)
        ab = torch.from_numpy(rng.normal(0, 25, (1, 2, 128, 128)).astype(np.float32))

        def separate() -> np.ndarray:
            whole = torch.from_numpy(rgb).permute(2, 0, 1)[None]
            up = F.interpolate(ab, size=(side, side), mode="bilinear", align_corners=False)
            colour = join_lab(rgb_to_lab(whole)[:, :1], up)[0]
            return colour.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

        def guided_field() -> torch.Tensor:  # what a one-shot colouring computes besides the join
            prepared = PreparedPhoto(Photo(rgb, None))
            return guided_coefficients(ab, prepared.lightness_at((128, 128)),
                                       prepared.lightness_at(guide_shape((128, 128), (side, side))))

        coefficients = guided_field()
        fused = statistics.median(timed(lambda: join_full_resolution(rgb, ab), repeats, 1))
        guided = statistics.median(timed(lambda: join_full_resolution(rgb, coefficients), repeats, 1))
        field = statistics.median(timed(guided_field, repeats, 1))
        baseline = statistics.median(timed(separate, max(1, repeats // 2), 1))
        results[f"{side}x{side}"] = {"fused_ms": round(fused * 1000, 1), "separate_passes_ms": round(baseline * 1000, 1),
                                     "speedup": round(baseline / fused, 2),
                                     "guided_join_ms": round(guided * 1000, 1),
                                     "guided_coefficients_ms": round(field * 1000, 1),
                                     "guided_total_over_bilinear": round((guided + field) / fused, 2)}
    return results


def batch_speed(photos: list[Image.Image], folder: Path) -> dict:
    inputs = folder / "in"
    inputs.mkdir()
    paths = []
    for i, photo in enumerate(photos):
        paths.append(inputs / f"{i:03d}.jpg")
        photo.save(paths[-1], quality=92)
    colorizer = Colorizer.from_pretrained()
    colorizer.colorize(paths[0])

    naive_out = folder / "naive"
    naive_out.mkdir()
    start = time.perf_counter()
    for path in paths:
        colorizer.colorize(load_photo(path)).save(naive_out / f"{path.stem}.png")
    naive = time.perf_counter() - start

    batch_out = folder / "batch"
    batch_out.mkdir()
    start = time.perf_counter()
    outcomes = list(colorize_files(colorizer, [(path, batch_out / f"{path.stem}.png") for path in paths]))
    batched = time.perf_counter() - start
    assert all(outcome.error is None for outcome in outcomes)

    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "cunet.cli", "colorize", *map(str, paths),
                             "--out-dir", str(folder / "cli")], check=True, capture_output=True, text=True)
    cli = time.perf_counter() - start
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return {
        "photos": len(paths), "shapes": sorted({f"{p.width}x{p.height}" for p in photos}),
        "naive_loop_photos_per_s": round(len(paths) / naive, 2),
        "batch_photos_per_s": round(len(paths) / batched, 2),
        "speedup": round(naive / batched, 2),
        "cli_end_to_end_photos_per_s": round(len(paths) / cli, 2),
        "cli_wall_s": round(cli, 2),
        "cli_peak_rss_mb": round(peak / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    parser.add_argument("--repeats", type=int, default=50, help="Timed runs per update measurement.")
    parser.add_argument("--photos", type=int, default=40, help="Photos in the batch measurement.")
    parser.add_argument("--backends", default=",".join(b for b in BACKENDS if b != "auto"))
    parser.add_argument("--only", choices=("all", "join"), default="all",
                        help="join: only the join (bilinear, guided and the separate passes)")
    args = parser.parse_args()
    if args.only == "join":
        report = {"command": "python benchmarks/speed.py --only join", "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                  "join": join_speed([1024, 2048, 4096], 5)}
        write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
        print(json.dumps(report, indent=2))
        return
    kept = keep_freed_memory()
    backends = [b for b in args.backends.split(",") if b != "onnx" or onnx_available()]
    photos = source_photos(args.photos)
    colorizer = Colorizer.from_pretrained()
    report = {"command": "python benchmarks/speed.py", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "default_backend": DEFAULT_BACKEND, "keep_freed_memory": kept}
    with tempfile.TemporaryDirectory() as temp:
        report["start_up"] = start_up(Path(temp))
    gflops, fp32_matmul = matmul_gflops(torch.bfloat16), matmul_gflops(torch.float32)
    fp32_conv, bf16_conv = conv_gflops(torch.float32), conv_gflops(torch.bfloat16)
    fp32_gflops = max(fp32_matmul, fp32_conv)
    report["bf16_matmul_gflops"] = round(gflops, 1)
    report["fp32_matmul_gflops"] = round(fp32_matmul, 1)
    report["fp32_conv_gflops"] = round(fp32_conv, 1)
    report["bf16_conv_gflops"] = round(bf16_conv, 1)
    width, height = photos[0].size
    report["network"] = {}
    for size in (colorizer.working_size, 256):
        shape = working_shape(height, width, size)
        flops = network_flops(colorizer, shape)
        report["network"][str(size)] = {"working_shape": list(shape), "gflop": round(flops / 1e9, 3),
                                        "flop_bound_ms": round(flops / gflops / 1e6, 2),
                                        "fp32_flop_bound_ms": round(flops / fp32_gflops / 1e6, 2)}
    report["update"] = update_latency(photos, [colorizer.working_size, 256], backends, args.repeats)
    for entry in report["update"].values():
        network = report["network"][str(entry["working_size"])]
        entry["point_change_p50_over_bound"] = round(entry["point_change"]["p50_ms"] / network["flop_bound_ms"], 2)
        entry["point_change_p50_over_fp32_bound"] = round(
            entry["point_change"]["p50_ms"] / network["fp32_flop_bound_ms"], 2)
    report["join"] = join_speed([1024, 2048, 4096], 5)
    with tempfile.TemporaryDirectory() as temp:
        report["batch"] = batch_speed(photos, Path(temp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
