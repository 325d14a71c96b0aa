"""Every input gets a clear answer: one CunetError (CLI: one `error:` line, exit 2) or a correct
result, never a traceback, a runaway allocation or a half-written output (issue 9's table, row by row)."""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cunet.color import join_lab, rgb_to_lab
from cunet.colorizer import Colorizer, working_shape
from cunet.errors import CunetError
from cunet.hints import Hints, PointHint, hints_from_json, load_hints_file, parse_points
from cunet.io import MAX_PIXELS, load_photo
from cunet.join import Luminance, join_full_resolution
from tests.test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


@pytest.fixture
def gray_photo(tmp_path, astronaut):
    path = tmp_path / "old.png"
    Image.fromarray(astronaut[:120, :160]).convert("L").save(path)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but holds none: what a decompression bomb's header says."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# -- bounded memory -------------------------------------------------------------------------------

def test_the_working_shape_of_a_thin_photo_is_capped_on_its_long_side():
    assert working_shape(3, 20000, 128) == (8, 1024)
    assert working_shape(20000, 3, 128) == (1024, 8)
    assert working_shape(1000, 6000, 128) == (128, 768)  # 1:6 is within the cap
    assert working_shape(1000, 10000, 128) == (104, 1024)


def test_a_thin_photo_is_coloured_at_its_own_size(colorizer, tmp_path):
    path = tmp_path / "thin.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 20000).astype(np.uint8), (3, 1))).save(path)
    result = colorizer.colorize(path)
    assert result.size == (20000, 3) and result.mode == "RGB"


@pytest.mark.parametrize("strip_pixels", [1, 500, 10**9])
def test_the_strip_join_equals_the_whole_image_join(astronaut, strip_pixels):
    rgb = astronaut[:150, :97].astype(np.float32) / 255
    ab = torch.randn(1, 2, 24, 16) * 40
    whole = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    up = F.interpolate(ab, size=rgb.shape[:2], mode="bilinear", align_corners=False)
    expected = join_lab(rgb_to_lab(whole)[:, :1], up)[0].permute(1, 2, 0).numpy()
    expected = np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8)
    joined = join_full_resolution(rgb, ab, strip_pixels=strip_pixels)
    assert joined.dtype == np.uint8 and joined.shape == (150, 97, 3)
    assert np.abs(joined.astype(int) - expected).max() <= 1


def test_joining_a_photos_kept_luminance_equals_joining_the_photo(astronaut):
    rgb = astronaut[:150, :97].astype(np.float32) / 255
    ab = torch.randn(1, 2, 24, 16) * 40
    assert np.array_equal(join_full_resolution(Luminance.of(rgb), ab, strip_pixels=500),
                          join_full_resolution(rgb, ab, strip_pixels=500))


def test_a_photo_over_the_pixel_limit_is_refused_from_its_header_without_pil_warnings(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(15000, 15000))
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning, PIL's DecompressionBombWarning included, fails the test
        with pytest.raises(CunetError, match=r"bomb.png: image too large \(225 MP; the limit is 150 MP\)"):
            load_photo(path)
    assert Image.MAX_IMAGE_PIXELS == limit_before
    code, out, err = run(monkeypatch, capsys, "colorize", path, "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, "image too large")
    assert not (tmp_path / "o.png").exists()


def test_a_photo_between_pils_warning_and_cunets_limit_gives_no_pil_warning(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_header(12000, 8000))  # 96 MP: over PIL's 89 MP warning, under cunet's limit
    assert 12000 * 8000 <= MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CunetError, match="not a readable image"):  # the header promises pixels it lacks
            load_photo(path)


def test_an_array_over_the_pixel_limit_is_refused_before_conversion():
    huge = np.broadcast_to(np.zeros(1, np.uint8), (15000, 15000))  # no memory behind it
    with pytest.raises(CunetError, match="image too large"):
        load_photo(huge)


# -- one validated hint value ---------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("1.2.3,10,#ff0000", "bad point '1.2.3,10,#ff0000'"),
    (";", "no points"),
    ("  ", "no points"),
    ("10,10,#ff0000,2.7", "point size must be a whole number"),
    ("10,10,#ff0000,0", "point size 0 out of range"),
    ("nan,10,#ff0000", "bad point"),
])
def test_bad_point_text_is_a_clear_error(text, message):
    with pytest.raises(CunetError, match=message):
        parse_points(text)


