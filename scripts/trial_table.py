"""Equal-budget trials -> docs/trials.md and docs/trials.png, from the runs' own logs.

Each arm is `cunet train --config configs/trials/ARM.toml --stop-after-minutes M`; this reads the
last validation record of every run given (a run folder, or its log.jsonl copied to
docs/training/trials/ARM.log.jsonl) and draws the validation curves against training minutes. The
headline is the macro average over the sources that are not face crops, recomputed from each
record's per-source means (so older logs, whose own macro counted every source, read the same way);
each source is shown beside it.

    python scripts/trial_table.py docs/training/trials/{base,ce,ce_prop,w24,w32,c176}.log.jsonl --out docs/trials
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cunet.io import write_atomic
from cunet.sources import FACE_CROP_SOURCES, headline_sources, macro_mean
from cunet.train import LOG_FILE, read_log

SETTING = ("two arms at a time, one thread each, on the 2-core CPU), on the same data (people + people-scenes, "
           "per-source weights")


def with_headline(record: dict, exclude: list[str]) -> dict:
    """A validation record whose figures are the macro over its non-excluded sources."""
    headline = headline_sources(record["by_source"], exclude)
    figures = {key: macro_mean({s: scores[key] for s, scores in record["by_source"].items()}, headline)
               for key in next(iter(record["by_source"].values()))}
    return {**record, **figures, "headline_sources": headline}


def arm_summary(run: Path, exclude: tuple[str, ...] | list[str] = FACE_CROP_SOURCES) -> dict:
    """A run folder or a log file -> the arm's name, config, validation records (headline figures)
    and speed."""
    log = run / LOG_FILE if run.is_dir() else run
    records = read_log(log)
    start = next(r for r in records if r["event"] == "start")
    vals = [with_headline(r, exclude) for r in records if r["event"] == "val"]
    trains = [r for r in records if r["event"] == "train"]
    config = start["config"]
    name = run.name if run.is_dir() else run.name.removesuffix(".jsonl").removesuffix(".log")
    return {"arm": name, "config": config, "vals": vals, "last": vals[-1],
            "images_per_s": sum(r["images_per_s"] for r in trains[-20:]) / max(1, len(trains[-20:])),
            "steps": vals[-1]["step"], "minutes": vals[-1]["train_seconds"] / 60}


def describe(config: dict) -> str:
    parts = [f"w{config['width'] or 16}", f"{config['crop']} px"]
    if config.get("init_from"):
        parts.append(f"from {Path(config['init_from']).stem}, lr {config['lr']:g}")
    if config.get("ce_weight"):
        parts.append(f"CE×{config['ce_weight']:g}")
    if config.get("propagated_hints"):
        parts.append("spread hints")
    if config.get("hints", {}).get("dense_probability"):
        parts.append(f"dense {config['hints']['dense_probability']:.0%}")
    return ", ".join(parts)


def markdown(arms: list[dict], chosen: str | None = None, why: str = "", setting: str = SETTING,
             configs: str = "configs/trials", logs: str = "docs/training/trials", out: str = "docs/trials") -> str:
    points = next(k for k in arms[0]["last"] if k.startswith("points"))
    sources = sorted(arms[0]["last"]["by_source"])
    headline = arms[0]["last"]["headline_sources"]
    left_out = [s for s in sources if s not in headline]
    lines = ["# Equal-budget trials", "",
             f"Each arm trained for the same {arms[0]['minutes']:.0f} minutes of steps ({setting}), "
             "from the same seed and schedule. Validation: the 128² centre squares of up to 64 val photos per "
             f"source; PSNR (dB) is the headline, the macro average over {len(headline)} sources"
             + (f" (face crops, {', '.join(left_out)}, left out: they are in the by-source table)" if left_out else "")
             + "; colourfulness (Hasler–Süsstrunk) of the automatic output, truth "
             f"{arms[0]['last']['colorfulness_gt']:.1f}. Commands: "
             f"`cunet train --config {configs}/ARM.toml --stop-after-minutes M`, then "
             f"`python scripts/trial_table.py {logs}/*.log.jsonl --out {out}` (the runs' logs).", "",
             f"| arm | what | steps | img/s | gray | automatic | annealed | {points} | colourf. auto | colourf. annealed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in arms:
        last = arm["last"]
        annealed = f"{last['auto_annealed']:.2f}" if "auto_annealed" in last else "–"
        colour_annealed = f"{last['colorfulness_annealed']:.1f}" if "colorfulness_annealed" in last else "–"
        lines.append(f"| {arm['arm']} | {describe(arm['config'])} | {arm['steps']} | {arm['images_per_s']:.0f} | "
                     f"{last['gray']:.2f} | {last['auto']:.2f} | {annealed} | {last[points]:.2f} | "
                     f"{last['colorfulness_auto']:.1f} | {colour_annealed} |")
    lines += ["", f"Gain over gray by source, automatic / {points} (dB):", "",
              "| arm | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for arm in arms:
        by_source = arm["last"]["by_source"]
        cells = [f"{by_source[s]['auto'] - by_source[s]['gray']:+.2f} / {by_source[s][points] - by_source[s]['gray']:+.2f}"
                 for s in sources]
        lines.append(f"| {arm['arm']} | " + " | ".join(cells) + " |")
    best = {key: max(arms, key=lambda arm: arm["last"][key])["arm"] for key in ("auto", points)}
    lines += ["", f"Best headline automatic: **{best['auto']}**; best headline {points}: **{best[points]}**."]
    if chosen:
        lines += ["", f"Chosen for the long run: **{chosen}**. {why}".rstrip()]
    lines += ["", f"![validation curves]({Path(out).name}.png)"]
    return "\n".join(lines) + "\n"


def plot(arms: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = next(k for k in arms[0]["last"] if k.startswith("points"))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for arm in arms:
        minutes = [r["train_seconds"] / 60 for r in arm["vals"]]
        for axis, key in zip(axes, ("auto", points)):
            axis.plot(minutes, [r[key] - r["gray"] for r in arm["vals"]], marker="o", label=arm["arm"])
    for axis, title in zip(axes, ("automatic", points)):
        axis.set(xlabel="training minutes", ylabel="headline PSNR gain over gray (dB)", title=title)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    write_atomic(out, lambda handle: figure.savefig(handle, format="png", dpi=100))
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with log.jsonl) or log files")
    parser.add_argument("--out", type=Path, default=Path("docs/trials"), help="writes OUT.md and OUT.png")
    parser.add_argument("--chosen", default=None, help="the arm chosen for the long run")
    parser.add_argument("--why", default="", help="one paragraph: why that arm")
    parser.add_argument("--setting", default=SETTING, help="how the arms shared the machine, and on what data")
    parser.add_argument("--configs", default="configs/trials", help="the arms' config folder, for the command shown")
    parser.add_argument("--exclude-from-headline", default=",".join(FACE_CROP_SOURCES),
                        help="sources left out of the headline macro (comma-separated)")
    args = parser.parse_args()
    missing = [str(run) for run in args.runs if not (run / LOG_FILE if run.is_dir() else run).is_file()]
    if missing:
        parser.error(f"no training log in {', '.join(missing)}")
    exclude = [name for name in args.exclude_from_headline.split(",") if name]
    arms = [arm_summary(run, exclude) for run in args.runs]
    logs = str(args.runs[0].parent) if not args.runs[0].is_dir() else "RUN_FOLDERS"
    text = markdown(arms, args.chosen, args.why, args.setting, args.configs, logs, str(args.out))
    write_atomic(args.out.with_suffix(".md"), lambda handle: handle.write(text.encode()))
    plot(arms, args.out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    main()
