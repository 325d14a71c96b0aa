"""cunet video, measured: quality and flicker of each steadiness option, the cut threshold, speed,
memory, and a contact sheet of the B/W clips.

On the colour clips of ../shared/data/video made gray (their L* kept, a* = b* = 0), coloured by
`cunet.video.FilmColorizer` with each option: PSNR per frame against the colour original (RGB, mean
over frames and clips), warping error (with Farneback's flow and with the fine DIS flow, each
computed once per clip) and CDC (`cunet.flicker`); the same for per-frame colouring (every part
off). Cut threshold: the L* histogram change frame to frame inside every clip against the change
between the last frame of one clip and the first of another. Speed: end to end with decoding and
encoding (an MP4 with an AAC track made from a clip, at 240 and 480 lines), frames/s.
Memory: peak RSS of `cunet video` in a fresh process on a short and a 8x longer synthetic clip.

    python benchmarks/video.py --data ../shared/data --out benchmarks/results/video.json \
        [--parts quality,floors,cuts,speed,memory,sheet] [--sheet docs/video/contact_sheet.jpg]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from itertools import permutations
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from cunet.color import srgb_with_ab_uint8
from cunet.colorizer import Colorizer
from cunet.flicker import METRIC_FLOWS, colour_distribution_consistency, colour_warping_error, input_motion, warping_error
from cunet.io import write_atomic
from cunet.metrics import colorfulness, psnr
from cunet.video import FilmColorizer, Steadiness, histogram_change, lightness_histogram
from cunet.video_io import Frame, VideoSource, transcode

#: (name, options) compared on the colour clips; "per-frame" is the baseline.
OPTIONS = [
    ("per-frame", Steadiness(cuts=False, shot_palette=False, stabilise=False, every=1)),
    ("shot palette", Steadiness(shot_palette=True, stabilise=False, every=1)),
    ("flow, blend 0.5", Steadiness(shot_palette=False, blend=0.5, every=1)),
    ("flow, blend 0.35", Steadiness(shot_palette=False, blend=0.35, every=1)),
    ("flow, blend 0.2", Steadiness(shot_palette=False, blend=0.2, every=1)),
    ("palette + flow 0.35", Steadiness(blend=0.35, every=1)),
    ("flow 0.35, network every 2nd", Steadiness(shot_palette=False, blend=0.35, every=2)),
    ("flow 0.35, network every 3rd", Steadiness(shot_palette=False, blend=0.35, every=3)),
    ("flow, blend 0.1", Steadiness(shot_palette=False, blend=0.1, every=1)),
    ("palette + flow 0.2", Steadiness(blend=0.2, every=1)),
    ("palette + flow 0.2, every 2nd", Steadiness(blend=0.2, every=2)),
    ("palette + flow 0.2, every 3rd", Steadiness(blend=0.2, every=3)),
    ("palette + flow 0.2, every 4th", Steadiness(blend=0.2, every=4)),
    ("palette + flow 0.2, every 6th", Steadiness(blend=0.2, every=6)),
    ("predicted palette only", Steadiness(shot_palette=True, stabilise=False, every=1, palette_from="predicted")),
    ("predicted palette + flow 0.2, every 4th", Steadiness(blend=0.2, every=4, palette_from="predicted")),
]


def gray(rgb: np.ndarray) -> np.ndarray:
    """The frame with its L* kept and no colour: what a B/W film of it would be."""
    pixels = rgb.reshape(-1, 3).astype(np.float32) / 255
    zeros = np.zeros(len(pixels), np.float32)
    return srgb_with_ab_uint8(pixels, zeros, zeros, np.empty((len(pixels), 3), np.uint8)).reshape(rgb.shape)


def load_clips(data: Path, kind: str) -> dict[str, list[np.ndarray]]:
    folder = data / "video" / kind
    return {clip.name: [np.asarray(Image.open(p).convert("RGB")) for p in sorted(clip.glob("*.jpg"))]
            for clip in sorted(folder.iterdir()) if clip.is_dir()}


def colour_clip(colorizer: Colorizer, frames: list[np.ndarray], steadiness: Steadiness) -> tuple[list[np.ndarray], FilmColorizer]:
    film = FilmColorizer(colorizer, steadiness)
    return [f.rgb for f in film.frames(Frame(gray(rgb)) for rgb in frames)], film


def measure_key(kind: str, flow: str) -> str:
    """A warping error's key in the results: Farneback's keeps the plain name it always had."""
    return kind if flow == "farneback" else f"{kind}_{flow.replace('-', '_')}"


#: Both warping errors with each metric flow, as keyed in the results.
FLICKER = tuple(measure_key(kind, flow) for flow in METRIC_FLOWS for kind in ("warping_error", "colour_warping_error"))


def clip_motion(clips: dict) -> dict:
    """Every metric flow's `input_motion` of every clip: {clip: {flow: motion}}, computed once."""
    return {clip: {flow: input_motion(frames, flow) for flow in METRIC_FLOWS}
            for clip, frames in tqdm(clips.items(), desc="metric flows", unit="clip")}


