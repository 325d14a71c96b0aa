import json
import sys

import numpy as np
import pytest
from PIL import Image

from cunet.cli import main


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cunet", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def gray_photo(tmp_path, astronaut):
    path = tmp_path / "old.png"
    Image.fromarray(astronaut[:120, :160]).convert("L").save(path)
    return path


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err
    assert "Traceback" not in err


def test_help_explains_the_commands(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "--help")
    assert code == 0 and "colorize" in out and "train" in out


def test_colorize_writes_a_full_size_colour_file(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    target = tmp_path / "colour.png"
    code, out, _ = run(monkeypatch, capsys, "colorize", gray_photo, "-o", target, "--model", tiny_model_file,
                       "--points", "10,20,#c08060;100,50,#2040a0,5")
    assert code == 0 and f"wrote {target}" in out
    assert Image.open(target).size == (160, 120)


def test_a_folder_goes_to_an_output_folder(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    Image.open(gray_photo).save(tmp_path / "second.jpg")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, _ = run(monkeypatch, capsys, "colorize", tmp_path, "--out-dir", out_dir, "--model", tiny_model_file)
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["old.png", "second.png"]


def test_default_output_sits_beside_the_input(monkeypatch, capsys, gray_photo, tiny_model_file):
    code, _, _ = run(monkeypatch, capsys, "colorize", gray_photo, "--model", tiny_model_file)
    assert code == 0 and (gray_photo.parent / "old_color.png").is_file()


def test_hints_file_and_reference(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "ref.png")
    (tmp_path / "hints.json").write_text(json.dumps(
        {"points": [{"x": 5, "y": 5, "color": "#ff8800", "size": 3}], "saturation": 0.3, "reference": "ref.png"}))
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "c.jpg",
                       "--hints", tmp_path / "hints.json", "--model", tiny_model_file)
    assert code == 0, err
    assert Image.open(tmp_path / "c.jpg").size == (160, 120)


def test_an_unreadable_input_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, tiny_model_file):
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    code, _, err = run(monkeypatch, capsys, "colorize", tmp_path / "broken.jpg", "-o", tmp_path / "o.png",
                       "--model", tiny_model_file)
    assert_one_line_error(code, err, "not a readable image")
    assert not (tmp_path / "o.png").exists()


def test_a_missing_input_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", tmp_path / "none.jpg")
    assert_one_line_error(code, err, "no such file")


@pytest.mark.parametrize("points, message", [
    ("10,20", "bad point"),
    ("10,20,red", "bad colour 'red'"),
    ("10,20,#12345g", "bad colour '#12345g'"),
    ("10,20,#123456,12", "point size 12 out of range"),
])
def test_bad_point_syntax_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tmp_path, points, message):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png", "--points", points)
    assert_one_line_error(code, err, message)


def test_an_out_of_range_point_is_one_line_exit_2_and_writes_nothing(
        monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png",
                       "--points", "160,10,#ff0000", "--model", tiny_model_file)
    assert_one_line_error(code, err, "outside the 160x120 image")
    assert not (tmp_path / "o.png").exists()


def test_missing_output_folders_are_created(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    target = tmp_path / "new" / "deeper" / "o.png"
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", target, "--model", tiny_model_file)
    assert code == 0 and err == "" and Image.open(target).size == (160, 120)
    code, _, _ = run(monkeypatch, capsys, "colorize", gray_photo, "--out-dir", tmp_path / "coloured", "--model", tiny_model_file)
    assert code == 0 and (tmp_path / "coloured" / "old.png").is_file()


def test_an_output_under_a_file_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", gray_photo / "o.png")
    assert_one_line_error(code, err, "is a file, not a folder")


def test_an_unwritable_output_folder_is_reported_before_any_work(monkeypatch, capsys, gray_photo, tmp_path):
    import tempfile

    from cunet.colorizer import Colorizer

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the output place was checked")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(Colorizer, "from_pretrained", no_work)
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, f"{tmp_path}: cannot write there (Permission denied)")


def test_a_failed_write_is_one_line_exit_2_and_leaves_no_temp_file(
        monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    import cunet.io

    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cunet.io.os, "replace", refused)  # the final rename fails, as on a full or locked disk
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "o.png", "--model", tiny_model_file)
    assert_one_line_error(code, err, "o.png: cannot write (Permission denied)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_out_with_several_inputs_is_refused(monkeypatch, capsys, gray_photo, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, gray_photo, "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, "--out-dir")


def test_a_bad_hints_file_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tmp_path):
    (tmp_path / "h.json").write_text("{points: oops")
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--hints", tmp_path / "h.json")
    assert_one_line_error(code, err, "not valid JSON")


