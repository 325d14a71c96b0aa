"""The histogram head: a photo's own colour histogram predicted from its gray version, as a global hint."""

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.checkpoint import load_model
from cunet.colorizer import HINTS_FOR_FULL_WAY, Colorizer
from cunet.errors import CunetError
from cunet.evaluate import evaluate, evaluation_set
from cunet.gamut import num_bins
from cunet.hints import Hints, PointHint
from cunet.model import CUNet, CUNetConfig, HistogramHead
from cunet.train_histogram import cross_entropy, fit_histogram_head, with_histogram_head


def two_kinds_folder(folder, count=32, size=40):
    """Bright photos are red, dark photos are blue: the histogram follows from the gray photo alone."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,source,split"]
    for i in range(count):
        bright = i % 2 == 0
        base = np.array([230, 120, 110] if bright else [40, 50, 150], dtype=float)
        pixels = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:02d}.png")
        lines.append(f"p{i:02d}.png,{'bright' if bright else 'dark'},{'val' if i % 4 < 2 and i >= 24 else 'train'}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def test_pooling_takes_each_channels_mean_and_spread_at_any_shape():
    c4 = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    pooled = HistogramHead.pool(c4)
    assert pooled.shape == (2, 6)
    assert torch.allclose(pooled[:, :3], c4.flatten(2).mean(-1))
    assert torch.allclose(pooled[:, 3:], c4.flatten(2).std(-1, correction=0))


def test_adding_a_head_keeps_every_colouring_the_trunk_gave(tiny_model_file, astronaut):
    base = Colorizer.from_pretrained(tiny_model_file)
    headed = Colorizer(with_histogram_head(base.model), base.working_size)
    assert headed.model.histogram is not None
    assert np.array_equal(np.asarray(base.colorize(astronaut)), np.asarray(headed.colorize(astronaut)))


def test_the_fitted_head_tells_red_bright_photos_from_blue_dark_ones(tiny_model_file, tmp_path):
    manifest = two_kinds_folder(tmp_path / "kinds")
    out = tmp_path / "with_head.safetensors"
    report = fit_histogram_head(tiny_model_file, [str(manifest)], out, crop=32, cache_short_side=40, epochs=60,
                                lr=1e-2, progress=False)
    assert report["val_photos"] == 4 and set(report["val_by_source"]) == {"bright", "dark"}
    assert report["val_cross_entropy"] < report["val_constant_cross_entropy"] - 0.5
    colorizer = Colorizer.from_pretrained(out)
    red = colorizer.predicted_histogram(Image.open(tmp_path / "kinds" / "p00.png").convert("L"))
    blue = colorizer.predicted_histogram(Image.open(tmp_path / "kinds" / "p01.png").convert("L"))
    from cunet.gamut import in_gamut_bins
    bins = in_gamut_bins()
    assert float(red @ bins[:, 0]) > 15 and float(blue @ bins[:, 1]) < -15  # red: a* > 0; blue: b* < 0
    assert float(red.sum()) == pytest.approx(1.0, abs=1e-5)
    model, metadata = load_model(out)
    assert model.config.histogram_head and metadata["info"]["working_size"] == 64
    assert metadata["info"]["histogram_head"]["epochs"] == 60


def test_automatic_colouring_with_the_predicted_global_hint_is_colouring_with_that_histogram(tiny_model_file, astronaut):
    model = with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model)
    predicted = Colorizer(model, 64, automatic_global="predicted")
    plain = Colorizer(model, 64)
    histogram = predicted.predicted_histogram(astronaut)
    assert np.array_equal(np.asarray(predicted.colorize(astronaut)), np.asarray(plain.colorize(astronaut, histogram=histogram)))
    assert not torch.equal(predicted.predict_ab(astronaut), plain.predict_ab(astronaut))


def test_a_given_histogram_still_wins_over_the_predicted_one(tiny_model_file, astronaut):
    model = with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model)
    given = torch.zeros(model.config.global_bins)
    given[3] = 1.0
    assert np.array_equal(np.asarray(Colorizer(model, 64, automatic_global="predicted").colorize(astronaut, histogram=given)),
                          np.asarray(Colorizer(model, 64).colorize(astronaut, histogram=given)))


def test_the_predicted_histogram_ignores_colour_points(tiny_model_file, astronaut):
    colorizer = Colorizer(with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model), 64,
                          automatic_global="predicted")
    alone = colorizer.predicted_histogram(astronaut)
    prepared = colorizer.prepare(astronaut)
    colorizer.colorize(prepared, points=[(100, 100, "#ff0000")])
    assert torch.equal(colorizer.predicted_histogram(prepared), alone)


def test_predicted_global_hint_needs_a_histogram_head(tiny_model_file):
    with pytest.raises(CunetError, match="needs a model with a histogram head"):
        Colorizer.from_pretrained(tiny_model_file, automatic_global="predicted")
    with pytest.raises(CunetError, match="no histogram head"):
        Colorizer.from_pretrained(tiny_model_file).predicted_histogram(np.zeros((16, 16), np.uint8))
    with pytest.raises(CunetError, match="must be one of none, predicted"):
        Colorizer.from_pretrained(tiny_model_file, automatic_global="guess")


def test_evaluate_scores_the_predicted_setting(tiny_model_file, photo_folder):
    colorizer = Colorizer(with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model), 64)
    paths, sources = evaluation_set(photo_folder, "val", limit=2)
    report = evaluate(paths, ["cunet"], [0], ["none", "predicted"], colorizer, progress=False, sources=sources)
    predicted = next(r for r in report["results"] if r["global"] == "predicted")
    assert predicted["n"] == 2 and "psnr_gain" in predicted


def test_cross_entropy_is_smallest_at_the_target():
    target = torch.tensor([[0.7, 0.2, 0.1]])
    assert cross_entropy(target.log(), target) < cross_entropy(torch.zeros(1, 3), target)


def test_a_model_without_a_global_hint_cannot_take_a_histogram_head():
    with pytest.raises(CunetError, match="no global hint"):
        with_histogram_head(CUNet(CUNetConfig(width=4, global_bins=0)))


def test_export_restates_a_weights_files_choices_and_keeps_its_facts(tiny_model_file, tmp_path):
    from cunet.checkpoint import save_weights
    from cunet.train import export_weights

    model = with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model)
    headed = tmp_path / "headed.safetensors"
    save_weights(headed, model, {"working_size": 64, "steps": 7})
    export_weights(headed, tmp_path / "out.safetensors", automatic_global="predicted")
    colorizer = Colorizer.from_pretrained(tmp_path / "out.safetensors")
    assert colorizer.automatic_global == "predicted" and colorizer.info["steps"] == 7 and colorizer.working_size == 64
    assert Colorizer.from_pretrained(tmp_path / "out.safetensors", automatic_global="none").automatic_global == "none"
    with pytest.raises(CunetError, match="needs a model with a histogram head"):
        export_weights(tiny_model_file, tmp_path / "bad.safetensors", automatic_global="predicted")


def test_a_fitted_head_keeps_the_models_gallery_fingerprint(tiny_model_file):
    from cunet.gallery import model_fingerprint

    model = Colorizer.from_pretrained(tiny_model_file).model
    assert model_fingerprint(with_histogram_head(model)) == model_fingerprint(model)


def test_batch_colouring_with_the_predicted_hint_equals_colouring_one_by_one(tiny_model_file, astronaut):
    colorizer = Colorizer(with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model), 64,
                          automatic_global="predicted")
    photos = [colorizer.prepare(astronaut), colorizer.prepare(astronaut[::-1].copy())]
    batched = colorizer.predict_ab_batch(photos)
    for prepared, ab in zip(photos, batched):
        alone = colorizer.predict_ab(colorizer.prepare(prepared.photo))
        assert torch.allclose(ab, alone, atol=1e-4)


def test_a_lower_histogram_temperature_keeps_the_likeliest_colours():
    from cunet.colorizer import sharpened

    histogram = torch.tensor([0.5, 0.3, 0.2])
    assert torch.equal(sharpened(histogram, 1.0), histogram)
    sharp = sharpened(histogram, 0.5)
    assert torch.allclose(sharp, torch.tensor([0.25, 0.09, 0.04]) / 0.38)
    assert float(sharp.sum()) == pytest.approx(1.0)


def test_the_stored_histogram_temperature_sharpens_the_predicted_hint(tiny_model_file, astronaut, tmp_path):
    from cunet.checkpoint import save_weights
    from cunet.colorizer import sharpened
    from cunet.train import export_weights

    model = with_histogram_head(Colorizer.from_pretrained(tiny_model_file).model)
    save_weights(tmp_path / "h.safetensors", model, {"working_size": 64})
    export_weights(tmp_path / "h.safetensors", tmp_path / "sharp.safetensors", automatic_global="predicted",
                   histogram_temperature=0.5)
    sharp = Colorizer.from_pretrained(tmp_path / "sharp.safetensors")
    plain = Colorizer.from_pretrained(tmp_path / "sharp.safetensors", histogram_temperature=1.0)
    assert sharp.histogram_temperature == 0.5
    assert torch.allclose(sharp.predicted_histogram(astronaut), sharpened(plain.predicted_histogram(astronaut), 0.5))
    with pytest.raises(CunetError, match="histogram temperature must lie in"):
        Colorizer.from_pretrained(tmp_path / "sharp.safetensors", histogram_temperature=0.0)


def two_halves(height=64, width=128):
    """A dark left half and a bright right half: one strong L* edge down the middle."""
    pixels = np.full((height, width), 200, np.uint8)
    pixels[:, : width // 2] = 50
    return pixels


def reach_of(colorizer, photo, point):
    from cunet.point_fill import hint_reach

    prepared = colorizer.prepare(photo)
    key = colorizer._encoding_key(prepared, Hints(points=(point,)), None)
    shape = prepared.working(colorizer.working_size)[0]
    return hint_reach(list(key[2]), shape, *prepared.fill_transforms(colorizer.working_size))[0, 0]


def headed_colorizer(**options):
    """The bundled model (whose global-hint branch was trained, so a palette changes the colour) with
    a histogram head added (the same one on every call), at working size 64."""
    torch.manual_seed(0)
    return Colorizer(with_histogram_head(Colorizer.from_pretrained().model), 64, **options)


def test_in_a_points_region_the_automatic_palette_gives_way_and_across_an_edge_it_keeps_most_of_its_say():
    photo, point = two_halves(), PointHint.from_rgb(20, 32, (32, 96, 192))
    paletted = headed_colorizer(automatic_global="predicted")
    reach = reach_of(paletted, photo, point)
    inside, outside = reach == 1, reach == 0
    assert bool(inside[:, :60].all()) and bool(outside[:, 68:].all())
    ab = paletted.predict_ab(photo, Hints(points=(point,)))[0]
    no_palette = headed_colorizer().predict_ab(photo, Hints(points=(point,)))[0]
    palette_everywhere = headed_colorizer(automatic_global="predicted",
                                          hints_lead=False).predict_ab(photo, Hints(points=(point,)))[0]
    assert not torch.allclose(no_palette[:, outside], palette_everywhere[:, outside], atol=0.5)
    assert torch.allclose(ab[:, inside], no_palette[:, inside], atol=1e-4)
    share = 1 / HINTS_FOR_FULL_WAY  # one point of the count at which the palette has gone everywhere
    assert torch.allclose(ab[:, outside], torch.lerp(palette_everywhere, no_palette, share)[:, outside], atol=1e-4)


def test_in_a_points_region_the_chroma_gain_fades_to_one():
    photo, point = two_halves(), PointHint.from_rgb(20, 32, (32, 96, 192))
    strong = headed_colorizer(chroma_gain=1.5)
    reach = reach_of(strong, photo, point)
    inside, outside = reach == 1, reach == 0
    ab = strong.predict_ab(photo, Hints(points=(point,)))[0]
    plain = headed_colorizer().predict_ab(photo, Hints(points=(point,)))[0]
    assert torch.allclose(ab[:, inside], plain[:, inside], atol=1e-4)
    share = 1 / HINTS_FOR_FULL_WAY
    assert torch.allclose(ab[:, outside], plain[:, outside] * (1.5 - 0.5 * share), atol=1e-4)


def test_with_enough_hints_the_palette_and_gain_give_way_everywhere():
    photo = two_halves()
    points = tuple(PointHint.from_rgb(4 + 5 * i, 32, (32, 96, 192)) for i in range(HINTS_FOR_FULL_WAY))
    vivid = headed_colorizer(automatic_global="predicted", chroma_gain=1.4).predict_ab(photo, Hints(points=points))
    assert torch.allclose(vivid, headed_colorizer().predict_ab(photo, Hints(points=points)), atol=1e-4)


def test_batch_colouring_with_points_and_the_palette_equals_colouring_one_by_one():
    colorizer = headed_colorizer(automatic_global="predicted", chroma_gain=1.3)
    hints = Hints(points=(PointHint.from_rgb(20, 32, (192, 48, 32)),))
    photos = [colorizer.prepare(two_halves()), colorizer.prepare(two_halves()[:, ::-1].copy())]
    for prepared, ab in zip(photos, colorizer.predict_ab_batch(photos, hints)):
        assert torch.allclose(ab, colorizer.predict_ab(colorizer.prepare(prepared.photo), hints), atol=1e-4)


def test_the_count_at_which_hints_take_over_is_a_whole_number():
    with pytest.raises(CunetError, match="hints_for_full_way must be a whole number"):
        headed_colorizer(hints_for_full_way=0)
    with pytest.raises(CunetError, match="hints_for_full_way must be a whole number"):
        headed_colorizer(hints_for_full_way=2.5)
    with pytest.raises(CunetError, match="hints_for_full_way must be a whole number"):
        headed_colorizer(hints_for_full_way=True)


def test_a_given_histogram_is_not_the_automatic_palette_only_the_gain_gives_way():
    photo, point = two_halves(), PointHint.from_rgb(20, 32, (32, 96, 192))
    given = torch.zeros(num_bins())
    given[5] = 1.0
    hints = Hints(points=(point,), histogram=given)
    strong = headed_colorizer(automatic_global="predicted", chroma_gain=1.5)
    inside = reach_of(strong, photo, point) == 1
    ab = strong.predict_ab(photo, hints)[0]
    plain = headed_colorizer(automatic_global="predicted").predict_ab(photo, hints)[0]
    assert torch.allclose(ab[:, inside], plain[:, inside], atol=1e-4)


def test_a_stroke_alone_takes_over_its_region_from_the_palette():
    from cunet.hints import StrokeHint

    photo = two_halves()
    hints = Hints(strokes=(StrokeHint.from_rgb([(10, 20), (30, 40)], (32, 96, 192), 3),))
    ab = headed_colorizer(automatic_global="predicted").predict_ab(photo, hints)[0]
    no_palette = headed_colorizer().predict_ab(photo, hints)[0]
    assert torch.allclose(ab[:, :, :40], no_palette[:, :, :40], atol=1e-4)
    assert not torch.allclose(ab[:, :, 80:], no_palette[:, :, 80:], atol=1e-3)


def test_suggestions_inside_a_points_region_read_the_colouring_without_the_palette():
    photo, point = two_halves(), PointHint.from_rgb(20, 32, (32, 96, 192))
    paletted = headed_colorizer(automatic_global="predicted")
    inside = reach_of(paletted, photo, point) == 1
    chances = paletted.distribution(photo, Hints(points=(point,)))
    plain = headed_colorizer().distribution(photo, Hints(points=(point,)))
    assert torch.allclose(chances[:, inside], plain[:, inside], atol=1e-5)
    assert torch.allclose(chances.sum(0), torch.ones(chances.shape[1:]), atol=1e-4)


def test_an_automatic_palette_passed_in_colours_as_a_histogram_and_gives_way_to_points():
    photo, point = two_halves(), PointHint.from_rgb(20, 32, (32, 96, 192))
    colorizer = headed_colorizer()
    palette = torch.zeros(num_bins())
    palette[40] = 1.0
    assert torch.equal(colorizer.predict_ab(photo, palette=palette), colorizer.predict_ab(photo, Hints(histogram=palette)))
    inside = reach_of(colorizer, photo, point) == 1
    with_points = colorizer.predict_ab(photo, Hints(points=(point,)), palette=palette)[0]
    no_palette = colorizer.predict_ab(photo, Hints(points=(point,)))[0]
    kept = colorizer.predict_ab(photo, Hints(points=(point,), histogram=palette))[0]
    assert torch.allclose(with_points[:, inside], no_palette[:, inside], atol=1e-4)
    assert not torch.allclose(kept[:, inside], no_palette[:, inside], atol=0.5)