def flicker(outputs: list[np.ndarray], motion: dict) -> dict:
    """Both warping errors of a coloured clip with each metric flow of its input (`clip_motion`)."""
    measures = {}
    for flow, moves in motion.items():
        measures[measure_key("warping_error", flow)] = warping_error(outputs, motion=moves)
        measures[measure_key("colour_warping_error", flow)] = colour_warping_error(outputs, motion=moves)
    return measures


def quality(colorizer: Colorizer, clips: dict, rows: dict, motion: dict, only: set | None = None) -> dict:
    """Each option's PSNR and flicker on the clips; `rows`: earlier results, kept for options not re-run."""
    rows = {"per-frame": rows["per-frame"], **rows} if "per-frame" in rows else dict(rows)
    for name, steadiness in OPTIONS:
        if only and name not in only and name in rows:
            continue
        per_clip = {}
        start = time.perf_counter()
        for clip, frames in tqdm(clips.items(), desc=name, unit="clip"):
            outputs, film = colour_clip(colorizer, frames, steadiness)
            per_clip[clip] = {
                "psnr": float(np.mean([float(psnr(o, t)) for o, t in zip(outputs, frames)])),
                "colourfulness": float(np.mean([colorfulness(o) for o in outputs])),
                **flicker(outputs, motion[clip]),
                "cdc": colour_distribution_consistency(outputs),
                "network_frames": film.network_frames,
            }
        seconds = time.perf_counter() - start
        rows[name] = {"options": asdict(steadiness), "seconds": seconds, "clips": per_clip,
                      **{k: float(np.mean([c[k] for c in per_clip.values()])) for k in ("psnr", "colourfulness", "cdc", *FLICKER)}}
        print(f"{name}: " + ", ".join(f"{k} {rows[name][k]:.5f}" for k in ("psnr", "colourfulness", "cdc", *FLICKER)), flush=True)
    base = rows["per-frame"]
    for row in rows.values():
        row["psnr_vs_per_frame"] = row["psnr"] - base["psnr"]
        for key in ("cdc", *FLICKER):
            if key in row and key in base:
                row[key + "_reduction"] = 1 - row[key] / base[key]
    return rows


def floors(clips: dict, motion: dict) -> dict:
    """The flicker measures of the gray input and of the ground truth itself: the floor every colouring
    shares (the flow's own error on the lightness) and where the truth lies."""
    rows = {}
    for name, make in (("gray input", gray), ("ground truth", lambda rgb: rgb)):
        per_clip = {clip: {**flicker([make(f) for f in frames], motion[clip]),
                           "colourfulness": float(np.mean([colorfulness(make(f)) for f in frames])),
                           "cdc": colour_distribution_consistency([make(f) for f in frames])}
                    for clip, frames in clips.items()}
        rows[name] = {"clips": per_clip, **{k: float(np.mean([c[k] for c in per_clip.values()]))
                                            for k in ("colourfulness", "cdc", *FLICKER)}}
    return rows


