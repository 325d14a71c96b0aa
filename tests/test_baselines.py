import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.color import rgb2lab

from cunet.baselines import gray_ab, levin_ab, reinhard_ab, reinhard_transfer, welsh_ab


@pytest.fixture(scope="module")
def astronaut_lab() -> np.ndarray:
    return rgb2lab(np.asarray(Image.fromarray(skdata.astronaut()).resize((256, 256), Image.Resampling.BICUBIC)))


@pytest.fixture(scope="module")
def coffee_lab() -> np.ndarray:
    return rgb2lab(skdata.coffee())


def ten_patches(shape, seed=0, size=5):
    mask = np.zeros(shape, bool)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        y, x = rng.integers(0, shape[0] - size), rng.integers(0, shape[1] - size)
        mask[y : y + size, x : x + size] = True
    return mask


def test_gray_is_zero_ab():
    assert np.array_equal(gray_ab(np.ones((3, 4))), np.zeros((3, 4, 2)))


def test_reinhard_matches_the_references_lab_mean_and_std(astronaut_lab, coffee_lab):
    result = reinhard_transfer(astronaut_lab, coffee_lab)
    assert np.allclose(result.mean(axis=(0, 1)), coffee_lab.mean(axis=(0, 1)))
    assert np.allclose(result.std(axis=(0, 1)), coffee_lab.std(axis=(0, 1)))


def test_reinhard_on_a_gray_photo_gives_the_references_mean_colour(astronaut_lab, coffee_lab):
    ab = reinhard_ab(astronaut_lab[..., 0], coffee_lab)
    assert np.allclose(ab, coffee_lab[..., 1:].mean(axis=(0, 1)))


def test_welsh_copies_colours_from_the_reference_and_is_seeded(astronaut_lab, coffee_lab):
    ab = welsh_ab(astronaut_lab[..., 0], coffee_lab, seed=1)
    reference_colours = {tuple(c) for c in coffee_lab[..., 1:].reshape(-1, 2).round(6)}
    assert {tuple(c) for c in ab.reshape(-1, 2).round(6)} <= reference_colours
    assert np.array_equal(ab, welsh_ab(astronaut_lab[..., 0], coffee_lab, seed=1))


def test_welsh_on_its_own_reference_recovers_colour_better_than_gray(astronaut_lab):
    ab = welsh_ab(astronaut_lab[..., 0], astronaut_lab)
    truth = astronaut_lab[..., 1:]
    assert np.mean((ab - truth) ** 2) < np.mean(truth**2)


def test_levin_reproduces_the_hint_colours_at_the_hint_pixels(astronaut_lab):
    mask = ten_patches(astronaut_lab.shape[:2])
    ab = levin_ab(astronaut_lab[..., 0], astronaut_lab[..., 1:], mask)
    assert np.allclose(ab[mask], astronaut_lab[..., 1:][mask], atol=1e-6)


def test_levin_stays_within_the_hints_colour_range(astronaut_lab):
    mask = ten_patches(astronaut_lab.shape[:2], seed=3)
    hints = astronaut_lab[..., 1:]
    ab = levin_ab(astronaut_lab[..., 0], hints, mask)
    for channel in range(2):
        low, high = hints[..., channel][mask].min(), hints[..., channel][mask].max()
        assert low - 1e-6 <= ab[..., channel].min() and ab[..., channel].max() <= high + 1e-6


def test_levin_without_hints_is_gray(astronaut_lab):
    assert np.array_equal(levin_ab(astronaut_lab[..., 0], np.zeros((256, 256, 2)), np.zeros((256, 256), bool)),
                          np.zeros((256, 256, 2)))


def test_levin_follows_edges_a_two_region_image():
    lightness = np.full((32, 32), 30.0)
    lightness[:, 16:] = 70.0
    hints = np.zeros((32, 32, 2))
    mask = np.zeros((32, 32), bool)
    hints[5, 5], mask[5, 5] = (40.0, 10.0), True
    hints[5, 25], mask[5, 25] = (-30.0, -20.0), True
    a = levin_ab(lightness, hints, mask)[..., 0]
    assert (a[:, :16] > 10).all() and (a[:, 16:] < -5).all()  # each side takes its own hint's colour
    steps = np.abs(np.diff(a, axis=1))
    assert steps[:, 15].min() > 10 * np.median(np.delete(steps, 15, axis=1))  # colour changes at the edge

