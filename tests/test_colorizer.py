
import numpy as np
import pytest
import torch
from PIL import Image

from cunet.color import rgb_to_lab
from cunet.colorizer import Colorizer, bundled_weights, working_shape
from cunet.errors import CunetError
from cunet.hints import Hints, PointHint


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


def lightness(image: Image.Image) -> torch.Tensor:
    rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255.0
    return rgb_to_lab(rgb)[0]


def test_output_has_the_full_input_size_and_keeps_its_lightness(colorizer, astronaut):
    gray = Image.fromarray(astronaut).convert("L").resize((301, 187))
    result = colorizer.colorize(gray)
    assert result.size == (301, 187) and result.mode == "RGB"
    # L* survives up to 8-bit rounding and gamut clipping of the predicted colour.
    assert (lightness(result) - lightness(gray)).abs().median() < 0.5


def test_working_shape_keeps_aspect_on_multiples_of_eight():
    assert working_shape(256, 256, 128) == (128, 128)
    assert working_shape(600, 400, 128) == (192, 128)
    assert working_shape(187, 301, 128) == (128, 208)


def test_the_model_file_sets_the_working_size(colorizer):
    assert colorizer.working_size == 64


@pytest.mark.parametrize(
    "make",
    [
        lambda a: Image.fromarray(a).convert("L"),
        lambda a: Image.fromarray(a),
        lambda a: np.asarray(Image.fromarray(a).convert("L")),
        lambda a: np.asarray(Image.fromarray(a).convert("L")).astype(np.uint16) * 257,
        lambda a: np.asarray(Image.fromarray(a).convert("L")).astype(np.float32) / 255.0,
        lambda a: np.repeat(np.asarray(Image.fromarray(a).convert("L"))[:, :, None], 3, axis=2),
    ],
    ids=["pil-gray", "pil-rgb", "uint8-2d", "uint16-2d", "float-2d", "rgb-that-is-gray"],
)
def test_every_input_kind_gives_the_same_sized_rgb_output(colorizer, astronaut, make):
    result = colorizer.colorize(make(astronaut[:96, :80]))
    assert result.size == (80, 96) and result.mode == "RGB"


def test_a_sepia_photo_is_coloured_from_its_lightness_only(colorizer, astronaut):
    gray = np.asarray(Image.fromarray(astronaut[:64, :64]).convert("L")).astype(np.float32) / 255.0
    sepia = np.clip(np.stack([gray * 1.07, gray * 0.74 + 0.1, gray * 0.43 + 0.05], axis=-1), 0, 1)
    neutral = np.repeat(np.asarray(to_gray_of(sepia))[:, :, None], 3, axis=2)
    difference = np.asarray(colorizer.colorize(sepia), int) - np.asarray(colorizer.colorize(neutral), int)
    assert np.abs(difference).max() <= 1  # the same photo up to float rounding of L*


def to_gray_of(rgb: np.ndarray) -> np.ndarray:
    """The neutral float image with the same L* as `rgb`."""
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))
    lab[1:] = 0
    from cunet.color import lab_to_rgb

    return lab_to_rgb(lab)[0].numpy()


def test_sixteen_bit_png_and_alpha_inputs(colorizer, astronaut, tmp_path):
    gray16 = (np.asarray(Image.fromarray(astronaut[:64, :48]).convert("L")).astype(np.uint16) * 257)
    Image.fromarray(gray16).save(tmp_path / "deep.png")
    assert colorizer.colorize(tmp_path / "deep.png").size == (48, 64)
    rgba = Image.fromarray(astronaut[:64, :48]).convert("LA")
    rgba.putalpha(Image.new("L", rgba.size, 77))
    result = colorizer.colorize(rgba)
    assert result.mode == "RGBA" and np.all(np.asarray(result)[:, :, 3] == 77)


