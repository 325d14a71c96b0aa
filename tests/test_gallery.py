"""The reference gallery (eq. 24 retrieval), variants and colour suggestions: real files, real models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.gallery import (
    LUMINANCE_BINS,
    Gallery,
    build_gallery,
    bundled_gallery,
    bundled_gallery_path,
    luminance_histogram,
    model_fingerprint,
)
from cunet.gamut import num_bins
from cunet.hints import Hints
from tests.conftest import colour_field
from tests.test_cli import assert_one_line_error, run


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


@pytest.fixture
def gallery_photos(tmp_path):
    folder = tmp_path / "gallery-photos"
    folder.mkdir()
    paths = []
    for i in range(8):
        path = folder / f"g{i}.png"
        Image.fromarray(colour_field(100 + i, 72, 96)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def gallery(colorizer, gallery_photos) -> Gallery:
    return build_gallery(colorizer.model, gallery_photos, ["a"] * 4 + ["b"] * 4, working_size=64, progress=False)[0]


def gray_of(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_a_gallery_holds_a_histogram_descriptors_a_thumbnail_and_the_path_of_each_photo(gallery, gallery_photos, colorizer):
    assert len(gallery) == 8 and gallery.paths == [str(p) for p in gallery_photos]
    assert gallery.histograms.shape == (8, num_bins()) and torch.allclose(gallery.histograms.sum(1), torch.ones(8))
    assert gallery.luminance.shape == (8, LUMINANCE_BINS)
    assert gallery.features.shape == (8, 2 * 8 * 4) and gallery.features.mean(0).abs().max() < 1e-4
    assert gallery.thumbnails.shape == (8, 64, 64, 3) and gallery.thumbnails.dtype == torch.uint8
    assert gallery.model_fingerprint == model_fingerprint(colorizer.model)
    assert gallery.info()["sources"] == {"a": 4, "b": 4}


def test_a_saved_gallery_loads_back_the_same(gallery, tmp_path):
    gallery.save(tmp_path / "g.gallery")
    loaded = Gallery.load(tmp_path / "g.gallery")
    assert loaded.paths == gallery.paths and loaded.sources == gallery.sources
    assert torch.allclose(loaded.histograms, gallery.histograms, atol=1e-3)
    assert torch.allclose(loaded.features, gallery.features, atol=1e-2)
    assert torch.equal(loaded.thumbnails, gallery.thumbnails) and loaded.model_fingerprint == gallery.model_fingerprint


def test_a_file_that_is_not_a_gallery_is_a_clear_error(tmp_path, tiny_model_file):
    with pytest.raises(CunetError, match="a cunet file, but not a gallery"):
        Gallery.load(tiny_model_file)
    (tmp_path / "x.gallery").write_bytes(b"nonsense")
    with pytest.raises(CunetError, match="not a cunet safetensors file"):
        Gallery.load(tmp_path / "x.gallery")
    with pytest.raises(CunetError, match="no such gallery file"):
        Gallery.load(tmp_path / "missing.gallery")


@pytest.mark.parametrize("descriptor", ["features", "luminance"])
def test_a_gallery_photo_is_its_own_nearest_match_by_either_descriptor(gallery, gallery_photos, colorizer, descriptor):
    for index in (0, 5):
        prepared = colorizer.prepare(gallery_photos[index])  # the descriptors see its L* only
        query = gallery.describe(colorizer.model, prepared.working(gallery.working_size)[1], descriptor)
        assert int(gallery.rank(query, descriptor)[0]) == index


def test_the_luminance_histogram_is_the_papers_normalised_l_histogram():
    lightness = torch.tensor([0.0, 10.0, 55.0, 100.0]).view(1, 1, 2, 2)
    histogram = luminance_histogram(lightness)
    assert histogram.sum() == pytest.approx(1.0) and histogram[0, 0] == 0.25 and histogram[0, -1] == 0.25


def test_another_models_query_falls_back_to_the_luminance_histogram(gallery, colorizer, head_model_file):
    assert gallery.descriptor_for(colorizer.model) == "predicted+features"
    assert gallery.descriptor_for(Colorizer.from_pretrained(head_model_file).model) == "predicted+luminance"


def test_the_first_match_has_the_real_histogram_nearest_the_automatic_colourings(gallery, gallery_photos, colorizer):
    from cunet.hints import photo_histogram

    gray = gray_of(gallery_photos[3])
    predicted = photo_histogram(colorizer.predict_ab(gray, size=gallery.working_size)[0])
    nearest = int(torch.cdist(predicted[None], gallery.histograms)[0].argmin())
    matches = colorizer.match_references(gray, 4, gallery)
    assert matches[0] == nearest and len(set(matches)) == 4


def spread_gallery(points: list[tuple[float, float]]) -> Gallery:
    """A gallery whose histograms put weight (1 - u, u) and (1 - v, v) on two bin pairs: a 2-D picture."""
    histograms = torch.zeros(len(points), num_bins())
    for row, (u, v) in enumerate(points):
        histograms[row, 0], histograms[row, 1] = 1 - u, u
        histograms[row, 2], histograms[row, 3] = 1 - v, v
    return Gallery(histograms, torch.zeros(len(points), LUMINANCE_BINS))


def test_spread_keeps_the_nearest_then_takes_one_photo_of_each_other_colour_group_not_an_outlier():
    gallery = spread_gallery([
        (0.0, 0.0),                                        # 0: the nearest match
        (0.9, 0.0), (0.8, 0.0), (0.85, 0.05), (0.85, 0.0),  # a group of similar colourings
        (0.0, 0.9), (0.0, 0.8), (0.05, 0.85), (0.0, 0.85),  # another
        (1.0, 1.0),                                        # an outlier: farthest-point sampling would take it
    ])
    chosen = gallery.spread(torch.arange(10), 3, pool=10)
    assert chosen[0] == 0 and 9 not in chosen
    assert {1 <= i <= 4 for i in chosen[1:]} == {True, False} and all(1 <= i <= 8 for i in chosen[1:])


def test_spread_takes_only_what_the_pool_holds_and_one_photo_per_histogram():
    # Photos of one histogram give one colouring (the histogram is the whole global hint): the nearest stands for them.
    gallery = spread_gallery([(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.5, 0.5)])
    assert gallery.spread(torch.arange(4), 3, pool=2) == [0]
    assert gallery.spread(torch.arange(4), 3, pool=4) == [0, 3]


def test_variants_are_k_colourings_from_distinct_gallery_histograms(gallery, gallery_photos, colorizer):
    gray = gray_of(gallery_photos[2])
    results = colorizer.variants(gray, 3, gallery, Hints(saturation=0.4))
    assert len(results) == 3
    indices = colorizer.match_references(gray, 3, gallery)
    for (hints, image), index in zip(results, indices):
        assert image.size == (96, 72) and hints.saturation == 0.4
        assert torch.equal(hints.histogram, gallery.histograms[index])
        assert np.array_equal(np.asarray(image), np.asarray(colorizer.colorize(gray, hints)))


def test_the_bundled_models_variants_differ(gallery, gallery_photos):
    results = Colorizer.from_pretrained().variants(gray_of(gallery_photos[2]), 3, gallery)
    first, second = (np.asarray(image.convert("RGB"), dtype=float) for _, image in results[:2])
    assert np.abs(first - second).mean() > 1.0


@pytest.mark.parametrize("k", [0, 65, 2.5, True])
def test_a_bad_variant_count_is_refused(gallery, colorizer, k):
    with pytest.raises(CunetError, match="number of variants"):
        colorizer.match_references(np.zeros((16, 16), np.uint8), k, gallery)


def test_suggestions_come_from_the_distribution_head_most_likely_first(head_model_file, astronaut):
    colorizer = Colorizer.from_pretrained(head_model_file)
    gray = astronaut[::4, ::4].mean(axis=2).astype(np.uint8)
    suggestions, source = colorizer.suggest(gray, 40, 60, top=5)
    assert source == "model" and len(suggestions) == 5
    probabilities = [s.p for s in suggestions]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    distribution = colorizer.distribution(gray)
    row, column = 60 * distribution.shape[1] // 128, 40 * distribution.shape[2] // 128
    assert probabilities[0] == pytest.approx(float(distribution[:, row, column].max()), abs=1e-6)
    assert all(s.color.startswith("#") and len(s.color) == 7 for s in suggestions)
    assert set(suggestions[0].to_json()) == {"color", "a", "b", "p"}


def test_without_a_head_suggestions_come_from_the_gallery(gallery, colorizer, astronaut):
    suggestions, source = colorizer.suggest(astronaut[:64, :64], 10, 10, top=8, gallery=gallery)
    assert source == "gallery" and len(suggestions) == 8


def test_a_suggestion_outside_the_photo_is_a_clear_error(head_model_file, astronaut):
    with pytest.raises(CunetError, match="lies outside the 64x64 image"):
        Colorizer.from_pretrained(head_model_file).suggest(astronaut[:64, :64], 64, 3)


def test_the_bundled_gallery_is_small_and_indexes_training_photos():
    assert bundled_gallery_path().stat().st_size <= 5 * 2**20
    gallery = bundled_gallery()
    assert len(gallery) >= 1000 and gallery.thumbnails is None
    assert {"ccp", "lspet", "utkface", "shanghaitech", "pennfudan"} <= set(gallery.sources)
    assert gallery.descriptor_for(Colorizer.from_pretrained().model) == "predicted+features"


# -- command line ---------------------------------------------------------------------------------

def test_gallery_build_and_info_from_the_command_line(monkeypatch, capsys, photo_folder, tiny_model_file, tmp_path):
    out = tmp_path / "g" / "mine.gallery"
    code, stdout, _ = run(monkeypatch, capsys, "gallery", "build", photo_folder, "--split", "train", "-o", out,
                          "--model", tiny_model_file, "--limit", "5")
    assert code == 0 and "5 photos" in stdout
    code, stdout, _ = run(monkeypatch, capsys, "gallery", "info", out)
    info = json.loads(stdout)
    assert code == 0 and info["photos"] == 5 and info["descriptors"] == ["predicted", "features", "luminance"]


def test_gallery_build_refuses_other_suffixes(monkeypatch, capsys, photo_folder, tmp_path):
    code, _, err = run(monkeypatch, capsys, "gallery", "build", photo_folder, "-o", tmp_path / "g.bin")
    assert_one_line_error(code, err, "gallery files end in .gallery")


def test_colorize_variants_writes_k_files(monkeypatch, capsys, gallery, gallery_photos, tiny_model_file, tmp_path):
    gallery.save(tmp_path / "g.gallery")
    photo = tmp_path / "old.png"
    Image.fromarray(gray_of(gallery_photos[1])).save(photo)
    code, stdout, _ = run(monkeypatch, capsys, "colorize", photo, "--variants", "3", "--gallery", tmp_path / "g.gallery",
                          "--out-dir", tmp_path / "out", "--model", tiny_model_file)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old_v1.png", "old_v2.png", "old_v3.png"]


def test_suggest_prints_json(monkeypatch, capsys, head_model_file, tmp_path, astronaut):
    photo = tmp_path / "old.png"
    Image.fromarray(astronaut[::4, ::4]).convert("L").save(photo)
    code, stdout, err = run(monkeypatch, capsys, "suggest", photo, "--at", "30,40", "--top", "3", "--json",
                            "--model", head_model_file)
    items = json.loads(stdout)
    assert code == 0 and err == "" and len(items) == 3 and set(items[0]) == {"color", "a", "b", "p"}


def test_suggest_says_when_the_colours_come_from_the_gallery(monkeypatch, capsys, gallery, tiny_model_file, tmp_path,
                                                             astronaut):
    gallery.save(tmp_path / "g.gallery")
    photo = tmp_path / "old.png"
    Image.fromarray(astronaut[::4, ::4]).convert("L").save(photo)
    code, stdout, err = run(monkeypatch, capsys, "suggest", photo, "--at", "3,4", "--model", tiny_model_file,
                            "--gallery", tmp_path / "g.gallery")
    assert code == 0 and err.startswith("note: this model has no distribution head") and stdout.count("\n") == 8


def test_suggest_notes_a_gallery_the_models_own_distribution_makes_pointless(monkeypatch, capsys, gallery,
                                                                             head_model_file, tmp_path, astronaut):
    gallery.save(tmp_path / "g.gallery")
    photo = tmp_path / "old.png"
    Image.fromarray(astronaut[::4, ::4]).convert("L").save(photo)
    code, _, err = run(monkeypatch, capsys, "suggest", photo, "--at", "3,4", "--model", head_model_file,
                       "--gallery", tmp_path / "g.gallery")
    assert code == 0 and err == "note: this model suggests colours from its own distribution; --gallery is ignored\n"


@pytest.mark.parametrize("at", ["30", "a,b", "1,2,3", "nan,3"])
def test_suggest_with_a_bad_pixel_is_one_line(monkeypatch, capsys, head_model_file, tmp_path, at):
    photo = tmp_path / "old.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(photo)
    code, _, err = run(monkeypatch, capsys, "suggest", photo, "--at", at, "--model", head_model_file)
    assert_one_line_error(code, err, "--at")


def test_figure_variants_draws_a_grid(monkeypatch, capsys, gallery, gallery_photos, tiny_model_file, tmp_path):
    gallery.save(tmp_path / "g.gallery")
    out = tmp_path / "grid.png"
    code, _, _ = run(monkeypatch, capsys, "figure", *gallery_photos[:2], "--variants", "3", "--gallery",
                     tmp_path / "g.gallery", "--model", tiny_model_file, "-o", out)
    assert code == 0 and Image.open(out).size == (5 * 198 + 6, 2 * 198 + 28)


def test_evaluate_reports_retrieval_and_variants(gallery, photo_folder):
    from cunet.evaluate import evaluate, evaluation_set

    paths, _ = evaluation_set(photo_folder, "val", limit=2)
    report = evaluate(paths, ["cunet"], [0], ["none", "retrieved", "variants"], Colorizer.from_pretrained(),
                      progress=False, gallery=gallery, variants=3)
    by_key = {(r["method"], r["points"], r["global"]): r for r in report["results"]}
    assert set(by_key) == {("cunet", 0, "none"), ("cunet", 0, "retrieved"), ("cunet", 0, "variants")}
    assert by_key[("cunet", 0, "variants")]["variant_distance"]["mean"] > 0
    assert by_key[("cunet", 0, "variants")]["psnr"]["mean"] >= by_key[("cunet", 0, "retrieved")]["psnr"]["mean"] - 1e-9


def test_evaluate_reports_the_suggestion_hit_rate_from_the_gallery_or_the_head(gallery, colorizer, head_model_file,
                                                                            photo_folder):
    from cunet.evaluate import evaluate, evaluation_set

    paths, _ = evaluation_set(photo_folder, "val", limit=2)
    without_head = evaluate(paths, ["cunet"], [0], ["none"], colorizer, progress=False, gallery=gallery, suggest_top=8)
    assert without_head["suggestions"]["source"] == "gallery" and 0 <= without_head["suggestions"]["hit_rate"]["mean"] <= 1
    head = Colorizer.from_pretrained(head_model_file)
    assert evaluate(paths, ["cunet"], [0], ["none"], head, progress=False, suggest_top=8)["suggestions"]["source"] == "model"


def test_variants_of_a_batch_go_on_past_a_bad_photo(monkeypatch, capsys, gallery, gallery_photos, tiny_model_file,
                                                   tmp_path):
    gallery.save(tmp_path / "g.gallery")
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray(gray_of(gallery_photos[1])).save(good)
    bad.write_bytes(b"not a photo")
    code, _, err = run(monkeypatch, capsys, "colorize", good, bad, "--variants", "2", "--gallery", tmp_path / "g.gallery",
                       "--out-dir", tmp_path / "out", "--model", tiny_model_file, "--size", "32")
    assert code == 2 and "bad.png: not a readable image" in err and err.strip().endswith("the others were written")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_v1.png", "good_v2.png"]
