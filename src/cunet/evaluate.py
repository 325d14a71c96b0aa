"""The evaluation protocol, the same-harness runner, reports and figure grids.

Protocol (one place, used by `cunet evaluate`, `cunet figure` and the benchmarks):
- each photo is resized to 256x256 with PIL's bicubic filter; its Lab is the ground truth;
- every method gets the same L* and only supplies a*b*;
- point hints are P x P patches (P = 5) whose positions come from numpy.random.default_rng(i), i the
  photo's index in sorted file order; each holds the patch's mean ground-truth a*b*. Sweeps are
  nested: the first 5 of 10 points are the 5-point set;
- the global hint is "none" or "gt": the ground truth's own histogram (an oracle, as in the paper's
  Table 10); the transfer baselines get the ground-truth photo itself as their reference then;
- photos are grouped by source (a manifest's `source` column, else their folder) and every figure is
  the headline: the macro average over the sources that are not face crops (`cunet.sources`), each
  weighing the same, with each source's own figures beside it and the macro over every source as
  `macro_all`: a pooled mean is carried by whichever source is largest, a macro with face crops by
  the face crops (~+8 dB where scenes gain +0.3).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps
from tqdm import tqdm

from cunet.baselines import gray_ab, levin_ab, reinhard_ab, welsh_ab
from cunet.color import denormalize_ab, join_lab, rgb_to_lab
from cunet.colorizer import Colorizer, working_pixel
from cunet.gamut import quantize_ab
from cunet.data import list_labelled_photos, manifest_has_splits
from cunet.errors import CunetError
from cunet.hints import PointHint, encode_point_hints, ground_truth_points
from cunet.io import load_photo, write_atomic
from cunet.metrics import ciede2000, colorfulness, psnr, ssim
from cunet.sources import FACE_CROP_SOURCES, headline_sources

EVAL_SIZE = 256
PATCH = 5
SUGGEST_TOP = 8
SUGGEST_POINTS = 10  # positions per photo at which suggestions are checked: the protocol's first 10 points
PAPER_TABLE_10 = [
    ("Predicted gray scale", "–", "22.82 ± 0.18"),
    ("Zhang et al.", "Automatic", "22.04 ± 0.11"),
    ("Larsson et al.", "Automatic", "24.93 ± 0.14"),
    ("Iizuka et al.", "Automatic", "23.69 ± 0.13"),
    ("Ours (local)", "Automatic", "23.43 ± 0.14"),
    ("Ours (global)", "+ global histogram", "25.86 ± 0.14"),
    ("Ours (local)", "+ global histogram", "27.73 ± 0.14"),
]


def load_eval_photo(path: Path, size: int | None = EVAL_SIZE, crop: bool = False) -> np.ndarray:
    """A photo as the protocol sees it: uint8 RGB, size x size, PIL bicubic (squashed, as the protocol
    says; `crop` takes the central square instead, for figures that people look at); size None: the
    photo at its stored size (the full-resolution run, which up-samples the network's colour more)."""
    rgb = load_photo(path).rgb
    image = Image.fromarray(np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8))
    if size is None:
        return np.asarray(image)
    if crop:
        return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC))
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))


def protocol_points(ab: torch.Tensor, count: int, index: int, patch: int = PATCH) -> list[PointHint]:
    """The protocol's `count` ground-truth points for the photo with sorted index `index`."""
    return ground_truth_points(ab, [patch] * count, np.random.default_rng(index))