def test_a_bad_model_file_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"garbage")
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--model", tmp_path / "m.safetensors",
                       "-o", tmp_path / "o.png")
    assert_one_line_error(code, err, "not a cunet")


def test_train_then_export_from_the_command_line(monkeypatch, capsys, photo_folder, tmp_path):
    (tmp_path / "run.toml").write_text(
        f'data = "{photo_folder / "manifest.csv"}"\nwidth = 4\ncrop = 32\ncache_short_side = 40\n'
        'batch_size = 4\nsteps = 2\nwarmup_steps = 1\nval_limit = 2\nthreads = 1\n')
    code, out, err = run(monkeypatch, capsys, "train", "--config", tmp_path / "run.toml", "--out-dir", tmp_path / "run")
    assert code == 0, err
    code, out, err = run(monkeypatch, capsys, "export", tmp_path / "run" / "last.safetensors", "-o", tmp_path / "w.safetensors")
    assert code == 0 and (tmp_path / "w.safetensors").is_file()


def test_train_without_data_is_one_line_and_exit_2(monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "train")
    assert_one_line_error(code, err, "--data")


def test_outputs_get_ordinary_file_permissions(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    import os

    code, _, _ = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "p.png", "--model", tiny_model_file)
    umask = os.umask(0)
    os.umask(umask)
    assert code == 0 and (tmp_path / "p.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_evaluate_writes_the_report_files(monkeypatch, capsys, photo_folder, tiny_model_file, tmp_path):
    code, out, err = run(monkeypatch, capsys, "evaluate", photo_folder, "--limit", "2", "--points", "0,3",
                         "--methods", "cunet,gray,levin", "--model", tiny_model_file, "--out", tmp_path / "ev")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["psnr_vs_points.png", "report.json", "report.md"]


def test_evaluate_measures_and_reports_the_chroma_gain_asked_for(monkeypatch, capsys, photo_folder, tiny_model_file,
                                                                tmp_path):
    colourfulness = {}
    for gain in ("1", "2"):
        code, _, err = run(monkeypatch, capsys, "evaluate", photo_folder, "--limit", "2", "--points", "0",
                           "--methods", "cunet", "--global", "none", "--model", tiny_model_file, "--chroma-gain", gain,
                           "--out", tmp_path / gain)
        assert code == 0, err
        report = json.loads((tmp_path / gain / "report.json").read_text())
        assert report["chroma_gain"] == float(gain)
        colourfulness[gain] = report["results"][0]["colorfulness"]["mean"]
    assert colourfulness["2"] > colourfulness["1"]


def test_evaluate_with_a_bad_point_list_is_one_line_and_exit_2(monkeypatch, capsys, photo_folder, tmp_path):
    code, _, err = run(monkeypatch, capsys, "evaluate", photo_folder, "--points", "0,ten", "--methods", "gray",
                       "--out", tmp_path / "ev")
    assert_one_line_error(code, err, "bad list")


def test_figure_writes_a_grid(monkeypatch, capsys, photo_folder, tiny_model_file, tmp_path):
    code, _, err = run(monkeypatch, capsys, "figure", photo_folder / "p00.png", photo_folder / "p06.png",
                       "--methods", "cunet,levin", "--points", "5", "--model", tiny_model_file, "-o", tmp_path / "g.png")
    assert code == 0, err
    assert (tmp_path / "g.png").is_file()


def test_dataset_imagenet_and_pack_from_the_command_line(monkeypatch, capsys, tmp_path):
    from tests.test_curation import make_photo

    for i in range(10):
        make_photo(tmp_path / "inet" / "n00007846" / f"n00007846_{i}.JPEG", i)
    code, out, err = run(monkeypatch, capsys, "dataset", "imagenet", tmp_path / "inet", "--out", tmp_path / "people",
                         "--fraction", "0.5", "--count", "4")
    assert code == 0, err
    assert "wrote 4 photos" in out
    code, out, err = run(monkeypatch, capsys, "dataset", "pack", tmp_path / "people" / "manifest.csv",
                         "--out", tmp_path / "packed", "--size", "64")
    assert code == 0 and "packed 4 photos" in out


def test_dataset_with_a_missing_synset_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    (tmp_path / "inet").mkdir()
    code, _, err = run(monkeypatch, capsys, "dataset", "imagenet", tmp_path / "inet", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "synset n00007846 not found")


def test_a_batch_goes_on_past_a_bad_photo_and_exits_2(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run(monkeypatch, capsys, "colorize", tmp_path / "broken.jpg", gray_photo, "--out-dir", out_dir,
                       "--model", tiny_model_file)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2 and "not a readable image" in lines[0] and "1 of 2 photos failed" in lines[1]
    assert [p.name for p in out_dir.iterdir()] == ["old.png"]


def test_an_output_that_would_overwrite_an_input_is_refused(monkeypatch, capsys, gray_photo):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--out-dir", gray_photo.parent)
    assert_one_line_error(code, err, "would overwrite an input photo")


def test_evaluate_takes_several_data_sources_and_reports_each(monkeypatch, capsys, photo_folder, tmp_path):
    import shutil

    second = tmp_path / "scenes"
    shutil.copytree(photo_folder, second)
    code, _, err = run(monkeypatch, capsys, "evaluate", photo_folder, second, "--limit", "2", "--points", "0",
                       "--global", "none", "--methods", "gray", "--out", tmp_path / "ev")
    assert code == 0, err
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["sources"] == {"photos": 2, "scenes": 2} and report["average"] == "macro over 2 sources"



def test_evaluate_leaves_the_named_sources_out_of_the_headline(monkeypatch, capsys, photo_folder, tmp_path):
    import shutil

    second = tmp_path / "faces"
    shutil.copytree(photo_folder, second)
    code, _, err = run(monkeypatch, capsys, "evaluate", photo_folder, second, "--limit", "2", "--points", "0",
                       "--global", "none", "--methods", "gray", "--exclude-from-headline", "faces",
                       "--out", tmp_path / "ev")
    assert code == 0, err
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["headline_sources"] == ["photos"] and report["excluded_from_headline"] == ["faces"]
    gray = report["results"][0]
    assert gray["psnr"]["mean"] == pytest.approx(gray["by_source"]["photos"]["psnr"]["mean"])

def test_export_stores_the_decoding_that_colorize_then_uses(monkeypatch, capsys, photo_folder, gray_photo, tmp_path):
    (tmp_path / "run.toml").write_text(
        f'data = "{photo_folder / "manifest.csv"}"\nwidth = 4\ncrop = 32\ncache_short_side = 40\n'
        'batch_size = 4\nsteps = 2\nwarmup_steps = 1\nval_limit = 2\nthreads = 1\n'
        'distribution_head = true\nce_weight = 1.0\n')
    code, _, err = run(monkeypatch, capsys, "train", "--config", tmp_path / "run.toml", "--out-dir", tmp_path / "run")
    assert code == 0, err
    code, _, err = run(monkeypatch, capsys, "export", tmp_path / "run" / "last.safetensors", "-o",
                       tmp_path / "w.safetensors", "--decode", "annealed", "--temperature", "0.3", "--chroma-gain", "1.2")
    assert code == 0, err
    from cunet.colorizer import Colorizer

    colorizer = Colorizer.from_pretrained(tmp_path / "w.safetensors")
    assert (colorizer.decode, colorizer.temperature, colorizer.chroma_gain) == ("annealed", 0.3, 1.2)
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "c.png", "--model",
                       tmp_path / "w.safetensors", "--decode", "blend")
    assert code == 0 and (tmp_path / "c.png").is_file(), err


def test_a_decoding_the_model_cannot_give_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "c.png", "--model", tiny_model_file,
                       "--decode", "annealed")
    assert_one_line_error(code, err, "needs a model with a distribution head")
    assert not (tmp_path / "c.png").exists()


