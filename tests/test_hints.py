import numpy as np
import pytest
import torch

from cunet.color import rgb_to_lab
from cunet.gamut import num_bins
from cunet.hints import (
    HintSimulation,
    PointHint,
    encode_global_hint,
    encode_point_hints,
    ground_truth_points,
    photo_histogram,
    simulate_global_hints,
    simulate_point_hints,
)


def test_a_point_fills_its_square_patch_with_its_normalised_ab_and_mask():
    hints = encode_point_hints([PointHint(x=10, y=5, a=64.0, b=-32.0, size=5)], height=12, width=20)
    assert hints.shape == (3, 12, 20)
    assert hints[2].sum() == 25
    assert torch.equal(hints[2, 3:8, 8:13], torch.ones(5, 5))
    assert torch.all(hints[0, 3:8, 8:13] == 0.5) and torch.all(hints[1, 3:8, 8:13] == -0.25)
    assert hints[:, 0:3].abs().sum() == 0


def test_a_patch_at_the_border_is_shifted_inside_the_image():
    hints = encode_point_hints([PointHint(x=0, y=11, a=10.0, b=10.0, size=5)], height=12, width=20)
    assert hints[2].sum() == 25
    assert torch.equal(hints[2, 7:12, 0:5], torch.ones(5, 5))


def test_a_point_outside_the_image_is_rejected():
    with pytest.raises(ValueError, match="outside the 20x12 image"):
        encode_point_hints([PointHint(x=20, y=3, a=0, b=0)], height=12, width=20)


def test_a_gray_rgb_point_has_zero_ab_and_a_red_one_positive_a():
    gray = PointHint.from_rgb(1, 1, (128, 128, 128))
    red = PointHint.from_rgb(1, 1, (200, 30, 30))
    assert abs(gray.a) < 0.01 and abs(gray.b) < 0.01
    assert red.a > 40 and red.b > 20


def test_scaling_a_point_maps_pixel_centres_and_patch_size():
    point = PointHint(x=9, y=3, a=1, b=2, size=5).scaled(0.5, 0.5)
    assert (point.x, point.y, point.size) == (4.25, 1.25, 2)
    assert PointHint(x=0, y=0, a=0, b=0, size=1).scaled(0.25, 0.25).size == 1


def test_global_hint_layout_histogram_then_flags_then_saturation():
    histogram = torch.zeros(num_bins())
    histogram[3] = 2.0
    vector = encode_global_hint(histogram, saturation=0.4)
    q = num_bins()
    assert vector.shape == (q + 3,)
    assert vector[3] == 1.0 and vector[:q].sum() == 1.0
    assert vector[q:].tolist() == pytest.approx([1.0, 0.4, 1.0])
    assert encode_global_hint().abs().sum() == 0


def test_global_hint_rejects_bad_histograms_and_saturations():
    with pytest.raises(ValueError, match="bins"):
        encode_global_hint(torch.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        encode_global_hint(torch.zeros(num_bins()))
    with pytest.raises(ValueError, match="saturation"):
        encode_global_hint(saturation=1.5)


def test_ground_truth_points_hold_the_patch_mean_and_are_reproducible(astronaut):
    ab = rgb_to_lab(torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0)[1:]
    points = ground_truth_points(ab, [5] * 10, np.random.default_rng(3))
    again = ground_truth_points(ab, [5] * 10, np.random.default_rng(3))
    assert points == again and len(points) == 10
    first = points[0]
    patch = ab[:, int(first.y) - 2 : int(first.y) + 3, int(first.x) - 2 : int(first.x) + 3]
    assert (first.a, first.b) == pytest.approx(tuple(patch.mean(dim=(1, 2)).tolist()), abs=1e-4)
    assert ground_truth_points(ab, [5] * 10, np.random.default_rng(4)) != points


def test_simulated_points_copy_ground_truth_colours_and_sometimes_give_none():
    ab = torch.zeros(64, 2, 16, 16)
    ab[:, 0] = 50.0
    hints = simulate_point_hints(ab, np.random.default_rng(0), HintSimulation())
    masks = hints[:, 2].flatten(1).sum(1)
    assert (masks == 0).any() and (masks > 0).any()
    assert torch.all(hints[:, 0][hints[:, 2] == 1] == 50.0 / 128)
    assert torch.all(hints[:, :2][hints[:, 2:].expand(-1, 2, -1, -1) == 0] == 0)


def test_simulated_global_hints_are_given_only_part_of_the_time():
    ab = torch.randn(200, 2, 16, 16) * 20
    rgb = torch.rand(200, 3, 16, 16)
    vectors = simulate_global_hints(ab, rgb, np.random.default_rng(0), HintSimulation(histogram_probability=0.5))
    q = num_bins()
    given = vectors[:, q] == 1
    assert 60 < given.sum() < 140
    assert torch.allclose(vectors[given, :q].sum(1), torch.ones(int(given.sum())))
    assert vectors[~given, :q].abs().sum() == 0


def test_photo_histogram_is_a_distribution_over_bins(astronaut):
    ab = rgb_to_lab(torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0)[1:]
    histogram = photo_histogram(ab)
    assert histogram.shape == (num_bins(),)
    assert histogram.sum().item() == pytest.approx(1.0)


def test_dense_point_counts_come_from_their_own_range():
    ab = torch.zeros(8, 2, 32, 32)
    ab[:, 0] = 20.0
    sim = HintSimulation(dense_probability=1.0, dense_min=30, dense_max=40, max_patch=1)
    maps = simulate_point_hints(ab, np.random.default_rng(0), sim)
    counts = maps[:, 2].flatten(1).sum(dim=1)  # 1-pixel patches; a repeated position counts once
    assert bool(((counts >= 25) & (counts <= 40)).all())
    sparse = simulate_point_hints(ab, np.random.default_rng(0), HintSimulation(max_patch=1))
    assert sparse[:, 2].flatten(1).sum(dim=1).max() < 30
