import io

import numpy as np
import pytest
from PIL import Image

from cunet.png import encode_png


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (4, "RGBA")])
def test_a_photo_decodes_back_to_the_same_pixels(astronaut, channels, mode):
    pixels = astronaut if channels == 3 else np.dstack([astronaut, astronaut[:, :, 0]])
    data = encode_png(pixels)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode and image.size == (512, 512)
    assert np.array_equal(decoded(data), pixels)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_the_banded_stream_is_one_valid_png_for_any_thread_count(threads):
    pixels = np.random.default_rng(0).integers(0, 256, (700, 450, 3), dtype=np.uint8)  # 945 KB: 3 bands
    assert np.array_equal(decoded(encode_png(pixels, threads=threads)), pixels)


def test_gray_and_one_pixel_images_are_encoded():
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
    assert np.array_equal(decoded(encode_png(gray)), gray)
    assert np.array_equal(decoded(encode_png(np.full((1, 1, 3), 7, np.uint8))), np.full((1, 1, 3), 7, np.uint8))


def test_pixels_that_are_not_8_bit_images_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((4, 4, 2), np.uint8))