def _to_uint8(lightness: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    colour = join_lab(lightness, ab.float())
    return np.clip(np.rint(colour.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


def _lab_of(rgb8: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1).float() / 255.0)


def _run_cunet(harness: Harness, lightness, points, reference8, histogram) -> np.ndarray:
    if harness.colorizer is None:
        raise CunetError("method cunet needs a model")
    if histogram is None and reference8 is not None:
        histogram = harness.colorizer.histogram_of(reference8)
    return np.array(harness.colorizer.colorize(_gray_rgb(lightness), points=points, histogram=histogram))


def _run_gray(harness: Harness, lightness, points, reference8, histogram) -> np.ndarray:
    return _to_uint8(lightness, torch.from_numpy(gray_ab(lightness[0].double().numpy())).permute(2, 0, 1))


def _run_levin(harness: Harness, lightness, points, reference8, histogram) -> np.ndarray:
    l_np = lightness[0].double().numpy()
    maps = encode_point_hints(points, *l_np.shape)
    hint_ab = denormalize_ab(maps[:2]).permute(1, 2, 0).double().numpy()
    return _to_uint8(lightness, torch.from_numpy(levin_ab(l_np, hint_ab, maps[2].numpy() > 0)).permute(2, 0, 1))


def _transfer(function):
    def run(harness: Harness, lightness, points, reference8, histogram) -> np.ndarray:
        reference_lab = _lab_of(reference8).permute(1, 2, 0).double().numpy()
        ab = function(lightness[0].double().numpy(), reference_lab)
        return _to_uint8(lightness, torch.from_numpy(ab).permute(2, 0, 1))
    return run


@dataclass(frozen=True)
class Method:
    """One row of the method table: which hints it takes and how it colours L* (1, H, W) -> uint8 RGB."""

    uses_points: bool
    takes_histogram: bool  # a global a*b* histogram (cunet): every global setting applies
    needs_reference: bool  # a colour photo to copy from (transfer baselines): only settings that give one
    run: Callable[..., np.ndarray]


#: Adding a method is one entry here.
METHODS: dict[str, Method] = {
    "cunet": Method(True, True, False, _run_cunet),
    "gray": Method(False, False, False, _run_gray),
    "reinhard": Method(False, False, True, _transfer(reinhard_ab)),
    "welsh": Method(False, False, True, _transfer(welsh_ab)),
    "levin": Method(True, False, False, _run_levin),
}


@dataclass
class Context:
    """What global settings draw on: the model, the gallery and the number of variants."""

    colorizer: Colorizer | None
    gallery: object | None = None
    variants: int = 4

    def matches(self, rgb8: np.ndarray, lightness: torch.Tensor, k: int) -> list[int]:
        if self.colorizer is None:
            raise CunetError("gallery settings need a model")
        if self.gallery is None:
            from cunet.gallery import bundled_gallery

            self.gallery = bundled_gallery()
        return self.colorizer.match_references(_gray_rgb(lightness), k, self.gallery)

    def predicted_histogram(self, lightness: torch.Tensor) -> torch.Tensor:
        if self.colorizer is None:
            raise CunetError("the predicted setting needs a model")
        return self.colorizer.predicted_histogram(_gray_rgb(lightness))


@dataclass(frozen=True)
class GlobalSetting:
    """One row of the global-setting table: the (histogram, reference photo) pairs a photo gets —
    several pairs mean several outputs, of which the best by PSNR is scored (an oracle pick)."""

    description: str
    gives_reference: bool
    only_without_points: bool
    hints: Callable[[Context, np.ndarray, torch.Tensor], list[tuple[torch.Tensor | None, np.ndarray | None]]]


#: Adding a global setting is one entry here.
GLOBALS: dict[str, GlobalSetting] = {
    "none": GlobalSetting("no global hint (automatic)", False, False, lambda context, rgb8, lightness: [(None, None)]),
    "gt": GlobalSetting("the ground truth's own histogram (an oracle); transfer baselines copy from the ground truth",
                        True, False, lambda context, rgb8, lightness: [(None, rgb8)]),
    "retrieved": GlobalSetting(
        "the histogram of the nearest gallery photo to the gray photo (eq. 24; no ground truth used)", False, True,
        lambda context, rgb8, lightness: [(context.gallery.histograms[i], None)
                                          for i in context.matches(rgb8, lightness, 1)]),
    "predicted": GlobalSetting(
        "the photo's own histogram as the model's histogram head predicts it from the gray photo (no ground truth used)",
        False, False, lambda context, rgb8, lightness: [(context.predicted_histogram(lightness), None)]),
    "variants": GlobalSetting(
        "best of K gallery variants by PSNR (an oracle pick among K plausible colourings)", False, True,
        lambda context, rgb8, lightness: [(context.gallery.histograms[i], None)
                                          for i in context.matches(rgb8, lightness, context.variants)]),
}


def _metric_colorfulness(output: np.ndarray, truth: np.ndarray) -> float:
    return colorfulness(output)


#: Adding a metric is one entry here: (output uint8, ground truth uint8) -> float.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "psnr": lambda output, truth: float(psnr(output, truth)),
    "ssim": ssim,
    "ciede2000": ciede2000,
    "colorfulness": _metric_colorfulness,
}

#: The result every other one's `psnr_gain` is paired against: cunet's automatic colouring.
AUTOMATIC = ("cunet", 0, "none")


def _gray_rgb(lightness: torch.Tensor) -> np.ndarray:
    return np.array(join_lab(lightness, torch.zeros(2, *lightness.shape[-2:])).permute(1, 2, 0).numpy())


@dataclass
class Harness:
    """Runs every method with identical inputs: the same L*, the same points, the same global hint."""

    colorizer: Colorizer | None

    def run(
        self, method: str, lightness: torch.Tensor, points: list[PointHint], reference8: np.ndarray | None,
        histogram: torch.Tensor | None = None,
    ) -> np.ndarray:
        """One method's colouring of L* (1, H, W) as uint8 RGB (H, W, 3).

        `reference8` is a colour photo: the transfer baselines copy from it and cunet takes its
        histogram as the global hint unless `histogram` is given; None means no global hint.
        """
        if method not in METHODS:
            raise CunetError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if METHODS[method].needs_reference and reference8 is None:
            raise CunetError(f"method {method} needs a reference photo")
        return METHODS[method].run(self, lightness, points, reference8, histogram)


def settings_for(method: str, points: list[int], globals_: list[str]) -> list[tuple[int, str]]:
    """The (points, global) settings a method is evaluated at: only the hints it can use."""
    spec = METHODS[method]
    counts = points if spec.uses_points else [0]
    settings = []
    for name in globals_:
        setting = GLOBALS[name]
        if spec.needs_reference:
            if setting.gives_reference:
                settings.append((0, name))
        elif spec.takes_histogram or name == "none":
            settings += [(n, name) for n in (counts if not setting.only_without_points else [0])]
    return settings


def mean_pairwise_ab_distance(outputs: list[np.ndarray]) -> float:
    """Mean over pairs of outputs of their mean per-pixel a*b* distance: how different variants look."""
    ab = [_lab_of(output)[1:] for output in outputs]
    pairs = [(i, j) for i in range(len(ab)) for j in range(i + 1, len(ab))]
    return float(np.mean([torch.linalg.vector_norm(ab[i] - ab[j], dim=0).mean() for i, j in pairs])) if pairs else 0.0


def _summary(values: np.ndarray) -> dict[str, float]:
    sem = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "sem": sem}


