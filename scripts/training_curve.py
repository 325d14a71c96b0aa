"""Quality against training hours for a long run (issue 19, item 6) -> one figure, from the run's own
records: its training log (the 128² validation every `val_every` steps) and the 256² `cunet evaluate`
report of each stage's export (the export's own metadata says how many training seconds it holds).

Both panels show the headline (the macro average over the sources that are not face crops) as a
thick line and each source as a thin one, as gains over the gray prediction in dB, so that a gain
carried by one source is seen as such; the face crops (UTKFace) are drawn dashed, outside the headline.

    python scripts/training_curve.py docs/training/v3.log.jsonl docs/training/v3arms/control.log.jsonl \
        --start docs/results/v3_stages/v2-stage5 \
        --stages docs/results/v3_stages/v3-stage{1,2,3,4,5,6,7,8} --out docs/v3_curve.png
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from cunet.io import write_atomic
from cunet.sources import FACE_CROP_SOURCES
from cunet.train import read_log


def validation_curve(logs: list[Path]) -> tuple[list[dict], int]:
    """The logs' validation records, one per step (a restarted stage's repeated step keeps the last;
    logs in the order given, so a run continued in another folder goes on where the first ended), and
    the number of validation photos (the last start record's)."""
    records = [record for log in logs for record in read_log(log)]
    by_step = {record["step"]: record for record in records if record["event"] == "val"}
    photos = next((record.get("val_photos") for record in reversed(records) if record["event"] == "start"), None)
    return [by_step[step] for step in sorted(by_step)], photos


def _result(report: dict, method: str, points: int) -> dict:
    return next(r for r in report["results"] if (r["method"], r["points"], r["global"]) == (method, points, "none"))


def stage_point(report_dir: Path, hours: float | None = None) -> dict:
    """A stage's 256² report -> its training hours (from the export's metadata unless given) and gains
    over gray: headline automatic and 10 points, and automatic per source."""
    report = json.loads((report_dir / "report.json").read_text())
    if hours is None:
        from safetensors import safe_open

        with safe_open(report["model"], "pt") as weights:
            hours = json.loads(weights.metadata()["cunet"])["info"]["train_seconds"] / 3600
    gray, automatic, points = _result(report, "gray", 0), _result(report, "cunet", 0), _result(report, "cunet", 10)
    per_source = {source: automatic["by_source"][source]["psnr"]["mean"] - gray["by_source"][source]["psnr"]["mean"]
                  for source in automatic["by_source"]}
    return {"name": report_dir.name, "hours": hours, "automatic": automatic["psnr"]["mean"] - gray["psnr"]["mean"],
            "points10": points["psnr"]["mean"] - gray["psnr"]["mean"], "by_source": per_source}


def draw(curve: list[dict], val_photos: int | None, stages: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), sharey=False)
    hours = [record["train_seconds"] / 3600 for record in curve]
    sources = sorted({s for r in curve for s in r["by_source"]} | {s for stage in stages for s in stage["by_source"]})
    colour = {source: plt.get_cmap("tab10")(i % 10) for i, source in enumerate(sources)}  # one colour per source, both panels
    for source in sources:
        gains = [r["by_source"][source]["auto"] - r["by_source"][source]["gray"] if source in r["by_source"] else None
                 for r in curve]
        left.plot(hours, gains, lw=0.8, alpha=0.6, color=colour[source],
                  ls="--" if source in FACE_CROP_SOURCES else "-", label=source)
    left.plot(hours, [r["auto"] - r["gray"] for r in curve], lw=2.5, color="black", label="headline, automatic")
    left.plot(hours, [r["points10"] - r["gray"] for r in curve], lw=2.5, color="tab:red", label="headline, 10 points")
    photos = f"{val_photos} val photos; " if val_photos else ""
    left.set_title(f"128² validation in training ({photos}regression head, 3×3 points)", fontsize=10)
    stage_hours = [stage["hours"] for stage in stages]
    for source in sources:
        right.plot(stage_hours, [s["by_source"].get(source) for s in stages], marker=".", lw=0.8, alpha=0.6,
                   color=colour[source], ls="--" if source in FACE_CROP_SOURCES else "-", label=source)
    right.plot(stage_hours, [s["automatic"] for s in stages], marker="o", lw=2.5, color="black", label="headline, automatic")
    right.plot(stage_hours, [s["points10"] for s in stages], marker="o", lw=2.5, color="tab:red", label="headline, 10 points")
    for stage in stages:
        right.annotate(stage["name"], (stage["hours"], stage["automatic"]), fontsize=7, xytext=(2, -10),
                       textcoords="offset points")
    right.set_title("256² protocol (cunet evaluate; 5×5 points), each stage's export, its stored decoding", fontsize=10)
    for axes in (left, right):
        axes.axhline(0, color="gray", lw=0.8)
        axes.set_xlabel("training hours (CPU)")
        axes.set_ylabel("PSNR over gray (dB)")
        axes.grid(alpha=0.3)
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # the same colours as the left panel's
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    write_atomic(out, lambda handle: handle.write(buffer.getvalue()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", type=Path, nargs="+", help="the run's log.jsonl (several: one run continued, in order)")
    parser.add_argument("--start", type=Path, default=None, help="the report of the weights the run began from (hour 0)")
    parser.add_argument("--stages", type=Path, nargs="*", default=[], help="each stage's cunet evaluate report folder")
    parser.add_argument("--out", type=Path, default=Path("docs/v3_curve.png"))
    args = parser.parse_args()
    stages = ([stage_point(args.start, 0.0)] if args.start else []) + [stage_point(d) for d in args.stages]
    draw(*validation_curve(args.logs), stages, args.out)
    for stage in stages:
        print(f"{stage['name']:12s} {stage['hours']:5.2f} h  automatic {stage['automatic']:+.2f}  "
              f"10 points {stage['points10']:+.2f} dB over gray")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