def test_point_text_accepts_signs_spaces_short_colours_and_a_trailing_separator():
    points = parse_points(" 10 , +20.5 , #f00 , 5 ; 3,4,#00ff00;")
    assert [(p.x, p.y, p.size) for p in points] == [(10.0, 20.5, 5), (3.0, 4.0, 3)]
    assert points[0].a == pytest.approx(PointHint.from_rgb(0, 0, "#ff0000").a)


@pytest.mark.parametrize("document, message", [
    ({"points": 5}, "hints.json: points must be a list"),
    ({"points": [{"x": 1, "y": 2, "color": "#ff0000", "size": 2.7}]}, r"hints.json: points\[0\]: point size must be a whole number"),
    ({"points": [{"x": 1, "y": 2, "color": 255}]}, r"hints.json: points\[0\]: bad colour 255"),
    ({"points": [{"x": True, "y": 2, "color": "#ff0000"}]}, r"points\[0\]: point x must be a finite number"),
    ({"points": [{"x": 1, "y": 2}]}, r"points\[0\]: needs a color"),
    ({"points": ["10,10,#ff0000"]}, r"points\[0\]: expected an object"),
    ({"saturation": True}, "hints.json: saturation must be a number in \\[0, 1\\], got True"),
    ({"saturation": 1.5}, "saturation must be a number in \\[0, 1\\]"),
    ({"reference": 42}, "hints.json: reference must be the path of a colour photo, got 42"),
    ({"reference": "missing.jpg"}, "hints.json: reference '.*missing.jpg': no such file"),
    ({"histogram": [1, 2, 3]}, "hints.json: histogram must have 261 bins"),
    ({"histogram": [-1.0] * 261}, "histogram must be non-negative"),
    ({"colour": "#ff0000"}, "unknown hint keys \\['colour'\\]"),
    ([1, 2], "hints must be a JSON object"),
])
def test_every_bad_hint_names_the_file_and_the_hint(tmp_path, document, message):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CunetError, match=message):
        load_hints_file(path)


def test_a_hints_file_holds_points_saturation_histogram_and_a_reference_beside_it(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "ref.png")
    path = tmp_path / "hints.json"
    document = {"points": [{"x": 5, "y": 6, "color": "#2050a0", "size": 4}, {"x": 1, "y": 2, "a": 10, "b": -20}],
                "saturation": 0.25, "reference": "ref.png", "histogram": [1.0] * 261}
    path.write_text(json.dumps(document))
    hints = load_hints_file(path)
    assert [(p.x, p.y, p.size) for p in hints.points] == [(5.0, 6.0, 4), (1.0, 2.0, 3)]
    assert (hints.points[1].a, hints.points[1].b) == (10.0, -20.0)
    assert hints.saturation == 0.25 and hints.reference == tmp_path / "ref.png" and hints.histogram.shape == (261,)
    again = hints_from_json(json.loads(json.dumps(hints.to_json())), "again")
    assert again.points == hints.points and again.saturation == 0.25


@pytest.mark.parametrize("make, message", [
    (lambda: PointHint(1, 2, 0, 0, size=60), "point size 60 out of range"),
    (lambda: PointHint(1, 2, 0, 0, size=True), "point size must be a whole number"),
    (lambda: PointHint(float("inf"), 2, 0, 0), "point x must be a finite number"),
    (lambda: PointHint(1, 2, 300, 0), "point a\\* must be a number in \\[-128, 128\\]"),
    (lambda: PointHint.from_rgb(1, 2, "#zzzzzz"), "bad colour '#zzzzzz'"),
    (lambda: PointHint.from_rgb(1, 2, (256, 0, 0)), "bad colour"),
    (lambda: Hints(points=[(10, 10)]), "point 0: expected a PointHint or \\(x, y, '#rrggbb'\\[, size\\]\\)"),
    (lambda: Hints(saturation=True), "saturation must be a number"),
])
def test_the_api_checks_hints_with_the_same_messages(make, message):
    with pytest.raises(CunetError, match=message):
        make()