def test_fit_histogram_head_then_colorize_with_the_predicted_hint(monkeypatch, capsys, tiny_model_file, gray_photo,
                                                                  tmp_path):
    from tests.test_histogram_head import two_kinds_folder

    manifest = two_kinds_folder(tmp_path / "kinds", size=72)  # the tiny model works at 64
    code, out, err = run(monkeypatch, capsys, "fit-histogram-head", tiny_model_file, "--data", manifest,
                         "-o", tmp_path / "headed.safetensors", "--epochs", "5", "--automatic-global", "predicted")
    assert code == 0, err
    assert "cross-entropy train" in out and "val" in out and "wrote" in out
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--model", tmp_path / "headed.safetensors",
                       "-o", tmp_path / "auto.png")
    assert code == 0, err
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--model", tmp_path / "headed.safetensors",
                       "--global", "none", "-o", tmp_path / "plain.png")
    assert code == 0, err
    assert (tmp_path / "auto.png").is_file() and (tmp_path / "plain.png").is_file()


def test_colorize_with_a_predicted_hint_from_a_model_without_a_histogram_head_is_a_one_line_error(
        monkeypatch, capsys, tiny_model_file, gray_photo, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "--model", tiny_model_file, "--global", "predicted",
                       "-o", tmp_path / "x.png")
    assert_one_line_error(code, err, "needs a model with a histogram head")
    assert not (tmp_path / "x.png").exists()


