"""Write the bundled model's card from what was measured: the weights' metadata, the training logs of
every stage and the `cunet evaluate` report on the val splits (the headline macro over the sources that
are not face crops, each source beside it). Nothing in the card is typed by hand.

    python scripts/make_model_card.py --logs docs/training/small.log.jsonl docs/training/small_stage2.log.jsonl \
        --wall-seconds 7444 0 --report docs/results/val/report.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cunet.checkpoint import load_model
from cunet.colorizer import HINTS_FOR_FULL_WAY, bundled_weights
from cunet.io import write_atomic
from cunet.train import read_log

SETTINGS = (  # (label, method, points, global) rows of the acceptance table
    ("predicted gray (a\\*b\\* = 0)", "gray", 0, "none"),
    ("cunet automatic (no hints)", "cunet", 0, "none"),
    ("cunet + ground-truth global histogram", "cunet", 0, "gt"),
    ("cunet, 10 points (5×5)", "cunet", 10, "none"),
    ("cunet, 10 points + global histogram", "cunet", 10, "gt"),
    ("Levin et al. 2004, the same 10 points", "levin", 10, "none"),
    ("cunet, 50 points", "cunet", 50, "none"),
    ("Levin et al. 2004, the same 50 points", "levin", 50, "none"),
)
SOURCE_SETTINGS = (("automatic", "cunet", 0, "none"), ("+ histogram", "cunet", 0, "gt"), ("10 points", "cunet", 10, "none"),
                   ("Levin, 10 points", "levin", 10, "none"))


def data_sources(train_config: dict) -> list[str]:
    data = train_config["data"]
    return [Path(d).parent.name if d.endswith(".csv") else Path(d).name for d in ([data] if isinstance(data, str) else data)]


def headline_line(report: dict) -> str:
    """What the table's figures average: the headline sources (reports from before the headline
    left face crops out averaged every source)."""
    headline = report.get("headline_sources", list(report["sources"]))
    left_out = [name for name in report["sources"] if name not in headline]
    counts = {name: f"{name} {count}" for name, count in report["sources"].items()}
    return (f"Every figure is the headline: the macro average over {len(headline)} sources "
            f"({', '.join(counts[name] for name in headline)} photos; each weighs the same)"
            + (f". Face crops ({', '.join(counts[name] for name in left_out)} photos) gain far "
               "more from colour than anything else and are left out of it; they have their own row below."
               if left_out else "."))


def result(report: dict, method: str, points: int, global_: str) -> dict:
    for row in report["results"]:
        if (row["method"], row["points"], row["global"]) == (method, points, global_):
            return row
    raise KeyError(f"the report has no {method}/{points} points/{global_} row")


def global_gt(report: dict) -> str:
    """What the report's ground-truth global hint was (older reports name it `global_gt`)."""
    protocol = report["protocol"]
    return protocol["globals"]["gt"] if "globals" in protocol else protocol["global_gt"]


def last_train_record(log: list[dict]) -> dict:
    return [r for r in log if r["event"] == "train"][-1]


def sittings(log: list[dict]) -> list[list[dict]]:
    """The log cut at each (re)start: one list of records per sitting."""
    cuts = [i for i, r in enumerate(log) if r["event"] == "start"] + [len(log)]
    return [log[a:b] for a, b in zip(cuts, cuts[1:])]


def stage_line(index: int, log: list[dict], wall_seconds: float | None) -> str:
    """One training stage; its wall-clock is the sum of its sittings' spans in the log's timestamps
    (the gaps between sessions are not training), or is given for older logs without them."""
    starts = [r for r in log if r["event"] == "start"]
    config = starts[-1]["config"]
    last = last_train_record(log)
    if not wall_seconds:
        spans = [[r["time"] for r in sitting if "time" in r] for sitting in sittings(log)]
        wall_seconds = sum(times[-1] - times[0] for times in spans if len(times) > 1) or None
    wall = f", {wall_seconds / 3600:.2f} h wall-clock" if wall_seconds else ""
    sittings_text = f" in {len(starts)} resumed sittings" if len(starts) > 1 else ""
    first = starts[0]["config"]  # a stage starts where its first sitting did; later sittings resume it
    origin = f"from `{first['init_from']}`" if first.get("init_from") else "from scratch"
    schedule = f"schedule of {config['steps']:,} steps"
    first_steps = starts[0]["config"]["steps"]
    if first_steps != config["steps"]:
        stretched = next(r["step"] for r in starts if r["config"]["steps"] == config["steps"])
        change = "stretched" if config["steps"] > first_steps else "cut"
        schedule = f"schedule of {first_steps:,} steps, {change} to {config['steps']:,} at step {stretched:,}"
    data = ", ".join(f"`{d}`" for d in data_sources(config))
    return (f"{index}. {origin}, on {data}: {last['step']:,} steps × batch {config['batch_size']}, AdamW lr {config['lr']} "
            f"with {config['warmup_steps']} warm-up steps and cosine decay ({schedule}, "
            f"seed {config['seed']}); {last['train_seconds'] / 3600:.2f} h inside training steps{wall}"
            f"{sittings_text}; final smoothed loss {last['loss']:.2f}.")


