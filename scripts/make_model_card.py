"""Write the bundled model's card from what was measured: the weights' metadata, the training log and
the acceptance benchmark's JSON (benchmarks/val_quality.py). Nothing in the card is typed by hand.

    python scripts/make_model_card.py --log docs/training/small.log.jsonl \
        --quality benchmarks/results/val_quality.json --out src/cunet/weights/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cunet.colorizer import bundled_weights
from cunet.checkpoint import load_model
from cunet.io import write_atomic

LABELS = {
    "gray": "predicted gray (a*b* = 0)",
    "automatic": "automatic (no hints)",
    "gt_histogram": "+ ground-truth global histogram",
    "points_10": "10 points (5×5)",
    "points_10_gt_histogram": "10 points + global histogram",
}


def card(log: list[dict], quality: dict, weights: Path, wall_seconds: float | None = None) -> str:
    model, metadata = load_model(weights)
    config = metadata["model_config"]
    info = metadata["info"]
    train_config = info["train_config"]
    starts = [r for r in log if r["event"] == "start"]
    train_records = [r for r in log if r["event"] == "train"]
    val = [r for r in log if r["event"] == "val"]
    parameters = sum(p.numel() for p in model.parameters())
    stamped = [r["time"] for r in log if "time" in r]
    wall = wall_seconds or (stamped[-1] - stamped[0] if len(stamped) > 1 else None)
    lines = [
        "# cunet default model — `small` preset",
        "",
        "## What it is",
        f"- CU-net (SPEC.md §2) at width {config['width']}: BatchNorm before {config['activation']}, "
        f"global-hint branch over {config['global_bins']} in-gamut a\\*b\\* bins, {parameters:,} parameters, "
        f"stored as fp16 safetensors ({weights.stat().st_size / 2**20:.1f} MiB).",
        f"- Runs at a working size of {info['working_size']} px (short side), the scale it was trained at; its "
        "a\\*b\\* is up-sampled and joined with the photo's full-resolution L\\*.",
        "",
        "## Training",
        f"- Data: the `people` photos' train split ({starts[0]['photos']:,} photos after dropping "
        f"{starts[0]['dropped_gray']} near-gray ones): Clothing Co-Parsing, LSP Extended, UTKFace.",
        f"- Recipe: `configs/small.toml` — random {train_config['crop']}² crops of photos shrunk to a "
        f"{train_config['cache_short_side']} px short side, flips, simulated hints (SPEC.md §3), "
        f"{train_config['loss']} loss (δ = {train_config['huber_delta']} a\\*b\\* units), AdamW lr "
        f"{train_config['lr']} with warm-up and cosine decay, batch {train_config['batch_size']}, bf16 autocast.",
        f"- {info['steps']:,} steps = {info['steps'] * train_config['batch_size']:,} crops "
        f"(~{info['steps'] * train_config['batch_size'] / starts[0]['photos']:.0f} epochs); "
        f"{info['train_seconds'] / 3600:.2f} h inside training steps"
        + (f", {wall / 3600:.2f} h wall-clock" if wall else "")
        + " on this project's 2-core AMD EPYC CPU (no GPU), in "
        f"{len(starts)} resumed sittings (the schedule's total was {', then '.join(str(s['config']['steps']) for s in starts)} steps).",
        f"- Final smoothed training loss {train_records[-1]['loss']:.2f}. Curves: `docs/training_curves.png`.",
        "",
        f"## Quality ({quality['photos']} val photos, never trained on; `benchmarks/val_quality.py`)",
        "",
        f"Protocol: {quality['protocol']}; working size {quality['working_size']}.",
        "",
        "| setting | PSNR (dB) | vs gray |",
        "|---|---|---|",
    ]
    for key, values in quality["results"].items():
        lines.append(f"| {LABELS.get(key, key)} | {values['psnr_mean']:.2f} ± {values['psnr_sem']:.2f} | "
                     f"{values['gain_over_gray_db']:+.2f} |")
    if "by_source" in quality:
        lines += ["", "Gain over gray by source (dB) — face crops fill the frame with skin, so colour pays most there:", "",
                  "| source | photos | gray PSNR | automatic | + histogram | 10 points | 10 points + histogram |",
                  "|---|---|---|---|---|---|---|"]
        for source, values in quality["by_source"].items():
            gains = " | ".join(f"{values[k]['gain_over_gray_db']:+.2f}" for k in LABELS if k != "gray" and k in values)
            lines.append(f"| {source} | {values['photos']} | {values['gray']['psnr_mean']:.2f} | {gains} |")
    last = val[-1]
    lines += [
        "",
        f"During training (validation on the first {quality.get('train_val_photos', 128)} val rows of the manifest, "
        f"128 px, 3×3 points): final automatic {last['auto'] - last['gray']:+.2f} dB, "
        f"10 points {last['points10'] - last['gray']:+.2f} dB over gray.",
        "",
        "## Terms and limits",
        "- The training photos are for research use only (UTKFace: non-commercial research); the model "
        "inherits those terms.",
        "- Trained on modern colour photos of people (faces, sport, street fashion): scenes without people, "
        "and the tones of old film, are outside what it saw. Colours are plausible guesses, not history.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--quality", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("src/cunet/weights/MODEL_CARD.md"))
    parser.add_argument("--wall-seconds", type=float, default=None,
                        help="wall-clock of the whole run, where the log carries no timestamps")
    args = parser.parse_args()
    log = [json.loads(line) for line in args.log.read_text().splitlines()]
    text = card(log, json.loads(args.quality.read_text()), args.weights or bundled_weights(), args.wall_seconds)
    write_atomic(args.out, lambda handle: handle.write(text.encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