def _macro(by_source: dict, names: list[str], metric: str) -> dict[str, float]:
    """Macro {mean, sem} of `metric` over `names`: every source weighs the same; the standard error
    combines the sources' (sqrt of the summed squares, over the number of sources)."""
    means = [by_source[name][metric]["mean"] for name in names]
    sems = [by_source[name][metric]["sem"] for name in names]
    return {"mean": float(np.mean(means)), "sem": float(np.sqrt(np.sum(np.square(sems))) / len(names))}


def summarise_by_source(
    per_photo: dict[str, list[float]], sources: list[str], exclude_from_headline=FACE_CROP_SOURCES,
) -> dict:
    """Per-photo metric lists -> {metric: headline {mean, sem}, macro_all: {metric: {mean, sem}},
    by_source: {source: {n, metric: {mean, sem}}}, pooled: {metric: {mean, sem}}}. The headline is
    the macro over the sources not in `exclude_from_headline` (all of them if that leaves none);
    `macro_all` is the macro over every source."""
    labels = np.asarray(sources)
    names = sorted(set(sources))
    headline = headline_sources(names, exclude_from_headline)
    by_source = {}
    for name in names:
        chosen = labels == name
        by_source[name] = {"n": int(chosen.sum())}
        by_source[name].update({m: _summary(np.asarray(v, dtype=np.float64)[chosen]) for m, v in per_photo.items()})
    summary: dict = {metric: _macro(by_source, headline, metric) for metric in per_photo}
    summary["macro_all"] = {metric: _macro(by_source, names, metric) for metric in per_photo}
    summary["by_source"] = by_source
    summary["pooled"] = {m: _summary(np.asarray(v, dtype=np.float64)) for m, v in per_photo.items()}
    return summary


