"""The `cunet` command line: colorize photos, train and export models.

Bad input never produces a traceback: it is one line on stderr and exit code 2.
"""

from __future__ import annotations

import glob
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from tqdm import tqdm

from cunet.errors import CunetError
from cunet.io import IMAGE_SUFFIXES

app = typer.Typer(
    name="cunet",
    help="Bring colour to black-and-white photos of people (CU-net, Wang et al. 2022).\n\n"
    "Start with:  cunet colorize old-photo.jpg -o colour.png",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

POINT_PATTERN = re.compile(r"^\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*#([0-9a-fA-F]{6})\s*(?:,\s*(\d+)\s*)?$")


def parse_color(text: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if not match:
        raise CunetError(f"bad colour {text!r}: expected #rrggbb")
    value = match.group(1)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def parse_points(text: str):
    """'x,y,#rrggbb[,size];...' -> list of PointHint (size defaults to 3 px, at most 9)."""
    points = []
    for part in filter(str.strip, text.split(";")):
        match = POINT_PATTERN.match(part)
        if not match:
            raise CunetError(f"bad point {part.strip()!r}: expected x,y,#rrggbb[,size], e.g. 120,80,#c08060,5")
        x, y, colour, size = match.groups()
        points.append(_point(float(x), float(y), "#" + colour, int(size) if size else 3))
    return points


def _point(x: float, y: float, colour: str, size: int):
    from cunet.hints import MAX_PATCH, PointHint  # lazily: torch makes `cunet --help` slow

    if not 1 <= size <= MAX_PATCH:
        raise CunetError(f"point size {size} out of range: use 1 to {MAX_PATCH} pixels")
    return PointHint.from_rgb(x, y, parse_color(colour), size)


def load_hints_file(path: Path) -> dict:
    """A JSON hints file: {"points": [{"x", "y", "color", "size"?}], "saturation"?, "reference"?}."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise CunetError(f"{path}: cannot read hints file ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise CunetError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict):
        raise CunetError(f"{path}: hints file must hold a JSON object")
    unknown = set(data) - {"points", "saturation", "reference"}
    if unknown:
        raise CunetError(f"{path}: unknown hint keys {sorted(unknown)}; use points, saturation, reference")
    hints: dict = {"points": []}
    for i, item in enumerate(data.get("points", [])):
        try:
            hints["points"].append(
                _point(float(item["x"]), float(item["y"]), str(item["color"]), int(item.get("size", 3)))
            )
        except (KeyError, TypeError, ValueError):
            raise CunetError(f"{path}: point {i} needs numeric x, y and a color '#rrggbb'") from None
    if "saturation" in data:
        if not isinstance(data["saturation"], (int, float)) or not 0 <= data["saturation"] <= 1:
            raise CunetError(f"{path}: saturation must be a number in [0, 1]")
        hints["saturation"] = float(data["saturation"])
    if "reference" in data:
        hints["reference"] = (path.parent / str(data["reference"])).resolve()
    return hints


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in the given order."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise CunetError(f"{path}: folder holds no images")
            paths += found
        elif path.exists():
            paths.append(path)
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CunetError(f"{item}: pattern matches no images")
            paths += found
        else:
            raise CunetError(f"{path}: no such file")
    return paths


def output_paths(inputs: list[Path], out: Path | None, out_dir: Path | None) -> list[Path]:
    if out is not None and out_dir is not None:
        raise CunetError("give either -o/--out or --out-dir, not both")
    if out is not None:
        if len(inputs) != 1:
            raise CunetError(f"-o/--out takes one input, got {len(inputs)}; use --out-dir for several")
        targets = [out]
    elif out_dir is not None:
        if not out_dir.is_dir():
            raise CunetError(f"{out_dir}: output folder does not exist")
        targets = [out_dir / f"{p.stem}.png" for p in inputs]
        if len(set(targets)) != len(targets):
            raise CunetError("two inputs share a file name; colour them into different folders")
    else:
        targets = [p.with_name(f"{p.stem}_color.png") for p in inputs]
    sources = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in sources:
            raise CunetError(f"{target}: would overwrite an input photo; choose another output")
        if target.suffix.lower() not in IMAGE_SUFFIXES:
            raise CunetError(f"{target}: unknown image type {target.suffix or '(none)'}; use .png, .jpg, .tif or .webp")
        if not target.parent.is_dir():
            raise CunetError(f"{target}: folder {target.parent} does not exist")
    return targets


@app.command()
def colorize(
    inputs: Annotated[list[str], typer.Argument(help="Photos, folders or glob patterns ('scans/*.tif').", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (one input only).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Output folder; files keep their names as .png.")] = None,
    points: Annotated[Optional[str], typer.Option(help="Colour points 'x,y,#rrggbb[,size];...' in input pixels.")] = None,
    hints: Annotated[Optional[Path], typer.Option(help="JSON file with points, saturation and/or reference.")] = None,
    reference: Annotated[Optional[Path], typer.Option(help="A colour photo whose colours guide the result.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Working size (short side, px); default: the model's training scale.")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Weights or checkpoint file; default: the bundled model.")] = None,
    decode: Annotated[Optional[str], typer.Option(
        help="regression (safe average), annealed (vivid, from the colour distribution) or blend; "
        "default: the model's measured choice.")] = None,
) -> None:
    """Colour black-and-white photos. Without -o/--out-dir, writes NAME_color.png beside each input."""
    from cunet.colorizer import Colorizer
    from cunet.io import load_photo, save_image_atomic

    paths = expand_inputs(inputs)
    targets = output_paths(paths, out, out_dir)
    point_list = parse_points(points) if points else []
    extra = load_hints_file(hints) if hints else {"points": []}
    point_list += extra["points"]
    reference_path = reference if reference is not None else extra.get("reference")
    if size is not None and not 16 <= size <= 4096:
        raise CunetError(f"--size {size} out of range: use 16 to 4096")
    colorizer = Colorizer.from_pretrained(model, decode=decode)
    histogram = colorizer.histogram_of(load_photo(reference_path)) if reference_path is not None else None
    if len(paths) == 1:
        result = colorizer.colorize(paths[0], points=point_list, histogram=histogram,
                                    saturation=extra.get("saturation"), size=size)
        save_image_atomic(result, targets[0])
        typer.echo(f"wrote {targets[0]}")
        return
    # A batch goes on past a bad photo (one error line each) and fails at the end, so that one
    # damaged scan does not stop an archive's night run.
    failures = 0
    for path, target in tqdm(list(zip(paths, targets)), desc="colorizing", unit="photo"):
        try:
            result = colorizer.colorize(path, points=point_list, histogram=histogram,
                                        saturation=extra.get("saturation"), size=size)
            save_image_atomic(result, target)
        except CunetError as error:
            failures += 1
            tqdm.write(f"error: {error}", file=sys.stderr)
    if failures:
        raise CunetError(f"{failures} of {len(paths)} photos failed; the others were written")


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option(help="TOML file of training options (see configs/).")] = None,
    data: Annotated[Optional[str], typer.Option(help="manifest.csv (train/val split) or a folder of colour photos.")] = None,
    out_dir: Annotated[Optional[str], typer.Option(help="Run folder: checkpoints and log; an existing run resumes.")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Model preset: small or paper.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Override the preset's width.")] = None,
    activation: Annotated[Optional[str], typer.Option(help="sigmoid, relu or leaky-relu.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Total optimizer steps (sets the LR schedule).")] = None,
    stop_after: Annotated[Optional[int], typer.Option(help="Stop after this many steps in this run (resume later).")] = None,
    stop_after_minutes: Annotated[Optional[float], typer.Option(
        help="Stop once the run has trained this long in all, resumes included (equal-budget trials).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Photos per step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (AdamW).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="huber or l2.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, bf16 or fp32.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for PyTorch (0 = its default).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for initial weights, order, crops and hints.")] = None,
    init_from: Annotated[Optional[str], typer.Option(help="Start a new run from these weights (fine-tuning).")] = None,
) -> None:
    """Train (or resume) a CU-net on colour photos with simulated hints."""
    from cunet.train import TrainConfig, train as run_training

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
    checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint (last.safetensors).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Weights file to write (.safetensors).")],
    full_precision: Annotated[bool, typer.Option(help="Keep fp32 weights instead of fp16.")] = False,
    decode: Annotated[str, typer.Option(
        help="Default decoding stored with the weights: regression, annealed (distribution head) or blend.")] = "regression",
    temperature: Annotated[float, typer.Option(help="Annealed-mean temperature (1 = mean, towards 0 = mode).")] = 0.38,
    blend: Annotated[float, typer.Option(help="Share of the annealed mean in the blend decoding.")] = 0.5,
) -> None:
    """Turn a training checkpoint into a small weights file for `colorize --model`."""
    from cunet.train import export_weights

    if out.suffix != ".safetensors":
        raise CunetError(f"{out}: weights files end in .safetensors")
    export_weights(checkpoint, out, half=not full_precision, decode=decode, temperature=temperature, blend=blend)
    typer.echo(f"wrote {out}")


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
    global_: Annotated[str, typer.Option("--global", help="Global-hint settings: none (automatic), gt (oracle histogram).")] = "none,gt",
    methods: Annotated[str, typer.Option(help="Methods: cunet, gray, reinhard, welsh, levin.")] = "cunet,gray,reinhard,welsh,levin",
    model: Annotated[Optional[Path], typer.Option(help="Weights or checkpoint file; default: the bundled model.")] = None,
    decode: Annotated[Optional[str], typer.Option(
        help="How cunet turns its output into colour: regression, annealed or blend (default: the model's own).")] = None,
    split: Annotated[str, typer.Option(help="Manifest split to use.")] = "val",
    by_source: Annotated[bool, typer.Option(
        "--by-source/--pooled",
        help="Group photos by source (manifest column, else folder) and headline the macro average; "
        "--pooled: one group.")] = True,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N photos of each source (sorted order).")] = None,
    out: Annotated[Path, typer.Option(help="Report folder: report.json, report.md, psnr_vs_points.png.")] = Path("eval"),
) -> None:
    """Measure cunet and the classical baselines on photos with ground truth (256x256 protocol)."""
    from cunet.colorizer import Colorizer
    from cunet.evaluate import evaluate as run_evaluation, evaluation_set, write_report

    method_list = _split_list(methods)
    paths, sources = evaluation_set(data, split, limit, by_source)
    colorizer = Colorizer.from_pretrained(model, decode=decode) if "cunet" in method_list else None
    report = run_evaluation(paths, method_list, _split_list(points, int), _split_list(global_), colorizer,
                            sources=sources)
    report["model"] = str(model) if model else "bundled default"
    if colorizer is not None:
        report["decode"] = colorizer.decode
    write_report(report, out)
    typer.echo(f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'psnr_vs_points.png'}")


@app.command()
def figure(
    images: Annotated[list[str], typer.Argument(help="Photos, folders or globs.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Grid image to write (.png).")],
    methods: Annotated[str, typer.Option(help="Methods, in column order.")] = "cunet,levin,reinhard",
    points: Annotated[int, typer.Option(help="Ground-truth points per photo (colour photos only).")] = 0,
    black_and_white: Annotated[bool, typer.Option("--bw", help="Real black-and-white photos: no ground-truth column.")] = False,
    reference: Annotated[Optional[Path], typer.Option(help="Colour reference for the transfer baselines and cunet's global hint.")] = None,
    model: Annotated[Optional[Path], typer.Option(help="Weights or checkpoint file; default: the bundled model.")] = None,
) -> None:
    """Side-by-side grid like the paper's Figures 13-14: input | each method | ground truth."""
    from cunet.colorizer import Colorizer
    from cunet.evaluate import figure_grid
    from cunet.io import save_image_atomic

    method_list = _split_list(methods)
    paths = expand_inputs(images)
    colorizer = Colorizer.from_pretrained(model) if "cunet" in method_list else None
    grid = figure_grid(paths, method_list, colorizer, points=points, ground_truth=not black_and_white, reference=reference)
    save_image_atomic(grid, out)
    typer.echo(f"wrote {out}")


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


def main() -> None:
    """Console entry point: CunetError -> one line on stderr, exit 2."""
    try:
        app()
    except CunetError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