def test_exif_orientation_is_honoured(colorizer, astronaut, tmp_path):
    image = Image.fromarray(astronaut[:64, :96]).convert("L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert colorizer.colorize(tmp_path / "rotated.jpg").size == (64, 96)


def test_points_outside_the_photo_are_a_clear_error(colorizer, astronaut):
    with pytest.raises(CunetError, match="outside the 64x32 image"):
        colorizer.colorize(astronaut[:32, :64], points=[PointHint(x=64, y=3, a=10, b=10)])


class RecordingRuntime:
    """A runtime that notes what the network is given and passes it on."""

    def __init__(self, inner) -> None:
        self.inner, self.encoded, self.decoded = inner, [], []

    def encode(self, inputs):
        self.encoded.append(inputs)
        return self.inner.encode(inputs)

    def decode(self, features, global_hint):
        self.decoded.append(global_hint)
        return self.inner.decode(features, global_hint)


def network_call(colorizer: Colorizer, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Run colorize and return what the network was given: (inputs, global hint)."""
    recorder = RecordingRuntime(colorizer.runtime)
    colorizer._runtime = recorder
    try:
        colorizer.colorize(*args, **kwargs)
    finally:
        colorizer._runtime = recorder.inner
    return recorder.encoded[0], recorder.decoded[0]


def test_points_reach_the_network_scaled_to_the_working_size(colorizer, astronaut):
    gray = Image.fromarray(astronaut[:128, :256]).convert("L")  # working shape 64 x 128: half size
    inputs, _ = network_call(colorizer, gray, points=[PointHint(x=101, y=41, a=16, b=-8, size=6)])  # in gamut there
    assert inputs.shape == (1, 4, 64, 128)
    mask = inputs[0, 3]
    assert mask.sum() == 9 and torch.equal(mask[19:22, 49:52], torch.ones(3, 3))
    assert torch.all(inputs[0, 1][mask == 1] == 0.125) and torch.all(inputs[0, 2][mask == 1] == -0.0625)


def test_a_point_reaches_the_network_with_the_colour_it_can_show_at_its_lightness(colorizer):
    light = np.full((64, 64), 235, np.uint8)  # L* about 93: no deep red exists there
    inputs, _ = network_call(colorizer, light, points=[PointHint.from_rgb(30, 30, "#c01010", size=1)])
    a, b = inputs[0, 1, 30, 30] * 128, inputs[0, 2, 30, 30] * 128
    asked = PointHint.from_rgb(0, 0, "#c01010")
    assert 0 < a < asked.a / 2 and 0 < b < asked.b / 2
    assert abs(float(a / b) - asked.a / asked.b) < 0.01  # the same hue, less chroma


def test_a_reference_photo_becomes_the_global_histogram_hint(colorizer, astronaut):
    from cunet.gamut import num_bins

    gray = Image.fromarray(astronaut[:128, :128]).convert("L")
    _, plain = network_call(colorizer, gray)
    _, guided = network_call(colorizer, gray, reference=astronaut)
    q = num_bins()
    assert plain.abs().sum() == 0
    assert guided[0, q] == 1 and guided[0, :q].sum().item() == pytest.approx(1.0)
    assert torch.equal(guided[0, :q], colorizer.histogram_of(astronaut))


def test_an_unreadable_file_is_a_clear_error(colorizer, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(CunetError, match="not a readable image"):
        colorizer.colorize(tmp_path / "bad.jpg")


def test_a_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(CunetError, match="no such model file"):
        Colorizer.from_pretrained(tmp_path / "none.safetensors")


def test_the_bundled_model_colours_a_real_photo(astronaut):
    if not bundled_weights().is_file():
        pytest.fail("the bundled default model is missing from the package")
    colorizer = Colorizer.from_pretrained()
    gray = Image.fromarray(astronaut).convert("L")
    result = colorizer.colorize(gray)
    lab = rgb_to_lab(torch.from_numpy(np.array(result)).permute(2, 0, 1).float() / 255.0)
    assert result.size == (512, 512)
    assert torch.linalg.vector_norm(lab[1:], dim=0).mean() > 3.0  # it adds colour, not gray


def test_a_prepared_photo_keeps_its_point_spread_and_colours_as_a_fresh_photo(astronaut):
    colorizer = Colorizer.from_pretrained()  # the bundled model spreads its points
    prepared = colorizer.prepare(astronaut)
    colorizer.predict_ab(prepared, Hints((PointHint(100, 200, 40.0, 30.0, 3),)))
    kept = prepared.domain_transform(colorizer.working_size)
    moved = Hints((PointHint(300, 100, -20.0, 50.0, 3),))
    again = colorizer.predict_ab(prepared, moved)
    assert prepared.domain_transform(colorizer.working_size) is kept
    assert torch.equal(again, colorizer.predict_ab(astronaut, moved))


def test_decoding_defaults_to_the_choice_stored_with_the_weights(head_model_file):
    colorizer = Colorizer.from_pretrained(head_model_file)
    assert (colorizer.decode, colorizer.temperature, colorizer.blend) == ("blend", 0.5, 0.25)
    assert Colorizer.from_pretrained(head_model_file, decode="annealed").decode == "annealed"


def test_the_blend_lies_between_the_regression_and_the_annealed_mean(head_model_file, astronaut):
    from cunet.io import load_photo

    photo = load_photo(astronaut[::8, ::8])
    points = [PointHint(x=20, y=30, a=50.0, b=20.0)]
    outputs = {decode: Colorizer.from_pretrained(head_model_file, decode=decode).predict_ab(photo, Hints(tuple(points)), size=32)
               for decode in ("regression", "annealed", "blend")}
    expected = 0.25 * outputs["annealed"] + 0.75 * outputs["regression"]
    assert torch.allclose(outputs["blend"], expected, atol=1e-4)
    assert not torch.allclose(outputs["annealed"], outputs["regression"], atol=1.0)


def test_the_distribution_is_a_probability_per_pixel_at_the_working_shape(head_model_file, astronaut):
    from cunet.gamut import num_bins

    probabilities = Colorizer.from_pretrained(head_model_file).distribution(astronaut[::8, ::8])
    assert probabilities.shape == (num_bins(), 32, 32)
    assert torch.allclose(probabilities.sum(dim=0), torch.ones(32, 32), atol=1e-5)


def test_decodings_that_need_a_distribution_head_are_refused_without_one(tiny_model_file, astronaut):
    with pytest.raises(CunetError, match="needs a model with a distribution head"):
        Colorizer.from_pretrained(tiny_model_file, decode="annealed")
    with pytest.raises(CunetError, match="no distribution head"):
        Colorizer.from_pretrained(tiny_model_file).distribution(astronaut)
    with pytest.raises(CunetError, match="decode must be one of"):
        Colorizer.from_pretrained(tiny_model_file, decode="mode")


def test_a_model_whose_global_hint_has_other_bins_is_refused(tmp_path):
    from cunet.checkpoint import save_weights
    from cunet.model import CUNet, CUNetConfig

    path = tmp_path / "other.safetensors"
    save_weights(path, CUNet(CUNetConfig(width=4, activation="relu", global_bins=313)).eval(), {"working_size": 64})
    with pytest.raises(CunetError, match="global hint has 313 bins; cunet's a\\*b\\* gamut has 261"):
        Colorizer.from_pretrained(path)


def test_every_decoding_from_one_network_pass_equals_that_decoding_alone(head_model_file, astronaut):
    from dataclasses import replace

    colorizer = Colorizer.from_pretrained(head_model_file)
    decodings = [("regression", 0.38, 0.0), ("annealed", 0.2, 1.0), ("blend", 0.5, 0.75)]
    together = colorizer.predict_ab_decodings(astronaut, decodings)
    for (decode, temperature, blend), ab in zip(decodings, together):
        alone = replace(colorizer, decode=decode, temperature=temperature, blend=blend).predict_ab(astronaut)
        assert torch.allclose(ab, alone, atol=1e-5)


def test_a_decoding_the_model_cannot_do_is_refused_before_the_network_runs(tiny_model_file, astronaut):
    with pytest.raises(CunetError, match="needs a model with a distribution head"):
        Colorizer.from_pretrained(tiny_model_file).predict_ab_decodings(astronaut, [("annealed", 0.38, 1.0)])


def test_a_chroma_gain_scales_the_automatic_colour_by_exactly_that_factor(colorizer, astronaut):
    from dataclasses import replace

    plain = colorizer.predict_ab(astronaut)
    assert torch.allclose(replace(colorizer, chroma_gain=1.6).predict_ab(astronaut), 1.6 * plain, atol=1e-4)


def test_a_point_keeps_its_exact_colour_under_a_chroma_gain(astronaut):
    from cunet.model import CUNet, CUNetConfig

    torch.manual_seed(0)
    colorizer = Colorizer(CUNet(CUNetConfig(width=8)).eval(), working_size=64, chroma_gain=2.0)
    filled = colorizer.predict_ab(astronaut, Hints((PointHint(300, 200, -40.0, 50.0, size=9),)))
    row, column = round((200 + 0.5) * 64 / 512 - 0.5), round((300 + 0.5) * 64 / 512 - 0.5)
    assert torch.allclose(filled[0, :, row, column], torch.tensor([-40.0, 50.0]), atol=1e-4)


def test_the_chroma_gain_stored_at_export_is_the_default_and_can_be_overridden(tmp_path, tiny_model_file):
    from cunet.train import export_weights

    path = tmp_path / "vivid.safetensors"
    export_weights(tiny_model_file, path, chroma_gain=1.4)
    assert Colorizer.from_pretrained(path).chroma_gain == 1.4
    assert Colorizer.from_pretrained(path, chroma_gain=1.0).chroma_gain == 1.0
    assert Colorizer.from_pretrained(tiny_model_file).chroma_gain == 1.0


@pytest.mark.parametrize("gain", [0.0, -1.0, 3.5, float("nan"), True])
def test_a_chroma_gain_outside_its_range_is_refused(tiny_model_file, gain):
    with pytest.raises(CunetError, match=r"chroma gain must lie in \(0, 3\]"):
        Colorizer.from_pretrained(tiny_model_file, chroma_gain=gain)


def test_a_training_checkpoint_colours_with_the_default_decoding(tmp_path, astronaut):
    from cunet.checkpoint import save_checkpoint
    from cunet.model import CUNet, CUNetConfig

    model = CUNet(CUNetConfig(width=4, global_bins=0))
    save_checkpoint(tmp_path / "last.safetensors", model, torch.optim.AdamW(model.parameters()), 7)
    colorizer = Colorizer.from_pretrained(tmp_path / "last.safetensors")
    assert (colorizer.decode, colorizer.chroma_gain, colorizer.automatic_global) == ("regression", 1.0, "none")
    assert colorizer.colorize(astronaut[::4, ::4]).size == (128, 128)


def test_a_decoding_with_a_gain_from_one_network_pass_equals_that_colorizer_alone(head_model_file, astronaut):
    from dataclasses import replace

    colorizer = Colorizer.from_pretrained(head_model_file)
    decodings = [("regression", 0.38, 0.0, 1.4), ("blend", 0.5, 0.25, 0.7), ("blend", 0.5, 0.25)]
    together = colorizer.predict_ab_decodings(astronaut, decodings)
    for (decode, temperature, blend, *gain), ab in zip(decodings, together):
        alone = replace(colorizer, decode=decode, temperature=temperature, blend=blend, chroma_gain=(gain or [1.0])[0])
        assert torch.allclose(ab, alone.predict_ab(astronaut), atol=1e-4)
