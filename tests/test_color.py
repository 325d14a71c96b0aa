import warnings

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from cunet.color import (
    AB_SCALE,
    chroma,
    _shows_in_srgb,
    denormalize_ab,
    fit_in_gamut,
    join_lab,
    lab_to_rgb,
    mean_saturation,
    normalize_ab,
    normalize_l,
    rgb_to_lab,
    srgb_lightness,
    srgb_with_ab_uint8,
)


def dense_rgb_sample(step: int = 5) -> np.ndarray:
    axis = np.arange(0, 256, step)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) / 255.0


def test_rgb_to_lab_matches_scikit_image_on_dense_rgb_sample():
    rgb = dense_rgb_sample()
    ours = rgb_to_lab(torch.from_numpy(rgb.T.reshape(3, -1, 1)).float())[:, :, 0].T.numpy()
    error = np.abs(ours - skcolor.rgb2lab(rgb))
    assert error.max() < 0.5
    assert error.mean() < 0.01


def test_lightness_alone_matches_scikit_images_l_star():
    rgb = dense_rgb_sample()
    ours = srgb_lightness(torch.from_numpy(rgb.T.reshape(3, -1, 1)).float())[0, :, 0].numpy()
    assert ours.shape == (len(rgb),) and np.abs(ours - skcolor.rgb2lab(rgb)[:, 0]).max() < 1e-3


def test_lab_to_rgb_matches_scikit_image_inside_the_gamut():
    lab = skcolor.rgb2lab(dense_rgb_sample(15))
    ours = lab_to_rgb(torch.from_numpy(lab.T.reshape(3, -1, 1)).float())[:, :, 0].T.numpy()
    assert np.abs(ours - skcolor.lab2rgb(lab)).max() < 1e-3


def test_the_fused_join_keeps_each_pixels_lightness_and_takes_the_given_ab_as_scikit_image_does():
    rgb = dense_rgb_sample(15).astype(np.float32)
    rng = np.random.default_rng(0)
    ab = rng.uniform(-110, 110, size=(len(rgb), 2)).astype(np.float32)  # in and far out of gamut
    lab = np.concatenate([skcolor.rgb2lab(rgb)[:, :1], ab], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image notes the out-of-gamut colours (negative Z)
        expected = np.rint(np.clip(skcolor.lab2rgb(lab), 0, 1) * 255)
    ours = srgb_with_ab_uint8(rgb, ab[:, 0].copy(), ab[:, 1].copy(), np.empty((len(rgb), 3), np.uint8))
    assert np.abs(ours.astype(int) - expected).max() <= 1
    assert (ours == expected).mean() > 0.99


def test_the_fused_join_of_a_gray_photo_with_zero_ab_gives_back_the_photo():
    gray = np.repeat(np.arange(256, dtype=np.float32)[:, None] / 255, 3, axis=1)
    zero = np.zeros(256, np.float32)
    assert np.array_equal(srgb_with_ab_uint8(gray, zero, zero, np.empty((256, 3), np.uint8)),
                          np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))


def test_round_trip_returns_the_8bit_colour(astronaut):
    rgb = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert torch.equal(torch.round(back * 255), torch.round(rgb * 255))


def test_batched_conversion_equals_per_image_conversion(astronaut):
    rgb = torch.from_numpy(astronaut[:64, :64]).permute(2, 0, 1).float() / 255.0
    batch = torch.stack([rgb, rgb.flip(-1)])
    assert torch.allclose(rgb_to_lab(batch)[1], rgb_to_lab(rgb.flip(-1)), atol=1e-5)


def test_gray_pixels_have_zero_ab_and_the_expected_lightness():
    gray = torch.full((3, 2, 2), 0.5)
    lab = rgb_to_lab(gray)
    assert torch.allclose(lab[1:], torch.zeros(2, 2, 2), atol=0.01)
    assert lab[0, 0, 0].item() == pytest.approx(skcolor.rgb2lab(np.full((1, 1, 3), 0.5))[0, 0, 0], abs=1e-3)