def cut_statistics(colorizer: Colorizer, clips: dict, bw: dict) -> dict:
    def histogram(rgb):
        prepared = colorizer.prepare(gray(rgb))
        return lightness_histogram(prepared.working(colorizer.working_size)[1][0, 0].numpy())

    histograms = {name: [histogram(f) for f in frames] for name, frames in {**clips, **bw}.items()}
    inside = {name: [histogram_change(a, b) for a, b in zip(h, h[1:])] for name, h in histograms.items()}
    between = [histogram_change(histograms[a][-1], histograms[b][0]) for a, b in permutations(clips, 2)]
    colour_inside = [v for name in clips for v in inside[name]]
    return {
        "colour_inside_max": max(colour_inside), "colour_inside_p99": float(np.percentile(colour_inside, 99)),
        "between_clips_min": min(between), "between_clips_p1": float(np.percentile(between, 1)),
        "between_pairs": len(between), "missed_between": int(sum(v <= Steadiness().cut_threshold for v in between)),
        "false_inside_colour": int(sum(v > Steadiness().cut_threshold for v in colour_inside)),
        "bw_cuts_found": {name: [i + 1 for i, v in enumerate(inside[name]) if v > Steadiness().cut_threshold] for name in bw},
        "bw_largest_changes": {name: sorted(((round(v, 3), i + 1) for i, v in enumerate(inside[name])), reverse=True)[:6]
                               for name in bw},
        "threshold": Steadiness().cut_threshold,
    }


def write_test_video(path: Path, frames: list[np.ndarray], rate: int = 25, audio: bool = True) -> None:
    """An MP4 (H.264) of `frames` with a 440 Hz AAC track as long as the picture."""
    import av

    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        sound = output.add_stream("aac", rate=48000) if audio else None
        for index, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = index
            output.mux(video.encode(picture))
        output.mux(video.encode(None))
        if sound is not None:
            samples = int(48000 * len(frames) / rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))


def speed(colorizer: Colorizer, frames: list[np.ndarray], threads: int) -> dict:
    """Frames/s end to end (decode, colour, join, encode, audio copy) on a 128-frame MP4 at 240 and 480
    lines. The network runs on `threads` PyTorch threads beside the writer thread (join, encoding), as
    `cunet video` does; "default, network on threads - 1" is the other split."""
    cv2.setNumThreads(1)
    results = {}
    runs = [("per-frame", OPTIONS[0][1], threads), ("network on every frame", Steadiness(every=1), threads),
            ("network every 2nd", Steadiness(every=2), threads), ("network every 3rd", Steadiness(every=3), threads),
            ("default", Steadiness(), threads), ("default, network on threads - 1", Steadiness(), threads - 1),
            ("network every 6th", Steadiness(every=6), threads)]
    with tempfile.TemporaryDirectory() as folder:
        for lines in (240, 480):
            scale = lines / frames[0].shape[0]
            sized = [cv2.resize(gray(f), (round(f.shape[1] * scale / 2) * 2, lines), interpolation=cv2.INTER_CUBIC)
                     for f in frames]
            clip = (sized + sized[::-1]) * 2  # 128 frames, no cut
            source = Path(folder) / f"in{lines}.mp4"
            write_test_video(source, clip)
            for name, steadiness, network_threads in runs:
                torch.set_num_threads(max(network_threads, 1))
                film = FilmColorizer(colorizer, steadiness)
                start = time.perf_counter()
                count = transcode(VideoSource(source), Path(folder) / f"out{lines}.mp4", film.run)
                seconds = time.perf_counter() - start
                results[f"{lines}p {name}"] = {"frames": count, "seconds": seconds, "frames_per_second": count / seconds,
                                               "size": list(sized[0].shape[1::-1]), "network_threads": network_threads,
                                               "steadiness": asdict(steadiness)}
                print(f"{lines}p {name}: {count / seconds:.1f} frames/s", flush=True)
    return results


