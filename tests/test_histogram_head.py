"""The histogram head: a photo's own colour histogram predicted from its gray version, as a global hint."""

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.checkpoint import load_model
from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.evaluate import evaluate, evaluation_set
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
