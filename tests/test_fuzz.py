"""Property-based fuzzing (Hypothesis) of everything that reads user input: the point text, hints
documents, photo bytes and images of every PIL mode. The property is always the same: a valid
result or a CunetError, never another exception, and never a partial output file."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.hints import MAX_PATCH, Hints, hints_from_json, parse_points
from cunet.io import Photo, load_photo
from tests.test_cli import run

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

point_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789.,;#-+ abcdefABCDEFxyz\t", max_size=60),
    st.builds(lambda x, y, c, s: f"{x},{y},#{c}" + (f",{s}" if s is not None else ""),
              st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 5000),
              st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 5000),
              st.text(alphabet="0123456789abcdefg", min_size=0, max_size=7),
              st.none() | st.integers(-3, 20) | st.floats()),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
hint_points = st.lists(st.dictionaries(st.sampled_from(["x", "y", "color", "size", "a", "b", "z"]), json_values,
                                       max_size=6), max_size=4)
hint_documents = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"points": hint_points | json_values, "saturation": json_values,
                                        "reference": json_values, "histogram": json_values}),
)


@FUZZ
@given(point_text)
def test_point_text_gives_points_or_a_cunet_error(text):
    try:
        points = parse_points(text)
    except CunetError as error:
        assert "\n" not in str(error)
        return
    assert points and all(1 <= p.size <= MAX_PATCH and np.isfinite([p.x, p.y, p.a, p.b]).all() for p in points)


@FUZZ
@given(hint_documents)
def test_hint_documents_give_hints_or_a_cunet_error(document):
    try:
        hints = hints_from_json(document, "fuzz.json")
    except CunetError as error:
        assert str(error).startswith("fuzz.json: ") and "\n" not in str(error)
        return
    assert isinstance(hints, Hints)
    assert hints.saturation is None or 0 <= hints.saturation <= 1


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_give_a_photo_or_a_cunet_error(data):
    try:
        photo = load_photo(data)
    except CunetError:
        return
    assert photo.rgb.dtype == np.float32 and photo.rgb.ndim == 3 and 0 <= photo.rgb.min() <= photo.rgb.max() <= 1


@FUZZ
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00", b"BM", b"RIFF"]),
       st.binary(max_size=200))
def test_truncated_files_with_real_signatures_give_a_photo_or_a_cunet_error(signature, rest):
    try:
        load_photo(signature + rest)
    except CunetError:
        pass


MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "LA", "PA", "RGBX", "RGBa", "La",
         "I;16", "I;16B", "I;16L"]
FORMATS = ["PNG", "TIFF", "WEBP", "BMP", "GIF", "JPEG"]


def random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    bits = {"1": 1, "I": 32, "F": 32, "I;16": 16, "I;16B": 16, "I;16L": 16}.get(mode, 8)
    size = (width * bits + 7) // 8 * height * bands if mode == "1" else width * height * bands * bits // 8
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    image = Image.frombytes(mode, (width, height), data)
    if mode == "F":  # random bytes make NaNs and huge floats: photos in F mode hold values in [0, 1]
        image = Image.fromarray(np.random.default_rng(seed).random((height, width), dtype=np.float32))
    return image


@FUZZ
@given(st.sampled_from(MODES), st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**31))
def test_images_of_every_mode_give_a_photo_or_a_cunet_error(mode, width, height, seed):
    image = random_image(mode, width, height, seed)
    try:
        photo = load_photo(image)
    except CunetError:
        return
    assert isinstance(photo, Photo) and photo.size == (width, height)
    assert np.isfinite(photo.rgb).all() and 0 <= photo.rgb.min() <= photo.rgb.max() <= 1


@FUZZ
@given(st.sampled_from(MODES), st.sampled_from(FORMATS), st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**31))
def test_saved_files_of_every_mode_and_format_give_a_photo_or_a_cunet_error(mode, fmt, width, height, seed):
    buffer = io.BytesIO()
    try:
        random_image(mode, width, height, seed).save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # PIL cannot write this mode in this format: nothing a user could hand us
    try:
        photo = load_photo(buffer.getvalue())
    except CunetError:
        return
    assert photo.size == (width, height) and 0 <= photo.rgb.min() <= photo.rgb.max() <= 1


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MODES), st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**31))
def test_colorize_gives_an_image_of_the_input_size_or_a_cunet_error(colorizer, mode, width, height, seed):
    try:
        result = colorizer.colorize(random_image(mode, width, height, seed))
    except CunetError:
        return
    assert result.size == (width, height) and result.mode in ("RGB", "RGBA")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(point_text, hint_documents)
def test_the_command_line_writes_a_whole_output_or_nothing(monkeypatch, capsys, tmp_path_factory, tiny_model_file,
                                                            points, document):
    folder = tmp_path_factory.mktemp("fuzz")
    photo = folder / "in.png"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(photo)
    hints = folder / "hints.json"
    hints.write_text(json.dumps(document))
    target = folder / "out.png"
    code, _, err = run(monkeypatch, capsys, "colorize", photo, "-o", target, "--points", points, "--hints", hints,
                       "--model", tiny_model_file)
    if code == 0:
        assert Image.open(target).size == (30, 20)
    else:
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
        assert not target.exists()
    assert sorted(p.name for p in folder.iterdir()) in (["hints.json", "in.png"], ["hints.json", "in.png", "out.png"])
