import csv
import tarfile

import numpy as np
import pytest
from PIL import Image

from cunet.curation import find_synset, import_folder, pack, sample_imagenet, split_for
from cunet.data import list_photos
from cunet.errors import CunetError
from tests.conftest import colour_field


def make_photo(path, seed, size=(160, 140)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colour_field(seed, size[1], size[0])).save(path, quality=90)


@pytest.fixture
def ilsvrc(tmp_path):
    root = tmp_path / "ilsvrc"
    for i in range(40):
        make_photo(root / "Data" / "CLS-LOC" / "train" / "n00007846" / f"n00007846_{i:04d}.JPEG", i)
    for i in range(10):
        make_photo(root / "Data" / "CLS-LOC" / "train" / "n02084071" / f"n02084071_{i:04d}.JPEG", 100 + i)
    return root


@pytest.fixture
def imagenet21k_tars(tmp_path):
    root = tmp_path / "21k"
    staging = tmp_path / "staging"
    for i in range(30):
        make_photo(staging / f"n00007846_{i:04d}.JPEG", 200 + i)
    root.mkdir()
    with tarfile.open(root / "n00007846.tar", "w") as archive:
        for path in sorted(staging.iterdir()):
            archive.add(path, arcname=path.name)
    return root


def manifest_rows(folder):
    with (folder / "manifest.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_ilsvrc_folders_fraction_then_count(ilsvrc, tmp_path):
    summary = sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "out", fraction=0.5, count=15, progress=False)
    rows = manifest_rows(tmp_path / "out")
    assert summary["photos"] == len(rows) == 15
    assert all(row["source"] == "n00007846" and (tmp_path / "out" / row["file"]).is_file() for row in rows)
    assert {row["split"] for row in rows} <= {"train", "val"}
    assert all(row["split"] == split_for(row["sha256"]) for row in rows)


def test_sampling_is_deterministic_for_a_seed(ilsvrc, tmp_path):
    sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "a", fraction=0.5, count=10, seed=3, progress=False)
    sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "b", fraction=0.5, count=10, seed=3, progress=False)
    sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "c", fraction=0.5, count=10, seed=4, progress=False)
    names = lambda folder: [row["orig_name"] for row in manifest_rows(folder)]  # noqa: E731
    assert names(tmp_path / "a") == names(tmp_path / "b") != names(tmp_path / "c")


def test_fraction_alone_takes_that_share(ilsvrc, tmp_path):
    summary = sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "out", fraction=0.25, count=None, progress=False)
    assert summary["photos"] == 10


def test_several_synsets_share_the_count_in_proportion(ilsvrc, tmp_path):
    summary = sample_imagenet(ilsvrc, ["n00007846", "n02084071"], tmp_path / "out", fraction=1.0, count=25,
                              progress=False)
    assert summary["synsets"] == {"n00007846": 20, "n02084071": 5}


def test_imagenet21k_tars_are_read(imagenet21k_tars, tmp_path):
    summary = sample_imagenet(imagenet21k_tars, ["n00007846"], tmp_path / "out", fraction=0.2, count=5000,
                              progress=False)
    assert summary["photos"] == 6
    assert len(list_photos(tmp_path / "out")) == 6


def test_linking_makes_symlinks_to_the_originals(ilsvrc, tmp_path):
    sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "out", fraction=0.1, count=None, link=True, progress=False)
    files = [tmp_path / "out" / row["file"] for row in manifest_rows(tmp_path / "out")]
    assert files and all(path.is_symlink() for path in files)


def test_a_missing_synset_is_a_clear_error(ilsvrc):
    with pytest.raises(CunetError, match="synset n99999999 not found"):
        find_synset(ilsvrc, "n99999999")


def test_an_empty_sample_is_a_clear_error(ilsvrc, tmp_path):
    with pytest.raises(CunetError, match="no photos sampled"):
        sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "out", fraction=0.01, count=None, progress=False)


def test_folder_import_drops_and_counts_bad_photos(tmp_path):
    source = tmp_path / "src"
    for i in range(6):
        make_photo(source / "holiday" / f"p{i}.png", i)
    make_photo(source / "copy.png", 0)  # same bytes as holiday/p0.png
    Image.fromarray(np.full((150, 150, 3), 128, np.uint8)).save(source / "gray.png")
    make_photo(source / "tiny.png", 9, size=(60, 60))
    (source / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    counts = import_folder(source, tmp_path / "out", progress=False)
    assert counts == {"photos": 6, "unreadable": 1, "too_small": 1, "near_gray": 1, "duplicates": 1}
    rows = manifest_rows(tmp_path / "out")
    assert len({row["sha256"] for row in rows}) == 6


def test_pack_shrinks_photos_and_keeps_splits(ilsvrc, tmp_path):
    sample_imagenet(ilsvrc, ["n00007846"], tmp_path / "full", fraction=1.0, count=None, progress=False)
    summary = pack(tmp_path / "full" / "manifest.csv", tmp_path / "packed", size=64, quality=80, progress=False)
    rows = manifest_rows(tmp_path / "packed")
    assert summary["photos"] == 40
    assert [r["split"] for r in rows] == [r["split"] for r in manifest_rows(tmp_path / "full")]
    for row in rows:
        with Image.open(tmp_path / "packed" / row["file"]) as image:
            assert min(image.size) == 64 and image.format == "JPEG"