def restate_headline(report: dict, exclude_from_headline=FACE_CROP_SOURCES) -> dict:
    """A stored report with its figures restated as the headline over the sources not in
    `exclude_from_headline`, from each result's per-source means (reports from before the headline
    averaged every source). `psnr_gain` and suggestion rates keep no per-source figures and are dropped."""
    headline = headline_sources(report["sources"], exclude_from_headline)
    restated = {**report, "headline_sources": headline,
                "excluded_from_headline": [name for name in report["sources"] if name not in headline]}
    restated.pop("suggestions", None)
    results = []
    for result in report["results"]:
        metrics = [key for key, value in result["by_source"][headline[0]].items() if isinstance(value, dict)]
        names = sorted(result["by_source"])
        changed = {key: value for key, value in result.items() if key != "psnr_gain"}
        changed.update({metric: _macro(result["by_source"], headline, metric) for metric in metrics})
        changed["macro_all"] = {metric: _macro(result["by_source"], names, metric) for metric in metrics}
        results.append(changed)
    restated["results"] = results
    return restated


def evaluate(
    paths: list[Path], methods: list[str], points: list[int], globals_: list[str], colorizer: Colorizer | None,
    progress: bool = True, sources: list[str] | None = None, gallery=None, variants: int = 4,
    suggest_top: int = 0, exclude_from_headline=FACE_CROP_SOURCES, photo_size: int | None = EVAL_SIZE,
) -> dict:
    """Run the protocol over `paths` (in the given order: index i seeds photo i's points), each photo
    resized to `photo_size` squared (None: at its stored size).

    `sources` names each photo's source (default: all one source). Returns the report: `results` is a
    list of {method, points, global, n, psnr, ssim, ciede2000, colorfulness, colorfulness_gt, by_source,
    pooled}, each metric as {mean, sem}, its headline the macro over the sources not in
    `exclude_from_headline` (face crops; `macro_all` has every source); plus the protocol and timings.
    Every result but cunet's automatic colouring also gets `psnr_gain`: its per-photo PSNR minus the
    automatic colouring's on the same photo, macro {mean, sem} — the paired standard error, far smaller
    than the two means' own, which mostly measure how photos differ. The "variants" setting adds
    `variant_distance`; `suggest_top` > 0 adds `suggestions`: how often the ground-truth bin of each
    of the first SUGGEST_POINTS protocol patches is among the top suggestions.
    """
    sources = list(sources) if sources is not None else ["all"] * len(paths)
    if len(sources) != len(paths):
        raise CunetError("give one source name per photo")
    for method in methods:
        if method not in METHODS:
            raise CunetError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    for setting in globals_:
        if setting not in GLOBALS:
            raise CunetError(f"unknown global setting {setting!r}; choose from {', '.join(GLOBALS)}")
    if any(n < 0 for n in points):
        raise CunetError("point counts must be >= 0")
    if not 1 <= variants <= 64:
        raise CunetError("variants must lie in 1..64")
    harness = Harness(colorizer)
    context = Context(colorizer, gallery, variants)
    hits: list[float] = []
    suggestion_source = None
    scores: dict[tuple[str, int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seconds: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    for index, path in enumerate(tqdm(paths, desc="evaluating", unit="photo", disable=not progress)):
        rgb8 = load_eval_photo(path, photo_size)
        lab = _lab_of(rgb8)
        truth_colorfulness = colorfulness(rgb8)
        global_hints: dict[str, list] = {}
        for method in methods:
            for count, setting in settings_for(method, points, globals_):
                clock = time.perf_counter()
                if setting not in global_hints:
                    global_hints[setting] = GLOBALS[setting].hints(context, rgb8, lab[:1])
                given = protocol_points(lab[1:], count, index)
                outputs = [harness.run(method, lab[:1], given, reference, histogram)
                           for histogram, reference in global_hints[setting]]
                seconds[method] += time.perf_counter() - clock
                values = [{name: metric(output, rgb8) for name, metric in METRICS.items()} for output in outputs]
                best = max(range(len(outputs)), key=lambda i: values[i]["psnr"])
                entry = scores[(method, count, setting)]
                for name, value in values[best].items():
                    entry[name].append(value)
                entry["colorfulness_gt"].append(truth_colorfulness)
                if len(outputs) > 1:
                    entry["variant_distance"].append(mean_pairwise_ab_distance(outputs))
        if suggest_top and colorizer is not None:
            hit, suggestion_source = suggestion_hits(colorizer, lab, index, suggest_top, context)
            hits.append(hit)
    results = []
    automatic = scores.get(AUTOMATIC)
    for key, entry in scores.items():
        method, count, setting = key
        result = {"method": method, "points": count, "global": setting, "n": len(entry["psnr"])}
        result.update(summarise_by_source(entry, sources, exclude_from_headline))
        if automatic is not None and key != AUTOMATIC:  # every setting ran on every photo: pairs line up
            gains = np.subtract(entry["psnr"], automatic["psnr"])
            result["psnr_gain"] = summarise_by_source({"psnr": gains}, sources, exclude_from_headline)["psnr"]
        results.append(result)
    counts = {name: sources.count(name) for name in sorted(set(sources))}
    headline = headline_sources(counts, exclude_from_headline)
    left_out = [name for name in counts if name not in headline]
    if len(counts) == 1:
        average = "mean over photos"
    elif left_out:
        average = f"macro over {len(headline)} sources, face crops ({', '.join(left_out)}) reported beside it"
    else:
        average = f"macro over {len(headline)} sources"
    extra = {}
    if hits:
        extra["suggestions"] = {"top": suggest_top, "positions": SUGGEST_POINTS, "source": suggestion_source,
                                **summarise_by_source({"hit_rate": hits}, sources, exclude_from_headline)}
    return {
        "protocol": {"size": photo_size or "stored", "resize": "PIL bicubic" if photo_size else "none",
                     "working_size": colorizer.working_size if colorizer is not None else None,
                     "upsample": colorizer.upsample if colorizer is not None else None,
                     "point_fill": colorizer.point_fill if colorizer is not None else None,
                     "fill_settings": asdict(colorizer.fill_settings) if colorizer is not None else None,
                     "hints_lead": colorizer.hints_lead if colorizer is not None else None,
                     "hints_for_full_way": colorizer.hints_for_full_way if colorizer is not None else None,
                     "patch": PATCH, "points_rng": "default_rng(index)",
                     "globals": {name: GLOBALS[name].description for name in globals_},
                     "variants": variants if "variants" in globals_ else None},
        "photos": len(paths),
        "sources": counts,
        "headline_sources": headline,
        "excluded_from_headline": left_out,
        "average": average,
        "methods": methods,
        "points": points,
        "globals": globals_,
        "seconds": {"total": round(time.perf_counter() - started, 1), **{m: round(s, 1) for m, s in seconds.items()}},
        "results": results,
        **extra,
    }


def suggestion_hits(
    colorizer: Colorizer, lab: torch.Tensor, index: int, top: int, context: Context,
) -> tuple[float, str]:
    """The share of the photo's first SUGGEST_POINTS protocol patches whose ground-truth bin (of the
    patch's mean a*b*) is among the `top` suggestions at the patch centre, given no hints."""
    prepared = colorizer.prepare(_gray_rgb(lab[:1]))
    probabilities, source = colorizer.colour_probabilities(prepared, gallery=context.gallery)
    patches = protocol_points(lab[1:], SUGGEST_POINTS, index)
    hits = 0
    for patch in patches:
        row, column = working_pixel(probabilities.shape[-2:], prepared.size, patch.x, patch.y)
        chosen = torch.topk(probabilities[:, row, column], top).indices
        truth = quantize_ab(torch.tensor([patch.a, patch.b]).view(2, 1, 1)).item()
        hits += int(truth in chosen.tolist())
    return hits / len(patches), source


def _find(results: list[dict], method: str, points: int, setting: str) -> dict | None:
    return next((r for r in results if (r["method"], r["points"], r["global"]) == (method, points, setting)), None)


def _cell(result: dict | None, metric: str, digits: int = 2) -> str:
    if result is None:
        return "–"
    return f"{result[metric]['mean']:.{digits}f} ± {result[metric]['sem']:.{digits}f}"


def _all(result: dict, metric: str) -> float:
    """The macro over every source (reports from before the headline left face crops out: the macro)."""
    return result.get("macro_all", result)[metric]["mean"]


def markdown_report(report: dict) -> str:
    """report.md: the Table-10-shaped summary, every result, and the paper's own Table 10."""
    results = report["results"]
    local = 10 if 10 in report["points"] else max(report["points"])
    size = report["protocol"]["size"]
    shown = f"{size}×{size}" if isinstance(size, int) else "at their stored size"
    extra = ", ".join(f"{key} {report['protocol'][key]}" for key in ("working_size", "upsample")
                      if report["protocol"].get(key) is not None)
    lines = [f"# cunet evaluation — {report['photos']} photos, {shown}" + (f" ({extra})" if extra else ""), ""]
    lines += ["## Table 10, our photos", "", "| method | control | PSNR (dB) | SSIM | ΔE00 | colourfulness |",
              "|---|---|---|---|---|---|"]
    rows = [("Predicted gray", "–", ("gray", 0, "none")), ("cunet", "automatic", ("cunet", 0, "none")),
            ("cunet", "+ global histogram", ("cunet", 0, "gt")),
            ("cunet", "+ retrieved histogram (gallery top-1)", ("cunet", 0, "retrieved")),
            ("cunet", "+ predicted histogram (histogram head)", ("cunet", 0, "predicted")),
            ("cunet", f"best of {report['protocol'].get('variants')} gallery variants (oracle pick)",
             ("cunet", 0, "variants")),
            ("cunet", f"{local} points + global histogram", ("cunet", local, "gt")),
            ("cunet", f"{local} points", ("cunet", local, "none")),
            ("Levin et al.", f"{local} points", ("levin", local, "none")),
            ("Reinhard et al.", "ground-truth reference", ("reinhard", 0, "gt")),
            ("Welsh et al.", "ground-truth reference", ("welsh", 0, "gt"))]
    for name, control, key in rows:
        result = _find(results, *key)
        if result is not None:
            lines.append(f"| {name} | {control} | {_cell(result, 'psnr')} | {_cell(result, 'ssim', 3)} | "
                         f"{_cell(result, 'ciede2000')} | {_cell(result, 'colorfulness', 1)} |")
    truth = results[0]["colorfulness_gt"] if results else None
    if truth:
        lines += ["", f"Ground-truth colourfulness: {truth['mean']:.1f} ± {truth['sem']:.1f}."]
    variants = _find(results, "cunet", 0, "variants")
    if variants is not None:
        lines += ["", f"The {report['protocol']['variants']} variants differ by {_cell(variants, 'variant_distance', 1)} "
                  "a*b* units per pixel (mean over pairs)."]
    if "suggestions" in report:
        hit = report["suggestions"]
        lines += ["", f"Suggestions (from the {hit['source']}): the ground-truth bin of a 5×5 patch is among the top "
                  f"{hit['top']} in {100 * hit['hit_rate']['mean']:.1f} ± {100 * hit['hit_rate']['sem']:.1f} % of "
                  f"{hit['positions']} patches per photo."]
    sources = report.get("sources", {})
    if len(sources) > 1:
        headline = report.get("headline_sources", list(sources))
        left_out = [name for name in sources if name not in headline]
        lines += ["", f"Every figure above is the headline: the macro average over {len(headline)} sources "
                  f"({', '.join(headline)}; each weighs the same)"
                  + (f", leaving out the face crops ({', '.join(left_out)}), which are in their own column below."
                     if left_out else "."),
                  "", "## By source (PSNR, dB; colourfulness)", "",
                  "| setting | " + " | ".join(f"{name} ({n})" for name, n in sources.items())
                  + " | headline | macro, all sources | pooled |",
                  "|---|" + "---|" * (len(sources) + 3)]
        seen = set()
        for name, control, key in rows + [("cunet", "50 points", ("cunet", 50, "none")),
                                          ("Levin et al.", "50 points", ("levin", 50, "none"))]:
            result = _find(results, *key)
            if result is None or key in seen:
                continue
            seen.add(key)
            cells = [f"{result['by_source'][source]['psnr']['mean']:.2f}" for source in sources]
            lines.append(f"| {name}, {control} | " + " | ".join(cells)
                         + f" | **{result['psnr']['mean']:.2f}** | {_all(result, 'psnr'):.2f} | "
                         f"{result['pooled']['psnr']['mean']:.2f} |")
        automatic = _find(results, "cunet", 0, "none")
        if automatic is not None:
            for metric, label in (("colorfulness", "colourfulness, cunet automatic"),
                                  ("colorfulness_gt", "colourfulness, ground truth")):
                cells = [f"{automatic['by_source'][source][metric]['mean']:.1f}" for source in sources]
                lines.append(f"| {label} | " + " | ".join(cells) + f" | **{automatic[metric]['mean']:.1f}** | "
                             f"{_all(automatic, metric):.1f} | {automatic['pooled'][metric]['mean']:.1f} |")
    lines += ["", "## Every result", "", "| method | global | points | n | PSNR (dB) | SSIM | ΔE00 | colourfulness |",
              "|---|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["method"], r["global"], r["points"])):
        lines.append(f"| {r['method']} | {r['global']} | {r['points']} | {r['n']} | {_cell(r, 'psnr')} | "
                     f"{_cell(r, 'ssim', 3)} | {_cell(r, 'ciede2000')} | {_cell(r, 'colorfulness', 1)} |")
    lines += ["", "## The paper's Table 10 (different photos: ImageNet people, not ours)", "",
              "| method | control | PSNR (dB) |", "|---|---|---|"]
    lines += [f"| {m} | {c} | {p} |" for m, c, p in PAPER_TABLE_10]
    lines += ["", f"Time: {report['seconds']['total']:.0f} s in all; per method: "
              + ", ".join(f"{m} {s:.0f} s" for m, s in report["seconds"].items() if m != "total") + "."]
    return "\n".join(lines) + "\n"


def plot_psnr_against_points(report: dict, out: Path) -> None:
    """PSNR against the number of points, one line per method and global setting (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for result in report["results"]:
        groups[(result["method"], result["global"])].append(result)
    colours = plt.get_cmap("tab10").colors
    for number, ((method, setting), group) in enumerate(sorted(groups.items())):
        group.sort(key=lambda r: r["points"])
        hint = "gt histogram" if method == "cunet" else "gt reference"
        label = method if setting == "none" else f"{method} ({hint})"
        means = [r["psnr"]["mean"] for r in group]
        colour = colours[number % len(colours)]
        if len(group) == 1:  # a method that takes no points: a level line across the sweep
            axis.axhline(means[0], ls="--", lw=1.2, label=label, color=colour)
        else:
            axis.errorbar([r["points"] for r in group], means, yerr=[r["psnr"]["sem"] for r in group], marker="o",
                          capsize=3, label=label, color=colour)
    axis.set(xlabel="number of points (5×5 patches)", ylabel="PSNR (dB)", title=f"{report['photos']} photos, 256×256")
    if max(report["points"]) > 0:
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlim(0, max(report["points"]) * 1.15)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    write_atomic(out, lambda handle: figure.savefig(handle, format="png", dpi=110))
    plt.close(figure)


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    write_atomic(out_dir / "report.json", lambda handle: handle.write(text.encode()))
    markdown = markdown_report(report)
    write_atomic(out_dir / "report.md", lambda handle: handle.write(markdown.encode()))
    plot_psnr_against_points(report, out_dir / "psnr_vs_points.png")


def evaluation_set(
    data: str | Path | list[str | Path], split: str | None = "val", limit: int | None = None, by_source: bool = True
) -> tuple[list[Path], list[str]]:
    """Photos to evaluate and their sources: each data source's photos (its `split`, where it has
    one) in sorted file order, the data sources in the order given; the position in this list is
    the protocol's index i. `limit` keeps the first N of each source (of all, without `by_source`).
    """
    photos: list[tuple[Path, str]] = []
    for source in [data] if isinstance(data, (str, Path)) else data:
        labelled = sorted(list_labelled_photos(source, split if manifest_has_splits(source) else None))
        if not labelled:
            raise CunetError(f"{source}: no photos to evaluate")
        photos += labelled
    if not by_source:
        photos = [(path, "all") for path, _ in photos]
    if limit:
        taken: dict[str, int] = defaultdict(int)
        kept = []
        for path, label in photos:
            if taken[label] < limit:
                taken[label] += 1
                kept.append((path, label))
        photos = kept
    return [path for path, _ in photos], [label for _, label in photos]


def figure_grid(
    paths: list[Path], methods: list[str], colorizer: Colorizer | None, points: int = 0,
    ground_truth: bool = True, reference: Path | None = None, height: int = 192,
) -> Image.Image:
    """Figures 13-14 of the paper: gray input | each method | ground truth, one row per photo.

    With `ground_truth` False (real black-and-white photos) there is no ground-truth column, no
    points can be taken from it, and the transfer baselines need `reference`.
    """
    harness = Harness(colorizer)
    labels = ["input"] + methods + (["ground truth"] if ground_truth else [])
    reference8 = load_eval_photo(reference, crop=True) if reference is not None else None
    rows = []
    for index, path in enumerate(paths):
        rgb8 = load_eval_photo(path, crop=True)
        lab = _lab_of(rgb8)
        hints = protocol_points(lab[1:], points, index) if ground_truth else []
        cells = [harness.run("gray", lab[:1], [], None)]
        for method in methods:
            needs_reference = METHODS[method].needs_reference
            if needs_reference and reference8 is None and not ground_truth:
                raise CunetError(f"method {method} needs --reference for photos without ground truth")
            # With ground truth and no reference given, the transfer baselines get the oracle reference.
            method_reference = reference8 if reference8 is not None else (rgb8 if needs_reference else None)
            cells.append(harness.run(method, lab[:1], hints, method_reference))
        if ground_truth:
            cells.append(rgb8)
        rows.append(cells)
    return _grid(labels, rows, height)


def variants_grid(
    paths: list[Path], colorizer: Colorizer, k: int, gallery=None, ground_truth: bool = True, height: int = 192,
) -> Image.Image:
    """The paper's Figs 13-14 for diversity: gray input | k variants from the gallery | ground truth."""
    labels = ["input"] + [f"variant {i + 1}" for i in range(k)] + (["ground truth"] if ground_truth else [])
    rows = []
    for path in paths:
        rgb8 = load_eval_photo(path, crop=True)
        lab = _lab_of(rgb8)
        cells = [_to_uint8(lab[:1], torch.zeros(2, *lab.shape[-2:]))]
        cells += [np.asarray(image) for _, image in colorizer.variants(_gray_rgb(lab[:1]), k, gallery)]
        cells += [np.zeros_like(rgb8)] * (1 + k - len(cells))
        if ground_truth:
            cells.append(rgb8)
        rows.append(cells)
    return _grid(labels, rows, height)


def _grid(labels: list[str], rows: list[list[np.ndarray]], height: int) -> Image.Image:
    canvas = Image.new("RGB", (len(labels) * (height + 6) + 6, len(rows) * (height + 6) + 28), "white")
    draw = ImageDraw.Draw(canvas)
    for column, label in enumerate(labels):
        draw.text((6 + column * (height + 6), 8), label, fill="black")
    for row, cells in enumerate(rows):
        for column, image in enumerate(cells):
            tile = Image.fromarray(image).resize((height, height), Image.Resampling.LANCZOS)
            canvas.paste(tile, (6 + column * (height + 6), 28 + row * (height + 6)))
    return canvas