DECODINGS = {
    "regression": "the regression head's a\\*b\\*",
    "annealed": "the annealed mean of the distribution head (T = {temperature})",
    "blend": "{share:.0%} the annealed mean of the distribution head (T = {temperature}), {rest:.0%} the regression head",
}


def decoding_line(info: dict) -> str:
    decode = info.get("decode", {"method": "regression"})
    blend = decode.get("blend", 0.0)
    text = DECODINGS[decode["method"]].format(temperature=decode.get("temperature"), share=blend, rest=1 - blend)
    if decode.get("gain", 1.0) != 1.0:
        text += f", times a chroma gain of {decode['gain']:g} (`--chroma-gain`)"
    return f"- What the user sees (the stored decoding, `cunet export --decode`): {text}."


def card(stages: list[list[dict]], report: dict, weights: Path,
         wall_seconds: list[float | None] | None = None, curves: str = "docs/training_curves.png") -> str:
    model, metadata = load_model(weights)
    config = metadata["model_config"]
    info = metadata["info"]
    train_config = info["train_config"]
    first_start = next(r for r in stages[-1] if r["event"] == "start")  # the data the model ended on
    epochs = sum(last_train_record(log)["step"] * train_config["batch_size"]
                 / next(r for r in log if r["event"] == "start")["photos"] for log in stages)
    parameters = sum(p.numel() for p in model.parameters())
    steps = sum(last_train_record(log)["step"] for log in stages)
    hours = sum(last_train_record(log)["train_seconds"] for log in stages) / 3600
    gray = result(report, "gray", 0, "none")["psnr"]["mean"]
    lines = [
        f"# cunet {'default ' if weights == bundled_weights() else ''}model — "
        f"`{train_config.get('preset', 'small')}` preset, width {config['width']}",
        "",
        "## What it is",
        f"- CU-net (SPEC.md §2) at width {config['width']}: BatchNorm before {config['activation']}, "
        f"global-hint branch over {config['global_bins']} in-gamut a\\*b\\* bins, {parameters:,} parameters, "
        f"stored as fp16 safetensors ({weights.stat().st_size / 2**20:.1f} MiB).",
        f"- Runs at a working size of {info['working_size']} px (short side), the scale it was trained at; its "
        "a\\*b\\* is up-sampled and joined with the photo's full-resolution L\\*.",
        *([decoding_line(info)] if config.get("distribution_head") else []),
        *(["- Automatic colouring's global hint: the photo's own a\\*b\\* histogram as the histogram head "
           "predicts it from L\\* (`cunet fit-histogram-head`, the trunk frozen"
           + (f"; sharpened, T = {info['histogram_temperature']:g}" if info.get("histogram_temperature", 1.0) != 1.0 else "")
           + "); `--global none` turns it off."] if info.get("automatic_global") == "predicted" else []),
        *([f"- Points and strokes take over from the automatic palette and the chroma gain: fully in their "
           f"regions (the point fill's edge-aware reach) and, by their count, everywhere, fully at "
           f"{HINTS_FOR_FULL_WAY} of them (`Colorizer.hints_lead`; docs/v3.md, section 8)."]
          if info.get("automatic_global") == "predicted" or info.get("decode", {}).get("gain", 1.0) != 1.0 else []),
        "",
        "## Training",
        f"- Data{' (the last stage)' if len(stages) > 1 else ''}: the train split of {', '.join(f'`{d}`' for d in data_sources(train_config))} "
        f"({first_start['photos']:,} photos after dropping {first_start['dropped_gray']} near-gray ones)"
        + (": " + ", ".join(f"{name} {share:.0%}" for name, share in first_start["source_shares"].items())
           + " of the draws (`source_weights`)." if "source_shares" in first_start
           else ": Clothing Co-Parsing, LSP Extended, UTKFace."),
        f"- Every stage: random {train_config['crop']}² crops of photos shrunk to a "
        f"{train_config['cache_short_side']} px short side, flips, simulated hints (SPEC.md §3), "
        f"{train_config['loss']} loss (δ = {train_config['huber_delta']} a\\*b\\* units)"
        + (f" + {train_config['ce_weight']:g} × class-rebalanced cross-entropy over the a\\*b\\* bins "
           f"(λ = {train_config.get('rebalance_mix', 0.5)})" if train_config.get("ce_weight") else "")
        + (", edge-aware point spread as input" if config.get("propagated_hints") else "")
        + (f", {train_config['hints']['dense_probability']:.0%} dense point counts"
           if train_config.get("hints", {}).get("dense_probability") else "")
        + ", bf16 autocast, "
        "on this project's 2-core AMD EPYC CPU (no GPU).",
        f"- {len(stages)} stage{'s' if len(stages) > 1 else ''}, {steps:,} steps = {steps * train_config['batch_size']:,} crops "
        f"(~{epochs:.0f} epochs), {hours:.2f} h inside training steps:",
        "",
        *(stage_line(i, log, wall) for i, (log, wall) in enumerate(zip(stages, wall_seconds or [None] * len(stages)), 1)),
        "",
        f"Curves: `{curves}`.",
        "",
        f"## Quality ({report['photos']} val photos, never trained on; `cunet evaluate`)",
        "",
        *([headline_line(report), ""] if len(report.get("sources", {})) > 1 else []),
        f"Protocol: {report['protocol']['size']}×{report['protocol']['size']} ({report['protocol']['resize']}), "
        f"points = {report['protocol']['patch']}×{report['protocol']['patch']} patches drawn by "
        f"{report['protocol']['points_rng']}, global hint = {global_gt(report)}; PSNR on 8-bit RGB.",
        "",
        "| setting | PSNR (dB) | vs gray | SSIM | ΔE00 | colourfulness |",
        "|---|---|---|---|---|---|",
    ]
    for label, method, points, global_ in SETTINGS:
        if points not in report["points"] or method not in report["methods"]:
            continue
        row = result(report, method, points, global_)
        lines.append(f"| {label} | {row['psnr']['mean']:.2f} ± {row['psnr']['sem']:.2f} | {row['psnr']['mean'] - gray:+.2f} | "
                     f"{row['ssim']['mean']:.4f} | {row['ciede2000']['mean']:.2f} | {row['colorfulness']['mean']:.1f} |")
    truth = result(report, "gray", 0, "none")["colorfulness_gt"]["mean"]
    lines += ["", f"Ground-truth colourfulness {truth:.1f}."]
    if len(report.get("sources", {})) > 1:
        gray_row = result(report, "gray", 0, "none")
        lines += ["", "Gain over gray by source (dB, same report) — face crops fill the frame with skin, so colour "
                  "pays most there; crowds and street scenes least:", "",
                  "| source | photos | gray PSNR | " + " | ".join(label for label, *_ in SOURCE_SETTINGS) + " |",
                  "|---|---|---|" + "---|" * len(SOURCE_SETTINGS)]
        for source, n in report["sources"].items():
            base = gray_row["by_source"][source]["psnr"]["mean"]
            gains = " | ".join(f"{result(report, *key)['by_source'][source]['psnr']['mean'] - base:+.2f}"
                               for _, *key in SOURCE_SETTINGS)
            lines.append(f"| {source} | {n} | {base:.2f} | {gains} |")
    sets = data_sources(train_config)
    scenes, places = "people-scenes" in sets, "scenes" in sets
    lines += [
        "",
        "## Terms and limits",
        "- The training photos are for research use only (UTKFace: non-commercial research"
        + ("; ShanghaiTech and Penn-Fudan: research use" if scenes else "")
        + ("; SUN, Intel and PACS: research use; CamVid: CC BY-NC 4.0" if places else "")
        + "); the model inherits those terms.",
        "- Trained on modern colour photos of people (faces, sport, street fashion"
        + (", crowds and pedestrians" if scenes else "") + ")"
        + (" and of everyday places (rooms, streets, buildings, fields, forests, water, animals)" if places else "")
        + (": the tones of old film are outside what it saw. " if places
           else ": scenes without people, and the tones of old film, are outside what it saw. ")
        + "Colours are plausible guesses, not history.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=Path, nargs="+", required=True, help="training logs, one per stage, in order")
    parser.add_argument("--report", type=Path, required=True, help="report.json of `cunet evaluate` on the val split")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--wall-seconds", type=float, nargs="+", default=None,
                        help="each stage's wall-clock, for logs without timestamps (0 = take it from the log)")
    parser.add_argument("--curves", default="docs/training_curves.png", help="the training-curve figure the card names")
    parser.add_argument("--out", type=Path, default=Path("src/cunet/weights/MODEL_CARD.md"))
    args = parser.parse_args()
    if args.wall_seconds and len(args.wall_seconds) != len(args.logs):
        parser.error(f"--wall-seconds needs one value per log ({len(args.logs)}), got {len(args.wall_seconds)}")
    text = card([read_log(path) for path in args.logs], json.loads(args.report.read_text()),
                args.weights or bundled_weights(), [w or None for w in args.wall_seconds] if args.wall_seconds else None,
                args.curves)
    write_atomic(args.out, lambda handle: handle.write(text.encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
