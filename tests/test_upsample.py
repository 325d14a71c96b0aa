import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cunet.color import join_lab, lab_to_rgb, rgb_to_lab
from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.join import join_full_resolution
from cunet.metrics import psnr
from cunet.model import CUNet, CUNetConfig
from cunet.upsample import compensated, guide_shape, guided_coefficients, guided_upsample, check_upsampler


def two_region_lab(height: int = 128, width: int = 128, edge: int = 61) -> torch.Tensor:
    """A dark red left part and a light blue right part, split by a vertical edge off the 8-px grid."""
    lab = torch.empty(1, 3, height, width)
    lab[:, 0, :, :edge], lab[:, 1, :, :edge], lab[:, 2, :, :edge] = 35.0, 45.0, 25.0
    lab[:, 0, :, edge:], lab[:, 1, :, edge:], lab[:, 2, :, edge:] = 75.0, -10.0, -30.0
    return lab


def rgb8_of(lab: torch.Tensor) -> np.ndarray:
    return np.clip(np.rint(lab_to_rgb(lab)[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


def test_a_colour_edge_on_a_lightness_edge_comes_back_sharper_than_bilinear():
    lab = two_region_lab()
    small = F.avg_pool2d(lab, 8)
    bilinear = F.interpolate(small[:, 1:], size=(128, 128), mode="bilinear", align_corners=False)
    guided = guided_upsample(small[:, 1:], small[:, :1], lab[:, :1])
    truth = rgb8_of(lab)
    score = {name: float(psnr(rgb8_of(torch.cat([lab[:, :1], ab], 1)), truth))
             for name, ab in (("bilinear", bilinear), ("guided", guided))}
    assert score["guided"] >= score["bilinear"] + 4.0
    # The halo: within 4 px of the edge, the colour error is at most 60 % of bilinear's, at every column.
    truth_ab = lab[0, 1:, 0]
    for column in range(57, 66):
        assert (guided[0, :, 0, column] - truth_ab[:, column]).norm() <= 0.6 * (
            bilinear[0, :, 0, column] - truth_ab[:, column]).norm()


def test_a_flat_colour_stays_exactly_flat():
    lightness = torch.rand(1, 1, 96, 80) * 100
    small_l = F.avg_pool2d(lightness, 8)
    ab = torch.tensor([20.0, -15.0])[None, :, None, None].expand(1, 2, 12, 10)
    up = guided_upsample(ab, small_l, lightness)
    assert torch.allclose(up, ab[:, :, :1, :1].expand(1, 2, 96, 80), atol=1e-3)


def test_compensation_makes_the_area_average_of_the_up_sampling_closer_to_the_map(astronaut):
    lab = rgb_to_lab(torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 255)
    ab = F.avg_pool2d(lab[:, 1:], 16)  # 32 x 32, a real photo's colour

    def mismatch(small):
        up = F.interpolate(small, size=(256, 256), mode="bilinear", align_corners=False)
        return (F.avg_pool2d(up, 8) - ab).abs().mean()

    assert mismatch(compensated(ab)) < 0.5 * mismatch(ab)


def test_without_compensation_on_a_flat_lightness_the_guided_map_is_the_bilinear_one():
    lightness = torch.full((1, 1, 48, 40), 60.0)  # 4x: the guide is the photo itself
    ab = torch.randn(1, 2, 12, 10, generator=torch.Generator().manual_seed(0)) * 10  # far from the +-127 clip
    bilinear = F.interpolate(ab, size=(48, 40), mode="bilinear", align_corners=False)
    plain = guided_upsample(ab, F.avg_pool2d(lightness, 4), lightness, compensation=0.0)
    half = guided_upsample(ab, F.avg_pool2d(lightness, 4), lightness, compensation=0.5)
    full = guided_upsample(ab, F.avg_pool2d(lightness, 4), lightness)
    assert torch.allclose(plain, bilinear, atol=1e-4)
    assert torch.allclose(half, (bilinear + full) / 2, atol=1e-3)  # the back-projection is linear in its weight


def test_the_guide_is_at_most_four_times_the_working_size_and_never_above_the_photo():
    assert guide_shape((128, 192), (3000, 4500)) == (512, 768)
    assert guide_shape((128, 192), (300, 450)) == (300, 450)


@pytest.mark.parametrize("strip_pixels", [1, 700, 10**9])
def test_the_guided_tile_join_equals_the_whole_image_guided_up_sampling(astronaut, strip_pixels):
    rgb = astronaut[:150, :97].astype(np.float32) / 255
    whole = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lightness = rgb_to_lab(whole)[:, :1]
    small_l = F.interpolate(lightness, size=(24, 16), mode="area")
    ab = torch.randn(1, 2, 24, 16) * 40
    coefficients = guided_coefficients(ab, small_l, F.interpolate(lightness, size=(96, 64), mode="area"))
    up = F.interpolate(coefficients, size=(150, 97), mode="bilinear", align_corners=False)
    ab_full = (up[:, :2] * lightness + up[:, 2:]).clamp(-127, 127)
    expected = join_lab(lightness, ab_full)[0].permute(1, 2, 0).numpy()
    expected = np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8)
    joined = join_full_resolution(rgb, coefficients, strip_pixels=strip_pixels)
    assert np.abs(joined.astype(int) - expected).max() <= 1


def test_the_join_refuses_a_colour_map_of_three_channels(astronaut):
    with pytest.raises(ValueError, match="2 .* or 4"):
        join_full_resolution(astronaut[:8, :8].astype(np.float32) / 255, torch.zeros(1, 3, 4, 4))


def test_an_unknown_upsampler_is_refused_with_the_choices():
    with pytest.raises(CunetError, match="bilinear, guided"):
        check_upsampler("bicubic")


def test_bilinear_colouring_is_the_plain_join_and_guided_differs_only_in_detail(astronaut):
    colorizer = Colorizer(CUNet(CUNetConfig(width=8)).eval(), working_size=32)
    prepared = colorizer.prepare(astronaut)
    ab = colorizer.predict_ab(prepared)
    colorizer.upsample = "bilinear"
    plain = np.asarray(colorizer.colorize(prepared))
    assert np.array_equal(plain, join_full_resolution(prepared.photo.rgb, ab))
    colorizer.upsample = "guided"
    guided = np.asarray(colorizer.colorize(prepared))
    assert guided.shape == plain.shape and not np.array_equal(guided, plain)
    assert psnr(guided, plain) > 25