def test_cunet_errors_are_value_errors_for_api_callers():
    with pytest.raises(ValueError):
        PointHint(1, 2, 0, 0, size=60)


# -- the Python API -------------------------------------------------------------------------------

@pytest.mark.parametrize("source, message", [
    (None, "a photo must be a path, bytes, PIL image or numpy array, got NoneType"),
    (b"not an image at all", "19-byte image: not a readable image"),
    (42, "got int"),
])
def test_colorize_refuses_what_is_not_a_photo(colorizer, source, message):
    with pytest.raises(CunetError, match=message):
        colorizer.colorize(source)


def test_colorize_reads_encoded_bytes(colorizer, gray_photo):
    assert colorizer.colorize(gray_photo.read_bytes()).size == (160, 120)


def test_a_folder_is_not_a_photo(colorizer, tmp_path):
    with pytest.raises(CunetError, match="is a folder, not a photo"):
        colorizer.colorize(tmp_path)


def test_points_may_be_plain_tuples_with_css_colours(colorizer, astronaut):
    gray = astronaut[:64, :64].mean(axis=2).astype(np.uint8)
    as_tuples = np.asarray(colorizer.colorize(gray, points=[(10, 10, "#f00"), (30, 30, "#00f", 5)]))
    as_points = np.asarray(colorizer.colorize(gray, points=[PointHint.from_rgb(10, 10, (255, 0, 0)),
                                                            PointHint.from_rgb(30, 30, "#0000ff", 5)]))
    assert np.array_equal(as_tuples, as_points)


@pytest.mark.parametrize("size", [0, -5, 15, 100000, 64.0, True])
def test_a_working_size_out_of_range_is_refused(colorizer, astronaut, size):
    with pytest.raises(CunetError, match="working size must be a whole number of pixels from 16 to 1024"):
        colorizer.colorize(astronaut[:32, :32], size=size)


def test_hints_and_their_keyword_parts_are_not_mixed(colorizer, astronaut):
    with pytest.raises(CunetError, match="not both"):
        colorizer.colorize(astronaut[:32, :32], Hints(saturation=0.5), saturation=0.2)


# -- multi-frame files ----------------------------------------------------------------------------

