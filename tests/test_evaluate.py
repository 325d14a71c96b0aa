import json

import numpy as np
import pytest
import torch

from cunet.color import join_lab, rgb_to_lab
from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.evaluate import (
    Harness,
    evaluate,
    evaluation_set,
    figure_grid,
    load_eval_photo,
    protocol_points,
    restate_headline,
    settings_for,
    write_report,
)
from cunet.metrics import psnr
from cunet.sources import headline_sources


@pytest.fixture(scope="module")
def colorizer(tiny_model_file):
    return Colorizer.from_pretrained(tiny_model_file)


def test_protocol_points_are_seeded_by_the_photo_index_and_nested(astronaut):
    ab = rgb_to_lab(torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0)[1:]
    ten = protocol_points(ab, 10, index=7)
    assert ten == protocol_points(ab, 10, index=7)
    assert protocol_points(ab, 5, index=7) == ten[:5]
    assert protocol_points(ab, 10, index=8) != ten
    assert all(p.size == 5 for p in ten)


def test_eval_photos_are_256_squares(photo_folder):
    assert load_eval_photo(photo_folder / "p00.png").shape == (256, 256, 3)


def test_methods_are_run_only_with_the_hints_they_use():
    points, globals_ = [0, 2, 10], ["none", "gt"]
    assert settings_for("cunet", points, globals_) == [(0, "none"), (2, "none"), (10, "none"), (0, "gt"), (2, "gt"), (10, "gt")]
    assert settings_for("levin", points, globals_) == [(0, "none"), (2, "none"), (10, "none")]
    assert settings_for("gray", points, globals_) == [(0, "none")]
    assert settings_for("reinhard", points, globals_) == [(0, "gt")]
    assert settings_for("welsh", points, ["none"]) == []


def test_every_method_keeps_the_photos_lightness(colorizer, astronaut):
    rgb8 = load_eval_photo_from_array(astronaut)
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1).float() / 255.0)
    harness = Harness(colorizer)
    points = protocol_points(lab[1:], 5, 0)
    for method in ("cunet", "gray", "reinhard", "welsh", "levin"):
        output = harness.run(method, lab[:1], points, rgb8)
        out_l = rgb_to_lab(torch.from_numpy(output).permute(2, 0, 1).float() / 255.0)[0]
        assert output.shape == (256, 256, 3)
        assert (out_l - lab[0]).abs().median() < 1.0, method


def load_eval_photo_from_array(array: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.array(Image.fromarray(array).resize((256, 256), Image.Resampling.BICUBIC))


def test_transfer_baselines_without_a_reference_are_refused(astronaut):
    lab = rgb_to_lab(torch.from_numpy(load_eval_photo_from_array(astronaut)).permute(2, 0, 1).float() / 255.0)
    with pytest.raises(CunetError, match="needs a reference"):
        Harness(None).run("welsh", lab[:1], [], None)


def test_the_report_has_the_documented_schema_and_the_gray_row_is_exact(colorizer, photo_folder, tmp_path):
    paths, _ = evaluation_set(photo_folder, "val", limit=3)
    report = evaluate(paths, ["cunet", "gray", "reinhard", "welsh", "levin"], [0, 2], ["none", "gt"], colorizer,
                      progress=False)
    assert report["photos"] == 3
    keys = {(r["method"], r["points"], r["global"]) for r in report["results"]}
    assert keys == {("cunet", 0, "none"), ("cunet", 2, "none"), ("cunet", 0, "gt"), ("cunet", 2, "gt"),
                    ("gray", 0, "none"), ("levin", 0, "none"), ("levin", 2, "none"), ("reinhard", 0, "gt"),
                    ("welsh", 0, "gt")}
    for result in report["results"]:
        assert result["n"] == 3
        for metric in ("psnr", "ssim", "ciede2000", "colorfulness"):
            assert set(result[metric]) == {"mean", "sem"}
    gray = next(r for r in report["results"] if r["method"] == "gray")
    expected = []
    for path in paths:
        rgb8 = load_eval_photo(path)
        lab = rgb_to_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1).float() / 255.0)
        gray_rgb = join_lab(lab[:1], torch.zeros_like(lab[1:])).permute(1, 2, 0)
        expected.append(float(psnr(gray_rgb, rgb8)))
    assert gray["psnr"]["mean"] == pytest.approx(np.mean(expected), abs=1e-4)  # float32 vs float64 rounding
    levin0 = next(r for r in report["results"] if (r["method"], r["points"]) == ("levin", 0))
    assert levin0["psnr"] == gray["psnr"]  # no points: Levin has nothing to propagate

    write_report(report, tmp_path / "eval")
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["results"] == report["results"]
    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert "Table 10, our photos" in markdown and "| Predicted gray |" in markdown
    assert (tmp_path / "eval" / "psnr_vs_points.png").read_bytes()[:4] == b"\x89PNG"


