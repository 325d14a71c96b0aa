"""README figures: a before/after of real black-and-white photos made by the bundled model (or
several models side by side), and the training curves of the run that produced it.

    python scripts/make_figures.py --logs docs/training/small.log.jsonl docs/training/small_stage2.log.jsonl \
        --photos examples/cowboys-1907.jpg ../shared/data/bw-photos/deoldify/marktwain.jpg
    python scripts/make_figures.py --photos ../shared/data/bw-photos/deoldify/*.jpg \
        --models bundled models/v2-stage1.safetensors --out-dir docs/bw   # one column per model, no curves
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from cunet.colorizer import Colorizer
from cunet.io import save_image_atomic
from cunet.train import read_log

ROW_HEIGHT = 320


def model_label(model: str) -> str:
    return "bundled model" if model == "bundled" else Path(model).stem


def before_after(paths: list[Path], out: Path, models: list[str] = ("bundled",), row_height: int = ROW_HEIGHT) -> None:
    """Input | each model's automatic colouring, one row per photo (models: 'bundled' or weights files)."""
    colorizers = [Colorizer.from_pretrained(None if m == "bundled" else m) for m in models]
    rows = []
    for path in paths:
        with Image.open(path) as image:
            before = image.convert("RGB")
        width = round(before.width * row_height / before.height)
        cells = [before] + [colorizer.colorize(path) for colorizer in colorizers]
        rows.append([im.resize((width, row_height), Image.Resampling.LANCZOS) for im in cells])
    column = max(row[0].width for row in rows) + 10
    canvas = Image.new("RGB", (column * len(rows[0]) + 10, len(rows) * (row_height + 10) + 30), "white")
    draw = ImageDraw.Draw(canvas)
    labels = ["black-and-white input"] + [f"cunet ({model_label(m)}, automatic)" for m in models]
    for number, label in enumerate(labels):
        draw.text((10 + number * column, 8), label, fill="black")
    for i, row in enumerate(rows):
        for number, cell in enumerate(row):
            canvas.paste(cell, (10 + number * column, 30 + i * (row_height + 10)))
    save_image_atomic(canvas, out)


def stitched_log(logs: list[Path]) -> tuple[list[dict], list[int]]:
    """Training stages as one run: each later stage's steps continue from where the previous one ended."""
    records, boundaries, offset = [], [], 0
    for log in logs:
        stage = read_log(log)
        records += [{**r, "step": r["step"] + offset} for r in stage if r["event"] in ("train", "val")]
        offset = max(r["step"] for r in records)
        boundaries.append(offset)
    return records, boundaries[:-1]


def training_curves(logs: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records, boundaries = stitched_log(logs)
    train = [r for r in records if r["event"] == "train"]
    val = [r for r in records if r["event"] == "val"]
    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train])
    loss_axis.set(xlabel="step", ylabel="loss (smoothed)", title="training loss", yscale="log")
    steps = [r["step"] for r in val]
    for key, label in (("auto", "automatic"), ("points10", "10 points")):
        psnr_axis.plot(steps, [r[key] - r["gray"] for r in val], marker="o", label=label)
    psnr_axis.axhline(0, color="gray", lw=1, ls="--")
    macro = "by_source" in val[-1]
    psnr_axis.set(xlabel="step", ylabel="PSNR gain over gray (dB)" + (", macro over sources" if macro else ""),
                  title="validation (val photos at the training crop size)")
    for axis in (loss_axis, psnr_axis):
        for stage, boundary in enumerate(boundaries, 2):
            axis.axvline(boundary, color="black", lw=0.8, ls=":")
            axis.annotate(f" stage {stage}", (boundary, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)
    psnr_axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description="Make README figures.")
    parser.add_argument("--logs", type=Path, nargs="+", default=None, help="training logs, one per stage, in order")
    parser.add_argument("--photos", type=Path, nargs="+", required=True)
    parser.add_argument("--models", nargs="+", default=["bundled"], help="'bundled' and/or weights files, one column each")
    parser.add_argument("--row-height", type=int, default=ROW_HEIGHT)
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = parser.parse_args()
    before_after(args.photos, args.out_dir / "before_after.png", args.models, args.row_height)
    if args.logs:
        training_curves(args.logs, args.out_dir / "training_curves.png")


if __name__ == "__main__":
    main()