@pytest.fixture
def animated(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(np.full((24, 32), value, np.uint8)) for value in (40, 200, 120)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


def test_a_multi_frame_file_says_so_and_colours_the_first_frame(monkeypatch, capsys, animated, tiny_model_file, tmp_path):
    code, out, err = run(monkeypatch, capsys, "colorize", animated, "-o", tmp_path / "o.png", "--model", tiny_model_file)
    assert code == 0
    assert err == f"note: {animated} has 3 frames; colouring the first (--all-frames colours each)\n"
    assert load_photo(animated).frames == 3 and Image.open(tmp_path / "o.png").size == (32, 24)


def test_all_frames_colours_each_frame(monkeypatch, capsys, animated, tiny_model_file, tmp_path):
    code, out, err = run(monkeypatch, capsys, "colorize", animated, "-o", tmp_path / "o.png", "--all-frames",
                         "--model", tiny_model_file)
    assert code == 0 and err == ""
    lightness = [np.asarray(Image.open(tmp_path / f"o_frame{i}.png").convert("L")).mean() for i in (1, 2, 3)]
    assert lightness[0] < lightness[2] < lightness[1]


def test_a_multi_page_tiff_has_its_pages_as_frames(tmp_path):
    path = tmp_path / "pages.tif"
    pages = [Image.fromarray(np.full((10, 12), value, np.uint8)) for value in (10, 250)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert load_photo(path).frames == 2
    assert load_photo(path, frame=1).rgb.mean() == pytest.approx(250 / 255)
    with pytest.raises(CunetError, match="has no frame 3"):
        load_photo(path, frame=2)


# -- the command line -----------------------------------------------------------------------------

@pytest.mark.parametrize("points, message", [
    ("1.2.3,10,#ff0000", "bad point '1.2.3,10,#ff0000'"),
    (";", "--points: no points"),
])
def test_bad_points_on_the_command_line_write_nothing(monkeypatch, capsys, gray_photo, tmp_path, points, message):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png", "--points", points)
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "o.png").exists()


def test_a_bad_hints_file_on_the_command_line_names_it(monkeypatch, capsys, gray_photo, tmp_path):
    hints = tmp_path / "h.json"
    hints.write_text('{"points": 5}')
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png", "--hints", hints)
    assert_one_line_error(code, err, f"{hints}: points must be a list")


def test_a_bad_working_size_is_refused_before_any_work(monkeypatch, capsys, gray_photo, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png", "--size", "0")
    assert_one_line_error(code, err, "working size must be a whole number")


@pytest.mark.parametrize("args, message", [
    (["--activation", "gelu"], "activation must be one of"),
    (["--steps", "0"], "steps must be > 0"),
    (["--preset", "huge"], "unknown preset 'huge'"),
])
def test_a_bad_training_option_is_one_line_and_makes_no_run_folder(monkeypatch, capsys, photo_folder, tmp_path, args, message):
    run_dir = tmp_path / "run"
    code, _, err = run(monkeypatch, capsys, "train", "--data", photo_folder, "--out-dir", run_dir, *args)
    assert_one_line_error(code, err, message)
    assert not run_dir.exists()


@pytest.mark.parametrize("table, message", [
    ("[hints]\nmax_patch = 30\n", "max_patch must lie in 1..9"),
    ("[hints]\npoint_probability = \"often\"\n", "point_probability must be float"),
    ("[hints]\nsparkle = 1\n", "unknown [hints] options ['sparkle']"),
    ("batch_size = 2.5\n", "batch_size must be int"),
])
def test_a_bad_training_config_file_is_one_line_and_makes_no_run_folder(monkeypatch, capsys, photo_folder, tmp_path,
                                                                        table, message):
    config = tmp_path / "bad.toml"
    run_dir = tmp_path / "run"
    config.write_text(f'data = "{photo_folder}"\nout_dir = "{run_dir}"\n{table}')
    code, _, err = run(monkeypatch, capsys, "train", "--config", config)
    assert_one_line_error(code, err, message)
    assert not run_dir.exists()


def test_training_on_missing_data_makes_no_run_folder(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "train", "--data", tmp_path / "nowhere", "--out-dir", tmp_path / "run")
    assert_one_line_error(code, err, "no such data")
    assert not (tmp_path / "run").exists()


def test_version_and_short_help(monkeypatch, capsys):
    from importlib.metadata import version

    assert run(monkeypatch, capsys, "--version")[:2] == (0, f"cunet {version('cunet')}\n")
    code, out, _ = run(monkeypatch, capsys, "colorize", "-h")
    assert code == 0 and "Usage: cunet colorize" in out


def test_help_renders_flags_plainly_with_the_point_and_hints_formats(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "colorize", "--help")
    assert code == 0 and "INPUTS..." in out and "<bool>" not in out and "{inputs}" not in out
    flat = " ".join(out.replace("│", " ").split())
    assert "'x,y,#rrggbb[,size]' separated by ';'" in flat and '"saturation": 0.3' in flat
    assert "[default: the bundled model]" in flat


def test_train_help_shows_every_default(monkeypatch, capsys):
    from cunet.train_config import TrainConfig

    code, out, _ = run(monkeypatch, capsys, "train", "--help")
    flat = " ".join(out.replace("│", " ").split())
    for option, value in [("--steps", TrainConfig.steps), ("--batch-size", TrainConfig.batch_size), ("--lr", TrainConfig.lr)]:
        assert f"[default: {value}]" in flat, option
    assert flat.count("[default:") == 15  # every option but --data (required without --config) and --help


@pytest.mark.parametrize("args, message", [
    (["colorize", "--frobnicate", "x.png"], "error: No such option: --frobnicate"),
    (["colorize"], "error: Missing argument 'INPUTS...'"),
    (["colorize", "x.png", "--size", "big"], "error: Invalid value for '--size'"),
    (["paint"], "error: No such command 'paint'"),
])
def test_usage_errors_are_one_error_line_and_exit_2(monkeypatch, capsys, args, message):
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith(message) and "╭" not in err


def test_a_huge_bad_value_gives_a_short_message():
    with pytest.raises(CunetError) as caught:
        hints_from_json({"saturation": list(range(100000))}, "hints.json")
    assert len(str(caught.value)) < 150
