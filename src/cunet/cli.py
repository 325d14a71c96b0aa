"""The `cunet` command line: colorize photos, train and export models.

Bad input never produces a traceback: it is one line on stderr and exit code 2.
"""

from __future__ import annotations

import glob
import json
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from cunet.allocator import keep_freed_memory
from cunet.errors import CunetError
from cunet.fields import shorten
from cunet.io import IMAGE_SUFFIXES, check_output_suffix, prepare_output_folder
from cunet.sources import FACE_CROP_SOURCES
from cunet.train_config import TrainConfig

def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"cunet {version('cunet')}")
        raise typer.Exit()


app = typer.Typer(
    name="cunet",
    help="Bring colour to black-and-white photos of people (CU-net, Wang et al. 2022).\n\n"
    "Start with:  cunet colorize old-photo.jpg -o colour.png",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Bring colour to black-and-white photos of people (CU-net, Wang et al. 2022).

    Start with:  cunet colorize old-photo.jpg -o colour.png
    """


def _with_default(text: str, default) -> str:
    """Help text ending in the default, as typer shows its own ("\\[" keeps rich from reading it as markup)."""
    return f"{text} \\[default: {default}]"


def _stored_or(text: str, fallback: str) -> str:
    """`export`'s help for a choice a weights file may have stored."""
    return _with_default(text, f"a weights file's stored choice; for a checkpoint {fallback}")


#: What `colorize` names its outputs beside an input: NAME_color.png, NAME_color_frame2.png, NAME_v1.png.
_OUTPUT_NAME = re.compile(r"^(?P<base>.+?)(?:_color|_v\d+)(?:_frame\d+)?$")


def earlier_outputs(found: list[Path]) -> set[Path]:
    """The files of a folder listing that an earlier `cunet colorize` wrote there: NAME_color.*,
    NAME_vK.* (and their _frameN) when a NAME.* lies beside them (a lone rose_color.jpg is a photo)."""
    stems = {path.stem for path in found}
    return {path for path in found if (match := _OUTPUT_NAME.match(path.stem)) and match["base"] in stems}


def expand_inputs(inputs: list[str], skip_outputs: bool = False, note=None) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in the given order.

    With `skip_outputs`, a folder's or pattern's earlier outputs (`earlier_outputs`) are left out, with
    a `note`: a re-run refreshes them instead of colouring them again. A file named on its own is kept."""
    paths: list[Path] = []
    skipped = 0
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.exists():
            paths.append(path)
            continue
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise CunetError(f"{path}: no such file")
        outputs = earlier_outputs(found) if skip_outputs else set()
        if not found:
            raise CunetError(f"{path}: folder holds no images" if path.is_dir() else f"{item}: pattern matches no images")
        skipped += len(outputs)
        paths += [p for p in found if p not in outputs]
    if skipped and note is not None:
        note(f"note: skipping {skipped} earlier output{'s' if skipped > 1 else ''} of cunet colorize among the "
             "inputs (NAME_color.*, NAME_vK.* beside a NAME.*)")
    return paths


OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif", "tiff": ".tif"}


def output_paths(inputs: list[Path], out: Path | None, out_dir: Path | None, output_format: str = "png") -> list[Path]:
    if output_format.lower() not in OUTPUT_FORMATS:
        raise CunetError(f"--format {shorten(output_format)}: use png, jpg, webp or tif")
    suffix = OUTPUT_FORMATS[output_format.lower()]
    if out is not None and out_dir is not None:
        raise CunetError("give either -o/--out or --out-dir, not both")
    if out is not None:
        if out.is_dir():
            raise CunetError(f"{out}: is a folder; use --out-dir {out} to colour into it")
        if len(inputs) != 1:
            raise CunetError(f"-o/--out takes one input, got {len(inputs)}; use --out-dir for several")
        targets = [out]
    elif out_dir is not None:
        targets = [out_dir / f"{p.stem}{suffix}" for p in inputs]
        if len(set(targets)) != len(targets):
            raise CunetError("two inputs share a file name; colour them into different folders")
    else:
        targets = [p.with_name(f"{p.stem}_color{suffix}") for p in inputs]
    sources = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in sources:
            raise CunetError(f"{target}: would overwrite an input photo; choose another output")
        check_output_suffix(target)
    for folder in sorted({target.parent for target in targets}):
        prepare_output_folder(folder)
    return targets


def frame_target(target: Path, frame: int) -> Path:
    """Where frame `frame` (0-based) of a multi-frame input goes with --all-frames: NAME_frame1.png, ..."""
    return target.with_name(f"{target.stem}_frame{frame + 1}{target.suffix}")


COLORIZE_EPILOG = (
    "Colour points (--points): 'x,y,#rrggbb[,size]' separated by ';', in the input's pixels "
    "(x from the left, y from the top); size is the square patch side, a whole number from 1 to 9 "
    "(default 3). Example: --points '120,80,#c08060,5;40,200,#2050a0'.\n\n"
    "Hints file (--hints, JSON): {\"points\": [{\"x\": 120, \"y\": 80, \"color\": \"#c08060\", "
    "\"size\": 5}], \"saturation\": 0.3, \"reference\": \"holiday.jpg\"}; every key is optional; "
    "saturation is a number in [0, 1]; reference is a colour photo (relative to the hints file) "
    "whose colours guide the result; \"histogram\" may give the 261 a*b* bin weights directly."
)



COLORIZE_HELP = (
    "Colour black-and-white photos. Without -o/--out-dir, writes NAME_color.png beside each input.\n\n"
    "Re-running refreshes the outputs: existing output files are replaced, and a folder's earlier outputs "
    "(NAME_color.*, and NAME_vK.* beside a NAME.*) are not coloured again. Ctrl+C stops after the photos "
    "being written, each complete, and says how many are done."
)


@app.command(epilog=COLORIZE_EPILOG, help=COLORIZE_HELP)
def colorize(
    inputs: Annotated[list[str], typer.Argument(help="Photos, folders or glob patterns ('scans/*.tif').", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (one input only); its folder is created.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        help=_with_default("Output folder (created if missing); files keep their names, with the --format type.",
                           "beside each input, as NAME_color.png"))] = None,
    points: Annotated[Optional[str], typer.Option(help=_with_default("Colour points 'x,y,#rrggbb[,size];...' in input pixels (see below).", "none: automatic"))] = None,
    hints: Annotated[Optional[Path], typer.Option(help=_with_default("JSON file with points, saturation and/or reference (see below).", "none"))] = None,
    reference: Annotated[Optional[Path], typer.Option(help=_with_default("A colour photo whose colours guide the result.", "none"))] = None,
    size: Annotated[Optional[int], typer.Option(
        help=_with_default("Working size (short side, 16 to 1024 px).", "the model's training scale"))] = None,
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    decode: Annotated[Optional[str], typer.Option(
        help=_with_default("regression (safe average), annealed (vivid, from the colour distribution) or blend.",
                           "the model's measured choice"))] = None,
    chroma_gain: Annotated[Optional[float], typer.Option(help=_with_default(
        "Colour strength: the network's a*b* times this (above 1 more vivid, below 1 more muted; up to 3). "
        "Points keep their exact colour.", "the model's measured choice"))] = None,
    global_: Annotated[Optional[str], typer.Option("--global", help=_with_default(
        "Global hint without a reference or histogram: none, or predicted (the photo's own histogram as the "
        "model's histogram head predicts it).", "the model's measured choice"))] = None,
    all_frames: Annotated[bool, typer.Option(
        "--all-frames", help="Colour every frame of animated GIFs and multi-page TIFFs (NAME_frame1.png, ...); "
        "otherwise the first, with a note.")] = False,
    variants: Annotated[int, typer.Option(
        help="Write K different colourings NAME_v1.png ... NAME_vK.png, from the K nearest distinct gallery "
        "photos' colour histograms (0 = one colouring).")] = 0,
    gallery: Annotated[Optional[Path], typer.Option(help=_with_default("Gallery file for --variants (cunet gallery build).",
                                                                       "the bundled gallery"))] = None,
    format_: Annotated[Optional[str], typer.Option("--format", help=_with_default(
        "Output type for --out-dir and NAME_color files: png (lossless), jpg, webp or tif; -o takes its name's type.",
        "png"))] = None,
    quality: Annotated[Optional[int], typer.Option(help=_with_default("JPEG/WebP quality, 1-100.", "95"))] = None,
    backend: Annotated[str, typer.Option(help=(
        "How the network runs: auto (channels-last, the fastest exact one measured here), eager, "
        "channels-last, onnx (ONNX Runtime), compile (torch.compile), bf16 (faster, not exact)."))] = "auto",
    upsample: Annotated[str, typer.Option(help=(
        "How the colour reaches full resolution: guided (by the photo's own lightness: colour stays inside "
        "edges) or bilinear (the old, softer way)."))] = "guided",
) -> None:
    """Colour black-and-white photos (the help text is COLORIZE_HELP)."""
    from cunet.colorizer import Colorizer, check_working_size
    from cunet.hints import Hints, load_hints_file, parse_points
    from cunet.runtime import check_backend
    from cunet.upsample import check_upsampler

    check_backend(backend)
    check_upsampler(upsample)
    if quality is not None and not 1 <= quality <= 100:
        raise CunetError(f"--quality {quality} out of range: use 1 to 100")
    note = _note
    paths = expand_inputs(inputs, skip_outputs=True, note=note)
    given = Hints(parse_points(points)) if points is not None else Hints()
    if hints is not None:
        given = given.merged(load_hints_file(hints))
    if reference is not None:
        given = given.merged(Hints(reference=reference))
    if size is not None:
        check_working_size(size)
    if not 0 <= variants <= 64:
        raise CunetError(f"--variants {variants} out of range: use 1 to 64 (0 = off)")
    chosen_gallery = _load_gallery(gallery) if variants else None
    targets = output_paths(paths, out, out_dir, format_ or "png")
    _note_ignored_options(note, out, format_, quality, targets, gallery, variants, all_frames, given)
    if variants:
        targets = [[t.with_name(f"{t.stem.removesuffix('_color')}_v{i + 1}{t.suffix}") for i in range(variants)]
                   for t in targets]
    colorizer = Colorizer.from_pretrained(model, decode=decode, backend=backend, automatic_global=global_,
                                          upsample=upsample, chroma_gain=chroma_gain)
    if given.histogram is None and given.reference is not None:  # once, not once per photo
        given = Hints(given.points, colorizer.global_histogram(given), given.saturation, strokes=given.strokes)
    written: list[Path] = []  # appended to by the writer threads as each file lands
    planned = len(paths) * (variants or 1)
    try:
        if variants:
            _write_variants(colorizer, paths, targets, variants, chosen_gallery, given, size, quality, written, note)
        else:
            _write_colourings(colorizer, paths, targets, given, size, all_frames, quality, written, note)
    except KeyboardInterrupt:
        total = "" if all_frames and not variants else f" of {planned}"
        raise Interrupted(f"interrupted: {len(written)}{total} written") from None


def _note(text: str) -> None:
    """A note on stderr that leaves a running progress bar intact."""
    tqdm.write(text, file=sys.stderr)


def _note_ignored_options(note, out: Path | None, format_: str | None, quality: int | None, targets: list[Path],
                          gallery: Path | None, variants: int, all_frames: bool, hints) -> None:
    """A note for every option the other options make pointless, instead of ignoring it silently."""
    if out is not None and format_ is not None and (
            OUTPUT_FORMATS.get(format_.lower()) != OUTPUT_FORMATS.get(out.suffix.lower().lstrip("."))):
        note(f"note: --format {format_} is ignored with -o: the type comes from its name ({out.suffix})")
    if quality is not None and not any(t.suffix.lower() in (".jpg", ".jpeg", ".webp") for t in targets):
        note("note: --quality applies to JPEG and WebP outputs only; ignored")
    if gallery is not None and not variants:
        note("note: --gallery is used only with --variants; ignored")
    if all_frames and variants:
        note("note: --all-frames does not apply to --variants: the first frame of each file is coloured")
    if variants and (hints.histogram is not None or hints.reference is not None):
        note("note: with --variants each colouring takes a gallery photo's colours; the reference or "
             "histogram given is ignored")


class Interrupted(Exception):
    """Ctrl+C during a run: its message says how far the run got (`main` prints it, exit 130). Not a
    KeyboardInterrupt, which typer turns into a silent exit 130 before `main` could say so."""


def _write_colourings(colorizer, paths: list[Path], targets: list[Path], hints, size: int | None, all_frames: bool,
                      quality: int | None, written: list[Path], note) -> None:
    from cunet.batch import colorize_files

    outcomes = colorize_files(colorizer, list(zip(paths, targets)), hints, size, all_frames, frame_target, quality,
                              note=note, on_written=written.append)
    if len(paths) == 1:
        for outcome in outcomes:
            if outcome.error is not None:
                raise CunetError(outcome.error)
            typer.echo(f"wrote {outcome.target}")
        return
    # A batch goes on past a bad photo (one error line each) and fails at the end, so that one
    # damaged scan does not stop an archive's night run.
    failures = 0
    with tqdm(outcomes, total=None if all_frames else len(paths), desc="colorizing", unit="photo") as bar:
        for outcome in bar:  # `with`: the bar is closed before an interruption's message is printed
            if outcome.error is not None:
                failures += 1
                tqdm.write(f"error: {outcome.error}", file=sys.stderr)
    if failures:
        raise CunetError(f"{failures} of {len(paths)} photos failed; the others were written")


def _write_variants(colorizer, paths: list[Path], targets: list[list[Path]], variants: int, gallery, hints,
                    size: int | None, quality: int | None, written: list[Path], note) -> None:
    """K colourings per photo from the gallery; a batch goes on past a bad photo, as plain colouring does."""
    from cunet.io import save_image_atomic

    failures = 0
    with tqdm(list(zip(paths, targets)), desc="colorizing", unit="photo", disable=len(paths) == 1) as bar:
        for path, files in bar:  # `with`: the bar is closed before an interruption's message is printed
            try:
                results = colorizer.variants(path, variants, gallery, hints, size=size)
            except CunetError as error:
                if len(paths) == 1:
                    raise
                failures += 1
                tqdm.write(f"error: {error}", file=sys.stderr)
                continue
            if len(results) < variants:
                found = f"{len(results)} variant{'s' if len(results) > 1 else ''}"
                note(f"note: {path.name}: {found}, not {variants}: the gallery has only {len(results)} distinct "
                     f"colour histogram{'s' if len(results) > 1 else ''} to take colours from")
            for (_, image), file in zip(results, files):
                save_image_atomic(image, file, quality)
                written.append(file)
                if len(paths) == 1:
                    typer.echo(f"wrote {file}")
    if failures:
        raise CunetError(f"{failures} of {len(paths)} photos failed; the others were written")


_TRAIN_DEFAULTS = {item.name: item.default for item in fields(TrainConfig)}


VIDEO_HELP = (
    "Colour a black-and-white (or sepia, or faded colour) film. Reads any video FFmpeg reads, or a folder of "
    "frames; writes -o as MP4/MOV/MKV (H.264) or WebM (VP9) at the input's frame rate, size and length with "
    "its sound copied, or as a folder of PNG frames when -o has no suffix. The colour stays steady: one palette "
    "per shot (cuts are found), colour carried from frame to frame by optical flow. Nothing is written until "
    "the whole film is done (Ctrl+C leaves no half file)."
)

VIDEO_EPILOG = (
    "Hints (--hints, JSON): a photo hints object applies from frame 0; a list of them, each with a "
    "\"frame\" (0-based), applies each from its frame until the next keyed frame, its points and "
    "strokes moved along with the picture (they end at a cut; histogram, reference and saturation go on): "
    "[{\"frame\": 0, \"points\": [{\"x\": 120, \"y\": 80, \"color\": \"#a03020\"}]}, "
    "{\"frame\": 120, \"points\": []}]. Positions are in the film's pixels."
)


@app.command(help=VIDEO_HELP, epilog=VIDEO_EPILOG)
def video(
    source: Annotated[Path, typer.Argument(help="A video file, or a folder of frames (sorted by name).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output video (.mp4, .m4v, .mov, .mkv, .webm) or a new folder for PNG frames.",
                                      show_default=False)],
    hints: Annotated[Optional[Path], typer.Option(help=_with_default("JSON file of hints, keyed by frame (see below).", "none"))] = None,
    reference: Annotated[Optional[Path], typer.Option(help=_with_default(
        "A colour photo whose colours guide every shot.", "each shot's own palette"))] = None,
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    size: Annotated[Optional[int], typer.Option(
        help=_with_default("Working size (short side, 16 to 1024 px).", "the model's training scale"))] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for the network (the join and the encoding run beside it).")] = 2,
    chroma_gain: Annotated[Optional[float], typer.Option(help=_with_default(
        "Colour strength (see colorize --help).", "the model's measured choice"))] = None,
    fps: Annotated[Optional[float], typer.Option(help=_with_default("Frame rate of a folder of frames.", "25"))] = None,
    cuts: Annotated[bool, typer.Option("--cuts/--no-cuts", help="Find shot cuts (each shot starts afresh).")] = True,
    palette: Annotated[bool, typer.Option("--palette/--no-palette", help="One palette per shot, from its first frames.")] = True,
    palette_from: Annotated[str, typer.Option(help=(
        "What the shot's palette is made of: frames (their automatic colours) or predicted (the histogram "
        "head's prediction: more colourful, 0.15 dB lower on the colour clips)."))] = "frames",
    stabilise: Annotated[bool, typer.Option("--stabilise/--no-stabilise", help="Carry colour between frames by optical flow.")] = True,
    every: Annotated[Optional[int], typer.Option(help=_with_default(
        "Run the network on every K-th frame of a shot; the flow carries the colour between (1 = every frame).",
        "4: measured as good, and three times as fast"))] = None,
) -> None:
    """Colour a film (the help text is VIDEO_HELP)."""
    import cv2
    import torch

    from cunet.colorizer import Colorizer, check_working_size
    from cunet.video import FilmColorizer, Steadiness, load_video_hints
    from cunet.video_io import VideoSource, check_video_target, is_frame_folder_target, transcode

    if size is not None:
        check_working_size(size)
    if not 1 <= threads <= 256:
        raise CunetError(f"--threads {threads} out of range: use 1 to 256")
    if fps is not None and not 0 < fps <= 1000:
        raise CunetError(f"--fps {fps:g} out of range: use a rate above 0 and up to 1000")
    if every is not None and every > 1 and not stabilise:
        raise CunetError("--every above 1 carries colour by the flow between frames; it needs --stabilise")
    steadiness = Steadiness(cuts=cuts, shot_palette=palette, stabilise=stabilise, palette_from=palette_from,
                            **({} if every is None else {"every": every}))
    check_video_target(out)
    if palette_from != "frames" and (not palette or reference is not None):
        _note(f"note: --palette-from {palette_from} is ignored: " + (
            "--no-palette makes no shot palette" if not palette else "the reference's colours guide every shot"))
    keyed = load_video_hints(hints) if hints is not None else ()
    film_source = VideoSource(source, rate=fps)
    try:
        if fps is not None and (film_source._container is not None or is_frame_folder_target(out)):
            _note("note: --fps sets the rate of a video made from a folder of frames; "
                  + ("a video keeps its own rate" if film_source._container is not None else "frames out have none"))
        if source.resolve() == out.resolve():
            raise CunetError(f"{out}: would overwrite the input; choose another output")
        width, height = film_source.size
        for key in keyed:
            for point in key.hints.points:
                if not point.inside(width, height):
                    raise CunetError(f"{hints}: frame {key.frame}: point ({point.x:g}, {point.y:g}) lies outside the "
                                     f"{width}x{height} picture")
            for index, stroke in enumerate(key.hints.strokes):
                if not stroke.inside(width, height):
                    raise CunetError(f"{hints}: frame {key.frame}: stroke {index + 1} leaves the {width}x{height} picture")
            if film_source.frame_count and key.frame >= film_source.frame_count:
                _note(f"note: {hints}: frame {key.frame} is past the film's {film_source.frame_count} frames; ignored")
        torch.set_num_threads(threads)  # beside the writer thread's join: measured faster than threads - 1
        cv2.setNumThreads(1)
        colorizer = Colorizer.from_pretrained(model, chroma_gain=chroma_gain)
        histogram = colorizer.histogram_of(reference) if reference is not None else None
        film = FilmColorizer(colorizer, steadiness, keyed, histogram, size, join_threads=1)
        total = film_source.frame_count or None
        with tqdm(total=total, unit="frame", desc=shorten(source.name), file=sys.stderr) as progress:
            try:
                count = transcode(film_source, out, film.run, on_frame=progress.update)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted: {progress.n} of {total or '?'} frames coloured; nothing written") from None
    finally:
        film_source.close()
    shots = len(film.cuts) + 1
    typer.echo(f"{out}: {count} frames, {shots} shot{'s' if shots > 1 else ''}", err=True)


def _train_option(text: str, name: str | None = None, default: str | None = None):
    """A train option whose help shows the default it falls back to (TrainConfig's, unless a TOML sets it)."""
    return typer.Option(help=_with_default(text, default if default is not None else _TRAIN_DEFAULTS[name]))


@app.command()
def train(
    config: Annotated[Optional[Path], _train_option("TOML file of training options (see configs/).", default="none")] = None,
    data: Annotated[Optional[str], typer.Option(help="manifest.csv (train/val split) or a folder of colour photos; required without --config.")] = None,
    out_dir: Annotated[Optional[str], _train_option("Run folder: checkpoints and log; an existing run resumes.", "out_dir")] = None,
    preset: Annotated[Optional[str], _train_option("Model preset: small or paper.", "preset")] = None,
    width: Annotated[Optional[int], _train_option("Override the preset's width.", default="the preset's (small 16, paper 64)")] = None,
    activation: Annotated[Optional[str], _train_option("sigmoid, relu or leaky-relu.", default="the preset's (small relu, paper sigmoid)")] = None,
    steps: Annotated[Optional[int], _train_option("Total optimizer steps (sets the LR schedule).", "steps")] = None,
    stop_after: Annotated[Optional[int], _train_option("Stop after this many steps in this run (resume later).", default="run to --steps")] = None,
    stop_after_minutes: Annotated[Optional[float], _train_option(
        "Stop once the run has trained this long in all, resumes included (equal-budget trials).",
        default="no time limit")] = None,
    batch_size: Annotated[Optional[int], _train_option("Photos per step.", "batch_size")] = None,
    lr: Annotated[Optional[float], _train_option("Peak learning rate (AdamW).", "lr")] = None,
    loss: Annotated[Optional[str], _train_option("huber or l2.", "loss")] = None,
    precision: Annotated[Optional[str], _train_option("auto, bf16 or fp32.", "precision")] = None,
    threads: Annotated[Optional[int], _train_option("CPU threads for PyTorch (0 = its default).", "threads")] = None,
    seed: Annotated[Optional[int], _train_option("Seed for initial weights, order, crops and hints.", "seed")] = None,
    init_from: Annotated[Optional[str], _train_option("Start a new run from these weights (fine-tuning).", default="random weights")] = None,
) -> None:
    """Train (or resume) a CU-net on colour photos with simulated hints."""
    from cunet.train import train as run_training

    overrides = dict(data=data, out_dir=out_dir, preset=preset, width=width, activation=activation, steps=steps,
                     stop_after=stop_after, batch_size=batch_size, lr=lr, loss=loss, precision=precision,
                     threads=threads, seed=seed, init_from=init_from,
                     stop_after_seconds=None if stop_after_minutes is None else 60 * stop_after_minutes)
    if config is not None:
        settings = TrainConfig.from_toml(config, **overrides)
    else:
        if data is None:
            raise CunetError("give --data (a manifest.csv or a folder of photos) or --config")
        settings = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    checkpoint = run_training(settings)
    typer.echo(f"checkpoint: {checkpoint}")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A training checkpoint (last.safetensors) or a weights file (its stored choices kept, but for those given).",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .safetensors weights, or .onnx with --onnx.")],
    full_precision: Annotated[bool, typer.Option(help="Keep fp32 weights instead of fp16.")] = False,
    decode: Annotated[Optional[str], typer.Option(
        help=_stored_or("Default decoding stored with the weights: regression, annealed (distribution head) or blend.", "regression"))] = None,
    temperature: Annotated[Optional[float], typer.Option(
        help=_stored_or("Annealed-mean temperature (1 = mean, towards 0 = mode).", "0.38"))] = None,
    blend: Annotated[Optional[float], typer.Option(
        help=_stored_or("Share of the annealed mean in the blend decoding.", "0.5"))] = None,
    chroma_gain: Annotated[Optional[float], typer.Option(help=_stored_or((
        "Chroma gain stored with the weights, in (0, 3]: the decoded a*b* times this (measure first: "
        "benchmarks/decoding_choice.py)."), "1"))] = None,
    automatic_global: Annotated[Optional[str], typer.Option(help=_stored_or((
        "Global hint of automatic colouring stored with the weights: none, or predicted (needs a histogram head)."), "none"))] = None,
    histogram_temperature: Annotated[Optional[float], typer.Option(help=_stored_or((
        "Sharpening of the predicted histogram stored with the weights: p^(1/T); 1 = as predicted."), "1"))] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help=(
        "Write the whole network as an ONNX graph (for ONNX Runtime and other tools; its metadata says how "
        "to feed it and the choices above) instead of a weights file."))] = False,
) -> None:
    """Turn a training checkpoint into a small weights file for `colorize --model` (or restate a weights
    file's stored decoding and automatic global hint: what is not given stays), or a model into ONNX."""
    from cunet.train import export_choices, export_weights

    if onnx:
        from cunet.checkpoint import load_model, stored_info
        from cunet.runtime import onnx_available, write_onnx

        if out.suffix != ".onnx":
            raise CunetError(f"{out}: ONNX files end in .onnx")
        if not onnx_available():
            raise CunetError("--onnx needs the onnx and onnxruntime packages (pip install onnx onnxruntime)")
        model, metadata = load_model(checkpoint)
        stored = stored_info(checkpoint, metadata)
        info = {**stored, **export_choices(checkpoint, model, stored, decode, temperature, blend, chroma_gain,
                                           automatic_global, histogram_temperature)}
        prepare_output_folder(out.parent)
        write_onnx(model, info, out)
        typer.echo(f"wrote {out}")
        return
    if out.suffix != ".safetensors":
        raise CunetError(f"{out}: weights files end in .safetensors")
    prepare_output_folder(out.parent)
    export_weights(checkpoint, out, half=not full_precision, decode=decode, temperature=temperature, blend=blend,
                   automatic_global=automatic_global, histogram_temperature=histogram_temperature,
                   chroma_gain=chroma_gain)
    typer.echo(f"wrote {out}")