def memory(frames: list[np.ndarray]) -> dict:
    """Peak RSS of `cunet video` in a fresh process on a short and a long clip: flat means streaming."""
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        base = [gray(f) for f in frames]
        for repeats in (2, 16):
            clip = (base + base[::-1]) * repeats
            source = Path(folder) / f"long{repeats}.mp4"
            write_test_video(source, clip)
            code = ("import resource, sys; from cunet.cli import main; sys.argv = ['cunet', 'video', sys.argv[1], '-o', "
                    "sys.argv[2]]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
            run = subprocess.run([sys.executable, "-c", code, str(source), str(Path(folder) / f"out{repeats}.mp4")],
                                 capture_output=True, text=True, check=True)
            results[f"{len(clip)} frames"] = {"peak_rss_mib": int(run.stdout.split()[-1]) / 1024}
    return results


def contact_sheet(colorizer: Colorizer, bw: dict, path: Path, columns: int = 6) -> dict:
    """Rows: per-frame and steady colouring of each B/W clip, frames spread across its first shot."""
    rows, labels, spreads = [], [], {}
    for clip, frames in bw.items():
        steady, film = colour_clip(colorizer, frames, Steadiness())
        shot_end = film.cuts[0] if film.cuts else len(frames)
        picks = np.linspace(0, shot_end - 1, columns).round().astype(int)
        single, _ = colour_clip(colorizer, frames, OPTIONS[0][1])
        for name, outputs in (("per frame", single), ("cunet video", steady)):
            rows.append([outputs[i] for i in picks])
            labels.append(f"{clip} - {name} (frames {', '.join(map(str, picks))})")
            chroma = [float(np.hypot(*cv2.cvtColor(o, cv2.COLOR_RGB2LAB)[..., 1:].astype(np.float32).transpose(2, 0, 1) - 128).mean())
                      for o in outputs[:shot_end]]
            spreads[f"{clip} {name}"] = {"mean_chroma_std_over_frames": float(np.std(chroma)),
                                         "warping_error": warping_error(outputs, frames)}
    tile_h = 160
    tiles = [[Image.fromarray(f).resize((round(f.shape[1] * tile_h / f.shape[0]), tile_h)) for f in row] for row in rows]
    width = max(sum(t.width for t in row) for row in tiles) + 4 * columns
    sheet = Image.new("RGB", (width, len(rows) * (tile_h + 24)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (row, label) in enumerate(zip(tiles, labels)):
        y = r * (tile_h + 24)
        draw.text((4, y + 5), label, fill="black")
        x = 0
        for tile in row:
            sheet.paste(tile, (x, y + 22))
            x += tile.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: sheet.save(handle, "JPEG", quality=88))
    return spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video.json"))
    parser.add_argument("--parts", default="quality,floors,cuts,speed,memory,sheet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--busy", action="store_true", help="store speed as speed_beside_training (another job runs)")
    parser.add_argument("--options", default="", help="only these quality options (names joined by ';'); the rest kept")
    parser.add_argument("--sheet", type=Path, default=Path("docs/video/contact_sheet.jpg"))
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(args.threads)
    colorizer = Colorizer.from_pretrained(args.model)
    clips = load_clips(args.data, "colour")
    bw = load_clips(args.data, "bw")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["model"] = str(args.model or "bundled default")
    if "cuts" in parts:
        results["cuts"] = cut_statistics(colorizer, clips, bw)
    motion = clip_motion(clips) if parts & {"quality", "floors"} else {}
    if "quality" in parts:
        only = set(args.options.split(";")) if args.options else None
        results["quality"] = quality(colorizer, clips, results.get("quality", {}), motion, only)
    if "floors" in parts:
        results["floors"] = floors(clips, motion)
    if "speed" in parts:
        key = "speed_beside_training" if args.busy else "speed"
        results[key] = {"threads": args.threads, **speed(colorizer, clips["parkour"], args.threads)}
    if "memory" in parts:
        results["memory"] = memory(clips["parkour"])
    if "sheet" in parts:
        results["sheet"] = {"path": str(args.sheet), **contact_sheet(colorizer, bw, args.sheet)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, lambda handle: handle.write(json.dumps(results, indent=2).encode()))
    print(json.dumps({k: v for k, v in results.items() if k != "quality"}, indent=2)[:3000])
    for name, row in results.get("quality", {}).items():
        fine = (f"  fine-DIS warp {row['warping_error_fine_dis']:.5f} ({row['warping_error_fine_dis_reduction']:+.0%})"
                if "warping_error_fine_dis_reduction" in row else "")
        colour = f"  colourfulness {row['colourfulness']:.1f}" if "colourfulness" in row else ""
        print(f"{name:32s} PSNR {row['psnr']:.2f} ({row['psnr_vs_per_frame']:+.2f}){colour}  warp {row['warping_error']:.5f} "
              f"({row['warping_error_reduction']:+.0%}){fine}  ab warp {row['colour_warping_error']:.2f} "
              f"({row['colour_warping_error_reduction']:+.0%})  CDC {row['cdc']:.5f} ({row['cdc_reduction']:+.0%})  {row['seconds']:.0f}s")


if __name__ == "__main__":
    main()