def test_each_gain_over_automatic_is_paired_photo_by_photo(colorizer, photo_folder):
    paths, _ = evaluation_set(photo_folder, "val", limit=3)
    report = evaluate(paths, ["cunet", "gray"], [0, 2], ["none"], colorizer, progress=False)
    rows = {(r["method"], r["points"]): r for r in report["results"]}
    assert "psnr_gain" not in rows[("cunet", 0)]
    for key in (("cunet", 2), ("gray", 0)):
        gain = rows[key]["psnr_gain"]
        assert gain["mean"] == pytest.approx(rows[key]["psnr"]["mean"] - rows[("cunet", 0)]["psnr"]["mean"], abs=1e-9)
        assert gain["sem"] > 0


def test_evaluation_is_deterministic(colorizer, photo_folder):
    paths, _ = evaluation_set(photo_folder, "val", limit=2)
    first = evaluate(paths, ["cunet", "levin"], [0, 3], ["none"], colorizer, progress=False)["results"]
    second = evaluate(paths, ["cunet", "levin"], [0, 3], ["none"], colorizer, progress=False)["results"]
    assert first == second


def test_unknown_methods_and_settings_are_clear_errors(colorizer, photo_folder):
    paths, _ = evaluation_set(photo_folder, "val", limit=1)
    with pytest.raises(CunetError, match="unknown method 'zhang'"):
        evaluate(paths, ["zhang"], [0], ["none"], colorizer, progress=False)
    with pytest.raises(CunetError, match="unknown global setting"):
        evaluate(paths, ["gray"], [0], ["ref"], colorizer, progress=False)


def test_figure_grid_has_a_column_per_method_and_a_row_per_photo(colorizer, photo_folder):
    paths, _ = evaluation_set(photo_folder, "val", limit=2)
    grid = figure_grid(paths, ["cunet", "levin", "reinhard"], colorizer, points=5, height=64)
    assert grid.size == (5 * 70 + 6, 2 * 70 + 28)  # input, 3 methods, ground truth


def test_figure_grid_for_black_and_white_photos_has_no_ground_truth_column(colorizer, photo_folder):
    paths, _ = evaluation_set(photo_folder, "val", limit=1)
    grid = figure_grid(paths, ["cunet"], colorizer, ground_truth=False, height=64)
    assert grid.size == (2 * 70 + 6, 70 + 28)
    with pytest.raises(CunetError, match="needs --reference"):
        figure_grid(paths, ["reinhard"], colorizer, ground_truth=False, height=64)