def test_lab_to_rgb_clips_out_of_gamut_colours():
    lab = torch.tensor([50.0, 127.0, -127.0]).view(3, 1, 1)
    rgb = lab_to_rgb(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_normalisation_constants_and_inverse():
    assert AB_SCALE == 128.0
    assert normalize_l(torch.tensor([0.0, 50.0, 100.0])).tolist() == [-0.5, 0.0, 0.5]
    ab = torch.tensor([-128.0, 0.0, 64.0])
    assert normalize_ab(ab).tolist() == [-1.0, 0.0, 0.5]
    assert torch.equal(denormalize_ab(normalize_ab(ab)), ab)


def test_join_lab_with_zero_ab_gives_gray_of_the_same_lightness(astronaut):
    rgb = torch.from_numpy(astronaut[:32, :32]).permute(2, 0, 1).float() / 255.0
    lightness = rgb_to_lab(rgb)[:1]
    gray = join_lab(lightness, torch.zeros(2, 32, 32))
    assert torch.allclose(gray[0], gray[1], atol=1e-4) and torch.allclose(gray[1], gray[2], atol=1e-4)
    assert torch.allclose(rgb_to_lab(gray)[0], lightness[0], atol=0.05)


def test_mean_saturation_is_zero_for_gray_and_one_for_primaries():
    assert mean_saturation(torch.full((3, 4, 4), 0.3)).item() == 0.0
    red = torch.zeros(3, 4, 4)
    red[0] = 1.0
    assert mean_saturation(red).item() == 1.0
    half = torch.tensor([1.0, 0.5, 0.5]).view(3, 1, 1).expand(3, 2, 2)
    assert mean_saturation(half).item() == pytest.approx(0.5)


def test_chroma_is_the_ab_vector_length():
    ab = torch.tensor([3.0, 4.0]).view(2, 1, 1)
    assert chroma(ab).item() == 5.0


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(\*, 3, H, W\)"):
        rgb_to_lab(torch.zeros(4, 8, 8))


def test_fit_in_gamut_keeps_colours_that_srgb_shows():
    rgb = dense_rgb_sample(step=51)
    lab = torch.from_numpy(skcolor.rgb2lab(rgb)).float()
    fitted = fit_in_gamut(lab[:, 0], lab[:, 1:])
    assert torch.equal(fitted, lab[:, 1:])


def test_fit_in_gamut_cuts_chroma_to_the_gamut_edge_keeping_the_hue():
    lightness = torch.tensor([88.0, 50.0, 20.0, 95.0])
    asked = torch.tensor([[70.0, 50.0], [-100.0, 90.0], [10.0, -110.0], [0.0, 100.0]])
    fitted = fit_in_gamut(lightness, asked).double()
    scale = fitted.norm(dim=1) / asked.double().norm(dim=1)
    assert torch.all(scale < 1) and torch.all(scale > 0)
    def linear_rgb(ab):  # scikit-image's XYZ -> linear sRGB, unclipped (its xyz2rgb clips)
        lab = np.concatenate([lightness.double().numpy()[:, None], ab.numpy()], axis=1)
        return skcolor.lab2xyz(lab) @ skcolor.colorconv.rgb_from_xyz.T
    inside, beyond = linear_rgb(fitted), linear_rgb(fitted * 1.01)
    assert inside.min() > -1e-3 and inside.max() < 1 + 1e-3
    assert np.all((beyond.min(axis=1) < -1e-4) | (beyond.max(axis=1) > 1 + 1e-4))


def test_the_gamut_test_agrees_with_kornias_unclipped_conversion():
    from kornia.color import lab_to_rgb as kornia_lab_to_rgb

    generator = np.random.default_rng(0)
    lab = np.column_stack([generator.uniform(0, 100, 20000), generator.uniform(-128, 127, (20000, 2))])
    rgb = dense_rgb_sample(step=15)  # and colours on the gamut's faces, where the two could disagree
    lab = np.concatenate([lab, skcolor.rgb2lab(rgb)])
    srgb = kornia_lab_to_rgb(torch.from_numpy(lab.T[:, :, None]).float(), clip=False)[:, :, 0].double().numpy()
    kornia_inside = ((srgb >= -1e-4) & (srgb <= 1 + 1e-4)).all(axis=0)
    ours = _shows_in_srgb(lab[:, 0], lab[:, 1], lab[:, 2])
    assert kornia_inside.sum() > 2000  # both kinds are well represented
    assert np.array_equal(ours, kornia_inside)