def test_fit_histogram_head_wants_a_safetensors_name(monkeypatch, capsys, tiny_model_file, photo_folder, tmp_path):
    code, _, err = run(monkeypatch, capsys, "fit-histogram-head", tiny_model_file, "--data",
                       photo_folder / "manifest.csv", "-o", tmp_path / "head.pt")
    assert_one_line_error(code, err, "weights files end in .safetensors")


def test_evaluate_at_the_stored_size_records_the_working_size_and_the_upsampler(monkeypatch, capsys, photo_folder,
                                                                                  tiny_model_file, tmp_path):
    code, _, err = run(monkeypatch, capsys, "evaluate", photo_folder, "--limit", "2", "--points", "0",
                       "--methods", "cunet,gray", "--model", tiny_model_file, "--photo-size", "0", "--size", "32",
                       "--upsample", "bilinear", "--no-point-fill", "--out", tmp_path / "ev")
    assert code == 0, err
    protocol = json.loads((tmp_path / "ev" / "report.json").read_text())["protocol"]
    assert protocol["size"] == "stored" and protocol["working_size"] == 32
    assert protocol["upsample"] == "bilinear" and protocol["point_fill"] is False


def test_colorize_with_an_unknown_upsampler_is_one_line_and_exit_2(monkeypatch, capsys, gray_photo, tmp_path):
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "c.png", "--upsample", "nearest")
    assert_one_line_error(code, err, "upsample must be one of bilinear, guided")
    assert not (tmp_path / "c.png").exists()


def test_colorize_notes_a_point_whose_colour_cannot_show_at_its_lightness(monkeypatch, capsys, tmp_path,
                                                                         tiny_model_file):
    light = tmp_path / "light.png"
    Image.fromarray(np.full((64, 96), 235, np.uint8)).save(light)
    code, _, err = run(monkeypatch, capsys, "colorize", light, "-o", tmp_path / "c.png", "--model", tiny_model_file,
                       "--points", "10,10,#c01010;20,20,#d8d8d8")
    assert code == 0, err
    notes = [line for line in err.splitlines() if "shows as" in line]
    assert len(notes) == 1 and notes[0].startswith("note: light.png: point 1: #c01010 at L*=93 shows as #")


def test_colorize_takes_strokes_from_a_hints_file(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"strokes": [{"points": [[10, 10], [150, 40]], "color": "#2050c0", "width": 7}]}))
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "c.png", "--hints", hints,
                       "--model", tiny_model_file)
    assert code == 0, err
    hints.write_text(json.dumps({"strokes": [{"points": [[10, 10], [20000, 40]], "color": "#2050c0"}]}))
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "d.png", "--hints", hints,
                       "--model", tiny_model_file)
    assert_one_line_error(code, err, "stroke 1 leaves the")


def test_a_widened_model_colours_a_photo_as_the_model_does(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    code, out, err = run(monkeypatch, capsys, "widen", tiny_model_file, "--width", "7", "-o", tmp_path / "wide.safetensors")
    assert code == 0 and out == f"wrote {tmp_path / 'wide.safetensors'}\n", err
    pixels = []
    for model in (tiny_model_file, tmp_path / "wide.safetensors"):
        code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / f"{model.stem}.png", "--model", model)
        assert code == 0, err
        pixels.append(np.asarray(Image.open(tmp_path / f"{model.stem}.png"), dtype=int))
    assert np.abs(pixels[0] - pixels[1]).max() <= 1


@pytest.mark.parametrize("args,expected", [
    (["--width", "3"], "--width must be from the model's 4 to 256, got 3"),
    (["--width", "300"], "--width must be from the model's 4 to 256, got 300"),
    (["--width", "8", "--seed", "-1"], "-1 is not in the range x>=0"),
    (["--width", "8", "-o", "new/wide.pt"], "new/wide.pt: weights files end in .safetensors"),
])
def test_widen_refuses_a_narrower_or_too_wide_model_and_other_files(monkeypatch, capsys, tiny_model_file, tmp_path,
                                                                    args, expected):
    monkeypatch.chdir(tmp_path)
    args = args if "-o" in args else [*args, "-o", "new/wide.safetensors"]
    code, _, err = run(monkeypatch, capsys, "widen", tiny_model_file, *args)
    assert_one_line_error(code, err, expected)
    assert list(tmp_path.iterdir()) == []