def test_the_headline_is_the_macro_average_over_sources_with_each_source_beside_it(photo_folder, tmp_path):
    lines = ["file,source,split"] + [f"p{i:02d}.png,{'faces' if i < 3 else 'street'},val" for i in range(8)]
    (photo_folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    paths, sources = evaluation_set(photo_folder, "val")
    assert sources == ["faces"] * 3 + ["street"] * 5
    report = evaluate(paths, ["gray"], [0], ["none"], None, progress=False, sources=sources)
    assert report["sources"] == {"faces": 3, "street": 5} and report["average"] == "macro over 2 sources"
    gray = report["results"][0]
    faces, street = gray["by_source"]["faces"], gray["by_source"]["street"]
    assert (faces["n"], street["n"]) == (3, 5)
    assert gray["psnr"]["mean"] == pytest.approx((faces["psnr"]["mean"] + street["psnr"]["mean"]) / 2)
    assert gray["pooled"]["psnr"]["mean"] == pytest.approx((3 * faces["psnr"]["mean"] + 5 * street["psnr"]["mean"]) / 8)
    write_report(report, tmp_path / "eval")
    assert "| Predicted gray, – | " in (tmp_path / "eval" / "report.md").read_text()


def test_face_crops_are_reported_beside_the_headline_but_left_out_of_it(photo_folder, tmp_path):
    lines = ["file,source,split"] + [f"p{i:02d}.png,{['utkface', 'street', 'fields'][i % 3]},val" for i in range(9)]
    (photo_folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    paths, sources = evaluation_set(photo_folder, "val")
    report = evaluate(paths, ["gray"], [0], ["none"], None, progress=False, sources=sources)
    assert report["headline_sources"] == ["fields", "street"] and report["excluded_from_headline"] == ["utkface"]
    assert report["average"] == "macro over 2 sources, face crops (utkface) reported beside it"
    gray = report["results"][0]
    psnr_of = {name: scores["psnr"]["mean"] for name, scores in gray["by_source"].items()}
    assert gray["psnr"]["mean"] == pytest.approx((psnr_of["fields"] + psnr_of["street"]) / 2)
    assert gray["macro_all"]["psnr"]["mean"] == pytest.approx(sum(psnr_of.values()) / 3)
    write_report(report, tmp_path / "eval")
    text = (tmp_path / "eval" / "report.md").read_text()
    assert "leaving out the face crops (utkface)" in text and "| headline | macro, all sources | pooled |" in text


def test_a_stored_report_restated_gives_the_headline_a_fresh_evaluation_gives(photo_folder):
    lines = ["file,source,split"] + [f"p{i:02d}.png,{['utkface', 'street', 'fields'][i % 3]},val" for i in range(9)]
    (photo_folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    paths, sources = evaluation_set(photo_folder, "val")
    every_source = evaluate(paths, ["gray"], [0], ["none"], None, progress=False, sources=sources,
                            exclude_from_headline=[])
    headline = evaluate(paths, ["gray"], [0], ["none"], None, progress=False, sources=sources)
    restated = restate_headline(every_source)
    assert restated["headline_sources"] == headline["headline_sources"] == ["fields", "street"]
    for metric in ("psnr", "ssim", "colorfulness"):
        assert restated["results"][0][metric]["mean"] == pytest.approx(headline["results"][0][metric]["mean"])
        assert restated["results"][0][metric]["sem"] == pytest.approx(headline["results"][0][metric]["sem"])


def test_an_empty_exclusion_list_puts_every_source_in_the_headline(photo_folder):
    lines = ["file,source,split"] + [f"p{i:02d}.png,{['utkface', 'street'][i % 2]},val" for i in range(6)]
    (photo_folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    paths, sources = evaluation_set(photo_folder, "val")
    report = evaluate(paths, ["gray"], [0], ["none"], None, progress=False, sources=sources, exclude_from_headline=[])
    gray = report["results"][0]
    assert report["headline_sources"] == ["street", "utkface"]
    assert gray["psnr"]["mean"] == pytest.approx(gray["macro_all"]["psnr"]["mean"])


def test_a_set_of_face_crops_alone_still_has_a_headline():
    assert headline_sources(["utkface"]) == ["utkface"]
    assert headline_sources(["utkface", "sun", "ccp"]) == ["ccp", "sun"]


def test_the_limit_keeps_the_first_photos_of_each_source_and_pooled_makes_one_group(photo_folder):
    lines = ["file,source,split"] + [f"p{i:02d}.png,{'faces' if i < 3 else 'street'},val" for i in range(8)]
    (photo_folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    paths, sources = evaluation_set(photo_folder, "val", limit=2)
    assert [p.name for p in paths] == ["p00.png", "p01.png", "p03.png", "p04.png"]
    assert evaluation_set(photo_folder, "val", limit=2, by_source=False)[1] == ["all", "all"]
