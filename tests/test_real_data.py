"""Tests on the real photos in CUNET_DATA (skipped without it)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.color import join_lab, rgb_to_lab
from cunet.colorizer import Colorizer
from cunet.data import list_labelled_photos, list_photos, sampling_probabilities
from cunet.hints import ground_truth_points
from cunet.metrics import psnr
from cunet.train_config import TrainConfig

CONFIGS = Path(__file__).parents[1] / "configs"


def test_the_people_manifest_has_its_fixed_split(shared_data):
    assert len(list_photos(shared_data / "people", "train")) == 10540
    assert len(list_photos(shared_data / "people", "val")) == 573


def test_the_scenes_manifest_has_its_fixed_split_and_four_sources(shared_data):
    labelled = list_labelled_photos(shared_data / "scenes", "train")
    assert len(labelled) == 8214 and len(list_photos(shared_data / "scenes", "val")) == 428
    assert {label for _, label in labelled} == {"sun", "intel", "pacs", "camvid"}


@pytest.mark.parametrize("name", ["v3", "v3/trials/w16", "v3/trials/w24", "v3/trials/w32", "v3/trials/w16warm"])
def test_the_v3_data_mix_gives_people_and_places_about_half_the_draws_each(shared_data, name):
    config = TrainConfig.from_toml(CONFIGS / f"{name}.toml")
    labels = [label for data in config.data_sources
              for _, label in list_labelled_photos(shared_data / Path(data).parent.name, "train")]
    probabilities = sampling_probabilities(labels, config.source_weights)
    places = np.isin(labels, ["sun", "intel", "pacs", "camvid"])
    assert len(set(labels)) == 9 and 0.4 < probabilities[places].sum() < 0.6


def test_a_real_black_and_white_photo_is_coloured_at_full_size(shared_data):
    path = shared_data / "bw-photos" / "deoldify" / "einstein_portrait.jpg"
    result = Colorizer.from_pretrained().colorize(path)
    with Image.open(path) as original:
        assert result.size == original.size


def test_the_bundled_model_beats_gray_on_val_photos_with_ten_points(shared_data):
    colorizer = Colorizer.from_pretrained()
    paths = sorted(list_photos(shared_data / "people", "val"))[:24]
    gains = []
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            rgb8 = np.asarray(image.convert("RGB").resize((256, 256), Image.Resampling.BICUBIC))
        lab = rgb_to_lab(torch.from_numpy(np.array(rgb8)).permute(2, 0, 1).float() / 255.0)
        gray = psnr(join_lab(lab[:1], torch.zeros_like(lab[1:])), torch.from_numpy(np.array(rgb8)).permute(2, 0, 1))
        points = ground_truth_points(lab[1:], [5] * 10, np.random.default_rng(index))
        gains.append(float(psnr(np.asarray(colorizer.colorize(rgb8, points=points)), rgb8) - gray))
    assert np.mean(gains) > 1.0
