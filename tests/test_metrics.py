import math

import numpy as np
import pytest
import torch

from cunet.metrics import psnr


def test_psnr_of_an_image_with_itself_is_infinite(astronaut):
    assert math.isinf(psnr(astronaut, astronaut).item())


def test_psnr_of_a_uniform_one_level_offset_is_48_13_db():
    image = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(image, image + 1).item() == pytest.approx(10 * math.log10(255**2), abs=1e-9)


def test_psnr_matches_the_paper_formula_on_random_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert psnr(a, b).item() == pytest.approx(10 * np.log10(255**2 / mse))


def test_float_images_are_rounded_to_8_bits_first():
    a = torch.full((3, 4, 4), 100 / 255)
    assert psnr(a + 0.4 / 255, a).item() == math.inf


def test_batches_give_one_value_per_image():
    batch = torch.zeros(5, 3, 4, 4, dtype=torch.uint8)
    assert psnr(batch, batch + 1).shape == (5,)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_ssim_is_one_for_identical_images_and_matches_scikit_image(astronaut):
    from skimage.metrics import structural_similarity

    from cunet.metrics import ssim

    assert ssim(astronaut, astronaut) == 1.0
    noisy = np.clip(astronaut.astype(int) + np.random.default_rng(0).integers(-20, 21, astronaut.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    expected = structural_similarity(noisy, astronaut, channel_axis=-1, data_range=255)
    assert ssim(noisy, astronaut) == pytest.approx(expected)
    assert ssim(torch.from_numpy(noisy).permute(2, 0, 1), astronaut) == pytest.approx(expected)


def test_ciede2000_is_zero_for_identical_images_and_known_for_a_pair():
    from cunet.metrics import ciede2000

    gray = np.full((4, 4, 3), 128, np.uint8)
    assert ciede2000(gray, gray) == 0.0
    white, black = np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)
    assert ciede2000(white, black) == pytest.approx(100.0, abs=0.01)  # Delta L = 100, no chroma


def test_colorfulness_is_zero_for_gray_and_hand_computed_for_two_colours():
    from cunet.metrics import colorfulness

    assert colorfulness(np.full((4, 4, 3), 90, np.uint8)) == 0.0
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 0)  # rg = 255, yb = 127.5
    # second pixel black: rg and yb are (255, 0) and (127.5, 0): std 127.5 / 63.75, mean 127.5 / 63.75
    expected = np.hypot(127.5, 63.75) + 0.3 * np.hypot(127.5, 63.75)
    assert colorfulness(image) == pytest.approx(expected)
