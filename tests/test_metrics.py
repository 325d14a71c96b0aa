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
