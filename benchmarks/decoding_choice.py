"""Which decoding a model should store: the rule of issue 19, measured on the val splits.

A model with a distribution head can decode its output as the regression head (the safe average of
plausible colours), the annealed mean of the per-pixel distribution (vivid), or a blend. The rule
weighs what a user sees: among the decodings whose automatic colourfulness (Hasler–Süsstrunk) is at
least `--vivid` (0.8) x the truth's, the one with the highest automatic PSNR; if none is vivid
enough, the most colourful one, said as such. Both figures are headline figures: the macro average
over the sources that are not face crops (`cunet.sources`), each source beside it.

A decoding may carry a chroma gain (`regression*1.4`: the decoded a*b* times 1.4), the plainest way
to more colour, so that the head's vivid decodings are weighed against it at equal colourfulness.

The network runs once per photo and every decoding is taken from that one pass
(`Colorizer.predict_ab_decodings`), so the comparison costs little more than one evaluation.
Protocol as `cunet evaluate` (256x256, PIL bicubic; the model at its working size).

    python benchmarks/decoding_choice.py --model models/v3-stage1.safetensors \
        --out benchmarks/results/decoding_choice_v3_stage1.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cunet.colorizer import Colorizer, check_decoding
from cunet.errors import CunetError
from cunet.evaluate import _gray_rgb, _lab_of, evaluation_set, load_eval_photo, summarise_by_source
from cunet.io import write_atomic
from cunet.metrics import colorfulness, psnr
from cunet.sources import FACE_CROP_SOURCES

DATA = ["../shared/data/people", "../shared/data/people-scenes", "../shared/data/scenes"]
DECODINGS = ("regression,blend:0.25,blend:0.5,blend:0.75,annealed:0.38,annealed:0.25,annealed:0.15,"
             "regression*1.2,regression*1.3,regression*1.4,regression*1.6,blend:0.25*1.2")


def parse_decoding(text: str, default_temperature: float) -> tuple[str, float, float, float]:
    """'regression' | 'blend:SHARE[@TEMPERATURE]' | 'annealed:TEMPERATURE', each with an optional
    '*GAIN' -> (decode, temperature, blend, chroma gain), as `Colorizer.predict_ab_decodings` takes
    it. The chroma gain multiplies the decoded a*b* (`cunet export --chroma-gain`; the join clips
    what leaves the gamut): the plainest way to more colour, measured beside the distribution head's."""
    text, _, gain = text.partition("*")
    method, _, value = text.partition(":")
    gain = float(gain or 1.0)
    if method == "regression":
        return "regression", default_temperature, 0.0, gain
    if method == "annealed":
        return "annealed", float(value or default_temperature), 1.0, gain
    share, _, temperature = (value or "0.5").partition("@")
    return "blend", float(temperature or default_temperature), float(share), gain


def name_of(decoding: tuple[str, float, float, float]) -> str:
    decode, temperature, blend, gain = decoding
    name = {"regression": "regression", "annealed": f"annealed:{temperature:g}",
            "blend": f"blend:{blend:g}@{temperature:g}"}[decode]
    return name if gain == 1.0 else f"{name}*{gain:g}"


def choose(summaries: dict[str, dict], vivid: float) -> tuple[str, str]:
    """(the chosen decoding's name, why) by the rule in this module's docstring."""
    ratio = {name: s["colorfulness"]["mean"] / s["colorfulness_gt"]["mean"] for name, s in summaries.items()}
    vivid_enough = [name for name in summaries if ratio[name] >= vivid]
    if vivid_enough:
        best = max(vivid_enough, key=lambda name: summaries[name]["psnr"]["mean"])
        return best, f"highest automatic PSNR among the {len(vivid_enough)} decodings at >= {vivid:g} x the truth's colourfulness"
    best = max(summaries, key=lambda name: ratio[name])
    return best, f"no decoding reaches {vivid:g} x the truth's colourfulness; the most colourful ({ratio[best]:.2f} x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="weights or checkpoint (default: the bundled model)")
    parser.add_argument("--data", nargs="+", default=DATA, help="folders or manifest.csv files (their val split)")
    parser.add_argument("--decodes", default=DECODINGS,
                        help="comma-separated: regression, blend:SHARE[@T], annealed:T, each with an optional *GAIN")
    parser.add_argument("--vivid", type=float, default=0.8, help="colourfulness bar, as a share of the truth's")
    parser.add_argument("--limit", type=int, default=None, help="first N photos of each source")
    parser.add_argument("--automatic-global", default=None, help="none or predicted (default: the model's own)")
    parser.add_argument("--histogram-temperature", type=float, default=None, help="of a predicted hint")
    parser.add_argument("--exclude-from-headline", default=",".join(FACE_CROP_SOURCES))
    parser.add_argument("--out", default="benchmarks/results/decoding_choice.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    colorizer = Colorizer.from_pretrained(args.model, automatic_global=args.automatic_global,
                                          histogram_temperature=args.histogram_temperature)
    if colorizer.model.distribution is None:
        parser.error("this model has no distribution head: it has one decoding only")
    try:
        decodings = [parse_decoding(text, colorizer.temperature) for text in args.decodes.split(",")]
        for decode, temperature, blend, gain in decodings:  # before the first photo, not after it
            check_decoding(decode, temperature, blend, True, gain)
    except (ValueError, CunetError) as error:
        parser.error(f"--decodes: {error}")
    names = [name_of(decoding) for decoding in decodings]
    paths, sources = evaluation_set(args.data, "val", args.limit)
    exclude = [name for name in args.exclude_from_headline.split(",") if name]
    scores = {name: {"psnr": [], "colorfulness": [], "colorfulness_gt": []} for name in ["gray", *names]}
    for path in tqdm(paths, desc="decodings", unit="photo"):
        rgb8 = load_eval_photo(path)
        lightness = _lab_of(rgb8)[:1]
        truth = colorfulness(rgb8)
        prepared = colorizer.prepare(_gray_rgb(lightness))
        outputs = [np.asarray(prepared.photo.rgb * 255).round().clip(0, 255).astype(np.uint8)]
        outputs += [np.asarray(colorizer.finish(prepared, ab)) for ab in colorizer.predict_ab_decodings(prepared, decodings)]
        for name, output in zip(["gray", *names], outputs):
            scores[name]["psnr"].append(float(psnr(output, rgb8)))
            scores[name]["colorfulness"].append(colorfulness(output))
            scores[name]["colorfulness_gt"].append(truth)
    summaries = {name: summarise_by_source(values, sources, exclude) for name, values in scores.items()}
    chosen, why = choose({name: summaries[name] for name in names}, args.vivid)
    gray = summaries["gray"]["psnr"]["mean"]
    print(f"{'decoding':<22}{'PSNR':>8}{'vs gray':>9}{'colourf.':>10}{'x truth':>9}")
    for name in names:
        s = summaries[name]
        print(f"{name:<22}{s['psnr']['mean']:>8.2f}{s['psnr']['mean'] - gray:>+9.2f}{s['colorfulness']['mean']:>10.1f}"
              f"{s['colorfulness']['mean'] / s['colorfulness_gt']['mean']:>9.2f}")
    print(f"chosen: {chosen} ({why})")
    text = json.dumps({"model": args.model or "bundled default", "data": args.data, "photos": len(paths),
                       "automatic_global": colorizer.automatic_global,
                       "histogram_temperature": colorizer.histogram_temperature,
                       "vivid": args.vivid, "chosen": chosen, "why": why, "decodings": summaries}, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
