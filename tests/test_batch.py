"""Colouring many photos: the same colours as one at a time, in input order, bad photos alone failing."""

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.batch import colorize_files
from cunet.color import rgb_to_lab
from cunet.colorizer import Colorizer
from cunet.hints import Hints, PointHint
from tests.test_cli import run
from tests.test_runtime import CountingRuntime


@pytest.fixture
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


@pytest.fixture
def folder(tmp_path, astronaut):
    """Three photos of one shape, one of another, one broken file, in this order."""
    gray = Image.fromarray(astronaut).convert("L")
    names = []
    for i, box in enumerate([(0, 0, 200, 160), (50, 40, 250, 200), (100, 100, 300, 260), (0, 0, 120, 300)]):
        path = tmp_path / f"p{i}.png"
        gray.crop(box).save(path)
        names.append(path)
    broken = tmp_path / "p4.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    names.insert(2, broken)
    return names


def test_a_batch_gives_each_photo_the_colours_it_gets_alone_in_input_order(colorizer, folder, tmp_path):
    jobs = [(path, tmp_path / "out" / f"{path.stem}.png") for path in folder]
    (tmp_path / "out").mkdir()
    outcomes = list(colorize_files(colorizer, jobs, threads=2, batch=3))
    assert [o.source for o in outcomes] == folder
    assert [o.error is None for o in outcomes] == [True, True, False, True, True]
    assert "p4.jpg: not a readable image" in outcomes[2].error
    for path, target in jobs:
        if path.suffix == ".png":
            alone = np.asarray(colorizer.colorize(path), dtype=int)
            assert np.abs(np.asarray(Image.open(target), dtype=int) - alone).max() <= 1


def test_photos_of_one_working_shape_share_a_network_pass(colorizer, folder, tmp_path):
    colorizer._runtime = CountingRuntime(colorizer.runtime)
    jobs = [(path, tmp_path / f"{path.stem}_c.png") for path in folder if path.suffix == ".png"]
    assert all(o.error is None for o in colorize_files(colorizer, jobs, batch=8))
    assert colorizer.runtime.encodes == 2  # three of one shape, one of another


def test_a_point_outside_one_photo_fails_that_photo_only(colorizer, folder, tmp_path):
    jobs = [(path, tmp_path / f"{path.stem}_c.png") for path in folder if path.suffix == ".png"]
    hints = Hints((PointHint(110, 250, 40, 40),))  # inside the 120 x 300 photo, below the 200 x 160 ones
    outcomes = list(colorize_files(colorizer, jobs, hints, batch=8))
    assert [o.error is None for o in outcomes] == [False, False, False, True]
    assert outcomes[0].error == "point (110, 250) lies outside the 200x160 image"


def test_the_cli_writes_jpeg_at_the_asked_quality(monkeypatch, capsys, folder, tmp_path, tiny_model_file):
    photos = [str(path) for path in folder if path.suffix == ".png"]
    code, _, err = run(monkeypatch, capsys, "colorize", *photos, "--out-dir", str(tmp_path / "jpg"), "--format", "jpg",
                       "--quality", "60", "--model", str(tiny_model_file))
    assert code == 0, err
    written = sorted(path.name for path in (tmp_path / "jpg").iterdir())
    assert written == ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    assert Image.open(tmp_path / "jpg" / "p0.jpg").format == "JPEG"
    small = (tmp_path / "jpg" / "p0.jpg").stat().st_size
    code, _, err = run(monkeypatch, capsys, "colorize", photos[0], "-o", str(tmp_path / "q95.jpg"), "--model",
                       str(tiny_model_file))
    assert code == 0 and (tmp_path / "q95.jpg").stat().st_size > small


def test_the_cli_chroma_gain_gives_stronger_colour(monkeypatch, capsys, folder, tmp_path, tiny_model_file):
    chroma = {}
    for gain in ("1", "2"):
        out = tmp_path / f"gain{gain}.png"
        code, _, err = run(monkeypatch, capsys, "colorize", str(folder[0]), "-o", str(out), "--chroma-gain", gain,
                           "--model", str(tiny_model_file))
        assert code == 0, err
        lab = rgb_to_lab(torch.from_numpy(np.array(Image.open(out).convert("RGB"))).permute(2, 0, 1).float() / 255)
        chroma[gain] = float(lab[1:].norm(dim=0).mean())
    assert chroma["2"] > 1.5 * chroma["1"] > 0


@pytest.mark.parametrize("args, message", [
    (["--format", "gif2"], "--format 'gif2': use png, jpg, webp or tif"),
    (["--quality", "0"], "--quality 0 out of range: use 1 to 100"),
    (["--backend", "gpu"], "backend must be one of auto, eager, channels-last, bf16, compile, onnx, got 'gpu'"),
    (["--chroma-gain", "5"], "chroma gain must lie in (0, 3], got 5.0"),
])
def test_bad_output_options_are_one_line_errors(monkeypatch, capsys, folder, tmp_path, args, message):
    code, out, err = run(monkeypatch, capsys, "colorize", str(folder[0]), "--out-dir", str(tmp_path / "x"), *args)
    assert code == 2 and err.strip() == f"error: {message}"