@app.command()
def widen(
    weights: Annotated[Path, typer.Argument(help="A weights file or training checkpoint.", show_default=False)],
    width: Annotated[int, typer.Option("--width", help="The new conv1 width (conv2-4: 2x, 4x, 8x).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights file to write (.safetensors, fp32).")],
    seed: Annotated[int, typer.Option(min=0, help="Picks the copied channels and their split shares.")] = 0,
) -> None:
    """A wider copy of a trained model that colours exactly alike (Net2Wider), to train on with
    `init_from` (+ `init_continues`): width trials that all start from one colouring."""
    from cunet.train import widen_weights

    if out.suffix != ".safetensors":
        raise CunetError(f"{out}: weights files end in .safetensors")
    widen_weights(weights, out, width, seed)
    typer.echo(f"wrote {out}")


@app.command("fit-histogram-head")
def fit_histogram_head(
    weights: Annotated[Path, typer.Argument(help="A weights file or training checkpoint (its trunk stays frozen).",
                                            show_default=False)],
    data: Annotated[list[str], typer.Option("--data", help=(
        "Training photos: manifest.csv files (train split; the val split checks the fit) or folders. Repeat."),
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights file to write (.safetensors), with the head.")],
    crops_per_photo: Annotated[int, typer.Option(help="Random crops encoded per training photo.")] = 2,
    epochs: Annotated[int, typer.Option(help="Passes of the head over the encoded crops.")] = 40,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 1e-3,
    automatic_global: Annotated[Optional[str], typer.Option(help=_with_default(
        "Store this as the automatic global hint: none or predicted (measure first: cunet evaluate "
        "--global none,predicted).", "keep the stored one"))] = None,
    threads: Annotated[Optional[int], typer.Option(help=_with_default("CPU threads.", "PyTorch's default"))] = None,
) -> None:
    """Teach a trained model to predict a photo's colour histogram from its gray version: an automatic global hint."""
    import torch

    from cunet.checkpoint import load_model, save_weights
    from cunet.colorizer import check_automatic_global
    from cunet.train_histogram import fit_histogram_head as fit

    if out.suffix != ".safetensors":
        raise CunetError(f"{out}: weights files end in .safetensors")
    if automatic_global is not None:
        check_automatic_global(automatic_global, True)
    if threads:
        torch.set_num_threads(threads)
    prepare_output_folder(out.parent)
    report = fit(weights, data, out, crops_per_photo=crops_per_photo, epochs=epochs, lr=lr)
    if automatic_global is not None:
        model, metadata = load_model(out)
        save_weights(out, model, {**metadata["info"], "automatic_global": automatic_global})
    line = f"cross-entropy train {report['train_cross_entropy']:.3f} (constant {report['train_constant_cross_entropy']:.3f})"
    if "val_cross_entropy" in report:
        line += f", val {report['val_cross_entropy']:.3f} (constant {report['val_constant_cross_entropy']:.3f})"
    typer.echo(f"{line}\nwrote {out}")


def _split_list(text: str, cast=str) -> list:
    try:
        return [cast(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError:
        raise CunetError(f"bad list {text!r}: expected comma-separated values") from None


@app.command()
def evaluate(
    data: Annotated[list[str], typer.Argument(
        help="Folders of colour photos or manifest.csv files (their val split); several are evaluated together.",
        show_default=False)],
    points: Annotated[str, typer.Option(help="Point counts to sweep.")] = "0,1,2,5,10,20,50",
    global_: Annotated[str, typer.Option("--global", help=(
        "Global-hint settings: none (automatic), gt (oracle histogram), retrieved (nearest gallery photo's "
        "histogram), predicted (the model's histogram head; needs one), variants (best of --variants gallery "
        "colourings, an oracle pick)."))] = "none,gt,retrieved,variants",
    gallery: Annotated[Optional[Path], typer.Option(help=_with_default(
        "Gallery for the retrieved and variants settings.", "the bundled gallery"))] = None,
    variants: Annotated[int, typer.Option(help="K for the variants setting.")] = 4,
    suggest_top: Annotated[int, typer.Option(help="Suggestion hit rate: is the true colour among the top N? (0 = off)")] = 8,
    methods: Annotated[str, typer.Option(help="Methods: cunet, gray, reinhard, welsh, levin.")] = "cunet,gray,reinhard,welsh,levin",
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    decode: Annotated[Optional[str], typer.Option(
        help=_with_default("How cunet turns its output into colour: regression, annealed or blend.", "the model's own"))] = None,
    chroma_gain: Annotated[Optional[float], typer.Option(help=_with_default(
        "cunet's colour strength: its a*b* times this (up to 3).", "the model's own"))] = None,
    split: Annotated[str, typer.Option(help="Manifest split to use.")] = "val",
    by_source: Annotated[bool, typer.Option(
        "--by-source/--pooled",
        help="Group photos by source (manifest column, else folder) and headline the macro average; "
        "--pooled: one group.")] = True,
    limit: Annotated[Optional[int], typer.Option(help=_with_default("Only the first N photos of each source (sorted order).", "all"))] = None,
    automatic_global: Annotated[Optional[str], typer.Option(help=_with_default(
        "The global hint of cunet's automatic colouring (the 'none' setting): none or predicted.",
        "the model's measured choice"))] = None,
    histogram_temperature: Annotated[Optional[float], typer.Option(help=_with_default(
        "Sharpening of the predicted histogram (the 'predicted' setting and a predicted automatic hint): "
        "p^(1/T), T in [0.05, 1].", "the model's stored one"))] = None,
    exclude_from_headline: Annotated[str, typer.Option(
        help="Sources (comma-separated) reported in their own rows but left out of the headline macro: face crops "
        "gain far more than anything else. '' keeps every source in it.")] = ",".join(FACE_CROP_SOURCES),
    upsample: Annotated[str, typer.Option(help="How cunet's colour reaches full size: guided or bilinear.")] = "guided",
    point_fill: Annotated[bool, typer.Option(
        "--point-fill/--no-point-fill", help="Correct cunet's colour towards each point over its region after "
        "the network (--no-point-fill: the network's own answer to the points, which are still fitted to the "
        "gamut at their lightness; for comparison).")] = True,
    photo_size: Annotated[int, typer.Option(help="Photos are resized to this square (the protocol's 256); 0: "
                                                 "each at its stored size.")] = 256,
    size: Annotated[Optional[int], typer.Option(
        help=_with_default("cunet's working size (short side, 16 to 1024 px).", "the model's training scale"))] = None,
    out: Annotated[Path, typer.Option(help="Report folder: report.json, report.md, psnr_vs_points.png.")] = Path("eval"),
) -> None:
    """Measure cunet and the classical baselines on photos with ground truth (256x256 protocol)."""
    from cunet.colorizer import Colorizer
    from cunet.evaluate import evaluate as run_evaluation, evaluation_set, write_report

    method_list = _split_list(methods)
    paths, sources = evaluation_set(data, split, limit, by_source)
    prepare_output_folder(out)
    if photo_size != 0 and not 16 <= photo_size <= 4096:
        raise CunetError(f"--photo-size {photo_size} out of range: use 16 to 4096 (0 = stored size)")
    colorizer = (Colorizer.from_pretrained(model, size, decode=decode, automatic_global=automatic_global,
                                           histogram_temperature=histogram_temperature, upsample=upsample,
                                           chroma_gain=chroma_gain)
                 if "cunet" in method_list else None)
    if colorizer is not None:
        colorizer.point_fill = point_fill
    globals_ = _split_list(global_)
    chosen_gallery = _load_gallery(gallery) if {"retrieved", "variants"} & set(globals_) and colorizer else None
    report = run_evaluation(paths, method_list, _split_list(points, int), globals_, colorizer, sources=sources,
                            gallery=chosen_gallery, variants=variants, suggest_top=suggest_top,
                            exclude_from_headline=_split_list(exclude_from_headline), photo_size=photo_size or None)
    report["model"] = str(model) if model else "bundled default"
    if colorizer is not None:
        report["decode"] = colorizer.decode
        report["chroma_gain"] = colorizer.chroma_gain
        report["automatic_global"] = colorizer.automatic_global
        report["histogram_temperature"] = colorizer.histogram_temperature
    write_report(report, out)
    typer.echo(f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'psnr_vs_points.png'}")


@app.command()
def figure(
    images: Annotated[list[str], typer.Argument(help="Photos, folders or globs.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid image to write (.png).")],
    methods: Annotated[str, typer.Option(help="Methods, in column order.")] = "cunet,levin,reinhard",
    points: Annotated[int, typer.Option(help="Ground-truth points per photo (colour photos only).")] = 0,
    black_and_white: Annotated[bool, typer.Option("--bw", help="Real black-and-white photos: no ground-truth column.")] = False,
    reference: Annotated[Optional[Path], typer.Option(help=_with_default("Colour reference for the transfer baselines and cunet's global hint.", "none"))] = None,
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    variants: Annotated[int, typer.Option(help="Instead of methods: K colourings from the gallery's nearest photos (0 = off).")] = 0,
    gallery: Annotated[Optional[Path], typer.Option(help=_with_default("Gallery file for --variants.", "the bundled gallery"))] = None,
) -> None:
    """Side-by-side grid like the paper's Figures 13-14: input | each method (or K variants) | ground truth."""
    from cunet.colorizer import Colorizer
    from cunet.evaluate import figure_grid, variants_grid
    from cunet.io import save_image_atomic

    method_list = _split_list(methods)
    paths = expand_inputs(images)
    prepare_output_folder(out.parent)
    if variants:
        colorizer = Colorizer.from_pretrained(model)
        chosen_gallery = _load_gallery(gallery)
        grid = variants_grid(paths, colorizer, variants, chosen_gallery, ground_truth=not black_and_white)
        save_image_atomic(grid, out)
        typer.echo(f"wrote {out}")
        return
    colorizer = Colorizer.from_pretrained(model) if "cunet" in method_list else None
    grid = figure_grid(paths, method_list, colorizer, points=points, ground_truth=not black_and_white, reference=reference)
    save_image_atomic(grid, out)
    typer.echo(f"wrote {out}")


def _load_gallery(path: Path | None):
    from cunet.gallery import Gallery, bundled_gallery

    return bundled_gallery() if path is None else Gallery.load(path)


@app.command()
def suggest(
    photo: Annotated[Path, typer.Argument(help="The black-and-white photo.", show_default=False)],
    at: Annotated[str, typer.Option(help="The pixel 'x,y' (input pixels, x from the left, y from the top).",
                                    show_default=False)],
    top: Annotated[int, typer.Option(help="How many colours.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: [{\"color\", \"a\", \"b\", \"p\"}, ...].")] = False,
    points: Annotated[Optional[str], typer.Option(help=_with_default("Colour points already given, 'x,y,#rrggbb[,size];...'.", "none"))] = None,
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    gallery: Annotated[Optional[Path], typer.Option(help=_with_default(
        "Gallery for models without a distribution head.", "the bundled gallery"))] = None,
) -> None:
    """The most likely colours at a pixel, with their probabilities (the model's colour distribution)."""
    from cunet.colorizer import Colorizer
    from cunet.hints import Hints, check_coordinate, parse_points

    parts = at.split(",")
    if len(parts) != 2:
        raise CunetError(f"--at {at!r}: expected x,y, e.g. --at 120,80")
    try:
        x, y = (check_coordinate(float(part), "--at") for part in parts)
    except ValueError:
        raise CunetError(f"--at {at!r}: expected two numbers x,y, e.g. --at 120,80") from None
    given = Hints(parse_points(points)) if points is not None else Hints()
    colorizer = Colorizer.from_pretrained(model)
    chosen_gallery = _load_gallery(gallery) if colorizer.model.distribution is None else None
    if gallery is not None and chosen_gallery is None:
        _note("note: this model suggests colours from its own distribution; --gallery is ignored")
    suggestions, source = colorizer.suggest(photo, x, y, top, given, chosen_gallery)
    if source == "gallery":
        typer.echo("note: this model has no distribution head; these colours come from the nearest gallery "
                   "photos' colour histograms", err=True)
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in suggestions]))
        return
    for rank, item in enumerate(suggestions, 1):
        typer.echo(f"{rank:2d}. {item.color}  a*={item.a:6.1f}  b*={item.b:6.1f}  p={item.p:.3f}")


gallery_app = typer.Typer(help="Reference galleries: colour photos indexed for the variants and suggestions.",
                          no_args_is_help=True)
app.add_typer(gallery_app, name="gallery")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@app.command()
def studio(
    photo: Annotated[Optional[Path], typer.Argument(help="A photo to open at once.", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to serve on; anything but loopback lets others on the network in.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8765,
    model: Annotated[Optional[Path], typer.Option(help=_with_default("Weights or checkpoint file.", "the bundled model"))] = None,
    gallery: Annotated[Optional[Path], typer.Option(help=_with_default("Gallery file for variants.", "the bundled gallery"))] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in the default web browser.")] = False,
    backend: Annotated[str, typer.Option(help="How the network runs (see colorize --help).")] = "auto",
    upsample: Annotated[str, typer.Option(help="How the colour reaches full size: guided or bilinear (see colorize --help).")] = "guided",
    chroma_gain: Annotated[Optional[float], typer.Option(help=_with_default(
        "Colour strength (see colorize --help).", "the model's measured choice"))] = None,
) -> None:
    """Start the local web app: open a photo, click colour points, pick variants, download the result."""
    import socket

    from cunet.runtime import check_backend
    from cunet.upsample import check_upsampler

    check_backend(backend)
    check_upsampler(upsample)
    if not 1 <= port <= 65535:
        raise CunetError(f"--port {port}: use 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CunetError(f"cannot serve on {host}:{port} ({error.strerror}); choose another --port or --host") from None
    import uvicorn

    from cunet.colorizer import Colorizer
    from cunet.io import existing_file, load_photo
    from cunet.studio.app import create_app
    from cunet.studio.compute import ComputeThread

    keep_freed_memory()  # each update's tensors reuse the last one's memory instead of faulting pages in
    compute = ComputeThread()  # the model is loaded, and every later tensor runs, on this one thread
    colorizer = compute(Colorizer.from_pretrained, model, backend=backend, upsample=upsample, chroma_gain=chroma_gain)
    chosen_gallery = compute(_load_gallery, gallery) if gallery is not None else None
    server = create_app(colorizer, chosen_gallery, compute=compute, hosts=(host,))
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{port}/"
    if photo is not None:
        from cunet.studio.requests import file_digest

        data = existing_file(photo, "photo file").read_bytes()
        url += "?photo=" + server.state.add_photo(load_photo(data, name=str(photo)), photo.name, file_digest(data))["id"]
    if host not in LOOPBACK_HOSTS:
        typer.echo(f"warning: serving on {host}: anyone who can reach this address can use the studio "
                   "and upload photos to this computer", err=True)
    typer.echo(f"cunet studio: {url}  (Ctrl+C stops it)")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(server, host=host, port=port, log_level="warning")


@gallery_app.command("build")
def gallery_build(
    sources: Annotated[list[str], typer.Argument(help="Folders of colour photos or manifest.csv files.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Gallery file to write (NAME.gallery).", show_default=False)],
    split: Annotated[Optional[str], typer.Option(help=_with_default("Manifest split to index (e.g. train).", "every photo"))] = None,
    limit: Annotated[Optional[int], typer.Option(help=_with_default(
        "At most N photos per source, spread evenly over it.", "all"))] = None,
    thumbnails: Annotated[bool, typer.Option("--thumbnails/--no-thumbnails", help="Keep 64 px thumbnails.")] = True,
    model: Annotated[Optional[Path], typer.Option(help=_with_default(
        "Model whose bottleneck features index the photos.", "the bundled model"))] = None,
    features: Annotated[bool, typer.Option("--features/--luminance-only", help=(
        "Store the model's bottleneck features as a query descriptor beside the luminance histogram."))] = True,
) -> None:
    """Index colour photos: a*b* histogram, query descriptors, thumbnail and path of each."""
    import numpy as np

    from cunet.colorizer import Colorizer
    from cunet.data import list_labelled_photos, manifest_has_splits
    from cunet.gallery import build_gallery

    if out.suffix != ".gallery":
        raise CunetError(f"{out}: gallery files end in .gallery")
    if limit is not None and limit < 1:
        raise CunetError("--limit must be at least 1")
    prepare_output_folder(out.parent)
    items = []
    for source in sources:
        if not Path(source).exists():
            raise CunetError(f"{source}: no such folder or manifest")
        labelled = list_labelled_photos(source, split if manifest_has_splits(source) else None)
        for label in sorted({label for _, label in labelled}):
            own = [path for path, name in labelled if name == label]
            if limit is not None and len(own) > limit:
                own = [own[i] for i in np.unique(np.linspace(0, len(own) - 1, limit).astype(int))]
            items += [(path, label) for path in own]
    if not items:
        raise CunetError("no photos to index")
    colorizer = Colorizer.from_pretrained(model)
    built, skipped = build_gallery(colorizer.model if features else None, [p for p, _ in items],
                                   [s for _, s in items], colorizer.working_size, thumbnails)
    built.save(out)
    typer.echo(f"wrote {out}: {len(built)} photos ({skipped} unreadable skipped), {out.stat().st_size / 2**20:.1f} MiB")


@gallery_app.command("info")
def gallery_info(gallery: Annotated[Path, typer.Argument(help="A .gallery file.", show_default=False)]) -> None:
    """What a gallery holds: photos per source, descriptors, the model its features belong to."""
    from cunet.gallery import Gallery

    typer.echo(json.dumps(Gallery.load(gallery).info(), indent=2))


dataset_app = typer.Typer(help="Build photo collections: ImageNet synsets (the paper's data), folders, packed copies.",
                          no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("imagenet")
def dataset_imagenet(
    root: Annotated[Path, typer.Argument(help="ImageNet root (ILSVRC Data/CLS-LOC/train/<wnid>/, 21k <wnid>/ or <wnid>.tar).", show_default=False)],
    out: Annotated[Path, typer.Option(help="Folder to create.")],
    wnid: Annotated[list[str], typer.Option(help="Synset id; repeat for several.")] = ["n00007846"],
    fraction: Annotated[float, typer.Option(help="Share of each synset drawn first.")] = 0.2,
    count: Annotated[Optional[int], typer.Option(help="Then at most this many photos in all.")] = 5000,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    link: Annotated[bool, typer.Option("--link/--copy", help="Symlink photos from folders instead of copying.")] = False,
) -> None:
    """The paper's data: a random share of a synset (person = n00007846), then a fixed count, with a manifest."""
    from cunet.curation import sample_imagenet

    summary = sample_imagenet(root, wnid, out, fraction=fraction, count=count, seed=seed, link=link)
    typer.echo(f"wrote {summary['photos']} photos and {out / 'manifest.csv'} "
               f"({summary['unreadable']} unreadable skipped; per synset {summary['synsets']})")


@dataset_app.command("folder")
def dataset_folder(
    source: Annotated[Path, typer.Argument(help="Any folder of photos (searched recursively).", show_default=False)],
    out: Annotated[Path, typer.Option(help="Folder to create.")],
    min_side: Annotated[int, typer.Option(help="Drop photos whose short side is smaller.")] = 128,
    link: Annotated[bool, typer.Option("--link/--copy", help="Symlink instead of copying.")] = False,
) -> None:
    """Import a folder: drop unreadable, small and near-gray photos and duplicates; split by hash."""
    from cunet.curation import import_folder

    counts = import_folder(source, out, min_side=min_side, link=link)
    typer.echo(f"wrote {counts['photos']} photos and {out / 'manifest.csv'}; dropped {counts['unreadable']} unreadable, "
               f"{counts['too_small']} too small, {counts['near_gray']} near-gray, {counts['duplicates']} duplicates")


@dataset_app.command("pack")
def dataset_pack(
    manifest: Annotated[Path, typer.Argument(help="manifest.csv of the collection to pack.", show_default=False)],
    out: Annotated[Path, typer.Option(help="Folder to create.")],
    size: Annotated[int, typer.Option(help="Short side of the packed photos.")] = 160,
    quality: Annotated[int, typer.Option(help="JPEG quality.")] = 85,
) -> None:
    """A compact copy (re-sized JPEGs, same splits) to carry to a GPU machine."""
    from cunet.curation import pack

    if not manifest.is_file():
        raise CunetError(f"{manifest}: no such manifest")
    summary = pack(manifest, out, size=size, quality=quality)
    typer.echo(f"packed {summary['photos']} photos into {out} ({summary['bytes'] / 2**20:.1f} MiB)")


def _click_exceptions():
    """typer >= 0.26 ships its own copy of click; earlier ones use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def main() -> None:
    """Console entry point: CunetError and usage mistakes -> one `error:` line on stderr, exit 2."""
    errors = _click_exceptions()
    try:
        code = app(standalone_mode=False, prog_name="cunet")
    except CunetError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except errors.NoArgsIsHelpError as shown:
        text = shown.format_message()  # typer's rich help has already printed itself and left this empty
        if text.strip():
            typer.echo(text)
        sys.exit(0)
    except errors.UsageError as error:
        message = " ".join(error.format_message().split())
        command = error.ctx.command_path if error.ctx else "cunet"
        typer.echo(f"error: {message} (see '{command} --help')", err=True)
        sys.exit(2)
    except errors.ClickException as error:
        typer.echo(f"error: {' '.join(error.format_message().split())}", err=True)
        sys.exit(2)
    except Interrupted as interrupted:
        typer.echo(str(interrupted), err=True)
        sys.exit(130)
    except (KeyboardInterrupt, errors.Abort):
        code = 130
    if code == 130:  # typer's answer to Ctrl+C, made silently
        typer.echo("interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
