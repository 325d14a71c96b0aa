"""`cunet colorize` run again, stopped, or given options that do not fit together: a re-run refreshes
its outputs, -o takes the same output types as --format, every ignored option gets a note, and
Ctrl+C says how far the run got."""

from __future__ import annotations

import pytest
from PIL import Image

import cunet.batch
from tests.conftest import colour_gallery
from tests.test_cli import assert_one_line_error, run


@pytest.fixture
def scans(tmp_path, astronaut):
    """A folder of four gray scans of different shapes."""
    folder = tmp_path / "scans"
    folder.mkdir()
    gray = Image.fromarray(astronaut).convert("L")
    for i, box in enumerate([(0, 0, 200, 160), (50, 40, 250, 220), (0, 0, 120, 300), (10, 10, 90, 70)]):
        gray.crop(box).save(folder / f"scan{i}.png")
    return folder


def names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_folder_run_twice_refreshes_its_outputs(monkeypatch, capsys, scans, tiny_model_file):
    code, _, err = run(monkeypatch, capsys, "colorize", scans, "--model", tiny_model_file)
    assert code == 0, err
    first = {name: (scans / name).read_bytes() for name in names(scans) if "_color" in name}
    assert sorted(first) == [f"scan{i}_color.png" for i in range(4)]
    code, _, err = run(monkeypatch, capsys, "colorize", scans, "--model", tiny_model_file)
    assert code == 0
    assert "note: skipping 4 earlier outputs of cunet colorize among the inputs (NAME_color.*, NAME_vK.* beside a NAME.*)" in err
    assert names(scans) == sorted([f"scan{i}.png" for i in range(4)] + list(first))
    assert all((scans / name).read_bytes() == data for name, data in first.items())


def test_a_glob_skips_earlier_outputs_too_and_a_named_file_is_kept(monkeypatch, capsys, scans, tiny_model_file):
    run(monkeypatch, capsys, "colorize", scans / "scan0.png", "--model", tiny_model_file)
    code, _, err = run(monkeypatch, capsys, "colorize", str(scans / "scan0*"), "--model", tiny_model_file)
    assert code == 0 and "skipping 1 earlier output " in err
    code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0_color.png", "--model", tiny_model_file)
    assert code == 0 and (scans / "scan0_color_color.png").exists()


def test_variant_names_count_as_outputs_only_beside_their_photo(monkeypatch, capsys, scans, tiny_model_file, tmp_path):
    Image.new("L", (64, 48), 90).save(scans / "scan1_v2.png")
    Image.new("L", (64, 48), 90).save(scans / "holiday_v1.png")  # a user's own name: no holiday.png beside it
    code, _, err = run(monkeypatch, capsys, "colorize", scans, "--out-dir", tmp_path / "out", "--model", tiny_model_file)
    assert code == 0 and "skipping 1 earlier output " in err
    assert names(tmp_path / "out") == ["holiday_v1.png"] + [f"scan{i}.png" for i in range(4)]


def test_a_color_name_without_its_photo_beside_it_is_a_photo(monkeypatch, capsys, tiny_model_file, tmp_path):
    (tmp_path / "mine").mkdir()
    Image.new("L", (64, 48), 90).save(tmp_path / "mine" / "rose_color.png")
    code, _, err = run(monkeypatch, capsys, "colorize", tmp_path / "mine", "--model", tiny_model_file)
    assert code == 0 and "skipping" not in err
    assert (tmp_path / "mine" / "rose_color_color.png").exists()


def test_o_to_a_folder_says_to_use_out_dir(monkeypatch, capsys, scans, tmp_path):
    (tmp_path / "colour").mkdir()
    code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0.png", "-o", tmp_path / "colour")
    assert_one_line_error(code, err, f"{tmp_path / 'colour'}: is a folder; use --out-dir {tmp_path / 'colour'}")


@pytest.mark.parametrize("name", ["x.bmp", "x.gif", "x", "x.PNG2"])
def test_o_takes_the_types_format_takes(monkeypatch, capsys, scans, tmp_path, name):
    code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0.png", "-o", tmp_path / name)
    assert_one_line_error(code, err, "use .png, .jpg, .webp or .tif")
    assert not (tmp_path / name).exists()


def test_o_writes_upper_case_and_tiff_names(monkeypatch, capsys, scans, tiny_model_file, tmp_path):
    for name, kind in [("x.PNG", "PNG"), ("x.tiff", "TIFF"), ("x.jpeg", "JPEG")]:
        code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0.png", "-o", tmp_path / name,
                           "--model", tiny_model_file)
        assert code == 0, err
        assert Image.open(tmp_path / name).format == kind


@pytest.mark.parametrize("args, message", [
    (["--gallery", "{gallery}"], "note: --gallery is used only with --variants; ignored"),
    (["--format", "jpg"], "note: --format jpg is ignored with -o: the type comes from its name (.png)"),
    (["--quality", "80"], "note: --quality applies to JPEG and WebP outputs only; ignored"),
    (["--variants", "2", "--gallery", "{gallery}", "--all-frames"],
     "note: --all-frames does not apply to --variants: the first frame of each file is coloured"),
    (["--variants", "8", "--gallery", "{gallery}"], "note: scan0.png: 3 variants, not 8: the gallery has only 3 "
                                                    "distinct colour histograms to take colours from"),
    (["--variants", "2", "--gallery", "{gallery}", "--reference", "{gallery_photo}"],
     "note: with --variants each colouring takes a gallery photo's colours; the reference or histogram given is "
     "ignored"),
])
def test_an_option_that_does_not_apply_gets_a_note(monkeypatch, capsys, scans, tiny_model_file, tmp_path, args, message):
    gallery, paths = colour_gallery(tmp_path, 3)
    args = [arg.format(gallery=gallery, gallery_photo=paths[0]) for arg in args]
    code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0.png", "-o", tmp_path / "out.png",
                       "--model", tiny_model_file, *args)
    assert code == 0, err
    assert message in err.splitlines()


@pytest.mark.parametrize("name, kind", [("o.jpeg", "jpeg"), ("o.tiff", "tiff"), ("o.jpg", "jpeg"), ("o.tif", "tif")])
def test_format_naming_the_same_type_as_o_gets_no_note(monkeypatch, capsys, scans, tiny_model_file, tmp_path, name,
                                                       kind):
    code, _, err = run(monkeypatch, capsys, "colorize", scans / "scan0.png", "-o", tmp_path / name, "--format", kind,
                       "--model", tiny_model_file)
    assert code == 0 and "note" not in err


def test_ctrl_c_in_a_folder_run_says_how_many_were_written(monkeypatch, capsys, scans, tiny_model_file, tmp_path):
    predict = cunet.batch._predict
    calls = []

    def interrupted_on_the_third_shape(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return predict(*args)

    monkeypatch.setattr(cunet.batch, "_predict", interrupted_on_the_third_shape)
    out = tmp_path / "out"
    code, _, err = run(monkeypatch, capsys, "colorize", scans, "--out-dir", out, "--model", tiny_model_file)
    assert code == 130
    written = names(out)
    assert err.splitlines()[-1] == f"interrupted: {len(written)} of 4 written"
    assert len(written) <= 2 and all(name.endswith(".png") and not name.startswith(".") for name in written)
