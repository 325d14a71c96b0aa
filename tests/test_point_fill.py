import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.hints import Hints, PointHint, StrokeHint, hints_from_json
from cunet.model import CUNet, CUNetConfig
from cunet.point_fill import FillSettings, fill_points, fill_transform

SIZE = 128
ASKED = (50.0, 30.0)  # a red


def rows_and_columns():
    return np.mgrid[:SIZE, :SIZE]


def left_half() -> np.ndarray:
    region = np.zeros((SIZE, SIZE), bool)
    region[:, :64] = True
    return region


def shares_coloured(lightness: torch.Tensor, region: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """One red point at (x, y) on a gray prediction: the share of `region`, and of the rest, within
    ΔE00 10 of the asked colour at each pixel's own lightness."""
    gray = torch.zeros(1, 2, SIZE, SIZE)
    out = fill_points(gray, [PointHint(x, y, *ASKED, size=3)], fill_transform(lightness))
    lab = torch.cat([lightness, out], 1)[0].permute(1, 2, 0).numpy()
    target = lab.copy()
    target[..., 1:] = ASKED
    close = deltaE_ciede2000(lab, target) <= 10
    return float(close[region].mean()), float(close[~region].mean())


def test_a_point_fills_its_flat_region_and_stops_at_the_edge():
    lightness = torch.full((1, 1, SIZE, SIZE), 30.0)
    lightness[..., 64:] = 70.0
    own, other = shares_coloured(lightness, left_half(), 20, 64)
    assert own >= 0.9 and other <= 0.05


def test_a_point_fills_a_plaid_and_stops_at_the_flat_region_beside_it():
    rows, columns = rows_and_columns()
    plaid = 40.0 + 15.0 * (((rows // 3) % 2) ^ ((columns // 3) % 2))
    lightness = torch.full((1, 1, SIZE, SIZE), 80.0)
    lightness[0, 0, :, :64] = torch.from_numpy(plaid[:, :64]).float()
    own, other = shares_coloured(lightness, left_half(), 20, 64)
    assert own >= 0.9 and other <= 0.05


def test_a_point_fills_fine_stripes_and_stops_at_the_flat_region_beside_them():
    _, columns = rows_and_columns()
    lightness = torch.full((1, 1, SIZE, SIZE), 80.0)
    lightness[0, 0, :, :64] = torch.from_numpy(45.0 + 20.0 * ((columns[:, :64] // 2) % 2)).float()
    own, other = shares_coloured(lightness, left_half(), 20, 64)
    assert own >= 0.9 and other <= 0.05


def test_a_point_inside_a_disc_stays_inside_it():
    rows, columns = rows_and_columns()
    disc = (rows - 64) ** 2 + (columns - 64) ** 2 < 20**2
    lightness = torch.full((1, 1, SIZE, SIZE), 40.0)
    lightness[0, 0][torch.from_numpy(disc)] = 75.0
    own, other = shares_coloured(lightness, disc, 64, 64)
    assert own >= 0.9 and other <= 0.05


def test_on_its_patch_a_point_has_exactly_its_colour_times_its_strength():
    lightness = torch.full((1, 1, 32, 32), 50.0)
    prediction = torch.full((1, 2, 32, 32), 10.0)
    full = fill_points(prediction, [PointHint(8, 8, 40.0, -20.0, size=3)], fill_transform(lightness))
    half = fill_points(prediction, [PointHint(8, 8, 40.0, -20.0, size=3, strength=0.5)], fill_transform(lightness))
    none = fill_points(prediction, [PointHint(8, 8, 40.0, -20.0, size=3, strength=0.0)], fill_transform(lightness))
    assert torch.allclose(full[0, :, 7:10, 7:10], torch.tensor([40.0, -20.0])[:, None, None].expand(2, 3, 3))
    assert torch.allclose(half[0, :, 7:10, 7:10], torch.tensor([25.0, -5.0])[:, None, None].expand(2, 3, 3))
    assert torch.equal(none, prediction)


def test_without_points_the_prediction_is_unchanged():
    prediction = torch.randn(1, 2, 16, 16)
    assert fill_points(prediction, [], fill_transform(torch.zeros(1, 1, 16, 16))) is prediction


def test_a_point_strength_outside_zero_to_one_is_refused():
    with pytest.raises(CunetError, match="strength must be a number in \\[0, 1\\]"):
        PointHint(1, 1, 0.0, 0.0, 3, strength=1.5)


def test_a_hints_file_point_keeps_its_strength_through_json():
    hints = hints_from_json({"points": [{"x": 3, "y": 4, "color": "#c01010", "strength": 0.25}]})
    assert hints.points[0].strength == 0.25
    assert hints_from_json(hints.to_json()).points[0].strength == 0.25


def test_the_colorizer_gives_each_point_its_colour_on_a_real_photo(astronaut):
    colorizer = Colorizer(CUNet(CUNetConfig(width=8)).eval(), working_size=64)
    point = PointHint(300, 200, -40.0, 50.0, size=9)
    filled = colorizer.predict_ab(astronaut, Hints((point,)))
    colorizer.point_fill = False
    raw = colorizer.predict_ab(astronaut, Hints((point,)))
    row, column = round((200 + 0.5) * 64 / 512 - 0.5), round((300 + 0.5) * 64 / 512 - 0.5)
    assert torch.allclose(filled[0, :, row, column], torch.tensor([-40.0, 50.0]), atol=1e-4)
    assert (raw[0, :, row, column] - torch.tensor([-40.0, 50.0])).norm() > 5


def test_a_stroke_along_a_region_colours_it_and_stops_at_its_edge():
    photo = np.full((256, 256), 200, np.uint8)  # light right part ...
    photo[:, :128] = 60  # ... and a dark left part, split by a vertical edge
    model = CUNet(CUNetConfig(width=8)).eval()
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)  # a network that answers gray: what the stroke adds is the fill's
    colorizer = Colorizer(model, working_size=128)
    stroke = StrokeHint.from_rgb([(30, 40), (60, 200), (90, 120)], "#2050c0", width=6)
    out = np.asarray(colorizer.colorize(photo, Hints(strokes=(stroke,)))).astype(float)
    blue = out[..., 2] - (out[..., 0] + out[..., 1]) / 2
    assert (blue[:, :128] > 20).mean() >= 0.9 and (blue[:, 128:] > 20).mean() <= 0.05


@pytest.mark.parametrize("right_gray, sigma_range, crosses", [
    (130, 6.0, True), (150, 6.0, False), (190, 6.0, False),  # L* steps of 7.9, 15.6, 30.5: the default
    (150, 12.0, True), (190, 12.0, False),
    (150, 24.0, True), (190, 24.0, True),  # the PSNR sweep's best at 1 point crosses even a 30 L* step
])
def test_the_colorizers_fill_settings_set_which_lightness_step_stops_a_points_colour(right_gray, sigma_range, crosses):
    photo = np.full((128, 128), 110, np.uint8)
    photo[:, 64:] = right_gray
    model = CUNet(CUNetConfig(width=8)).eval()
    torch.nn.init.zeros_(model.out.weight)
    torch.nn.init.zeros_(model.out.bias)  # a network that answers gray: what the point adds is the fill's
    colorizer = Colorizer(model, working_size=128, fill_settings=FillSettings(sigma_range=sigma_range))
    ab = colorizer.predict_ab(photo, Hints((PointHint(16, 64, 40.0, 40.0, size=3),)))[0]
    assert float((ab[0, :, :56] > 20).float().mean()) == 1.0  # its own region, always
    assert float((ab[0, :, 72:] > 20).float().mean()) == (1.0 if crosses else 0.0)


@pytest.mark.parametrize("changes", [{"none_share": 0.5}, {"full_share": 0.01}, {"none_share": 0.0},
                                     {"sigma_range": 0.0}, {"sigma_space": -1.0}, {"texture_radius": 1.5},
                                     {"texture_radius": -1}])
def test_fill_settings_that_would_invert_or_break_the_fill_are_refused(changes):
    with pytest.raises(CunetError, match="^fill "):
        FillSettings(**changes)


def test_a_stroke_becomes_patches_that_cover_its_line_without_gaps():
    stroke = StrokeHint.from_rgb([(0, 0), (100, 0), (100, 50)], "#c01010", width=8)
    samples = stroke.samples(0.5, 0.5)
    assert all(s.size == 4 for s in samples)
    xs = sorted(s.x for s in samples if abs(s.y - samples[0].y) < 1e-6)
    assert max(b - a for a, b in zip(xs, xs[1:])) <= 2.0 + 1e-9 and xs[-1] == pytest.approx(49.75)


def test_a_stroke_is_checked_with_the_messages_of_a_point():
    with pytest.raises(CunetError, match="strokes\\[0\\]: stroke width must be a whole number of pixels from 1 to 256"):
        hints_from_json({"strokes": [{"points": [[1, 2]], "color": "#fff", "width": 0}]})
    with pytest.raises(CunetError, match="strokes\\[0\\]: bad colour|strokes\\[0\\]: .*colour"):
        hints_from_json({"strokes": [{"points": [[1, 2]], "color": "#zzzzzz"}]})
    with pytest.raises(CunetError, match="strokes\\[0\\]: stroke points must be \\[x, y\\] pairs"):
        hints_from_json({"strokes": [{"points": [[1, 2, 3]], "color": "#fff"}]})


def test_too_many_points_are_refused_before_any_work():
    with pytest.raises(CunetError, match="hints: 2,001 points; the limit is 2,000"):
        hints_from_json({"points": [{"x": 1, "y": 1, "color": "#fff"}] * 2_001})


def test_too_many_stroke_points_in_all_are_refused_before_any_work():
    stroke = {"points": [[1, 1]] * 5_000, "color": "#fff"}
    with pytest.raises(CunetError, match="hints: 10,001 stroke points in all; the limit is 10,000"):
        hints_from_json({"strokes": [stroke, stroke, {"points": [[2, 2]], "color": "#000"}]})


def test_strokes_that_make_too_many_working_patches_are_refused(astronaut):
    colorizer = Colorizer(CUNet(CUNetConfig(width=8)).eval(), working_size=512)
    zigzag = [(float(x), float(y % 2) * 500) for x, y in zip(range(0, 512, 1), range(512))]
    strokes = tuple(StrokeHint.from_rgb(zigzag, "#c01010", width=1) for _ in range(2))
    with pytest.raises(CunetError, match="over 10,000 hint patches at the working size"):
        colorizer.predict_ab(astronaut, Hints(strokes=strokes))


def test_an_endless_stroke_is_an_error_naming_the_stroke_not_a_traceback(astronaut):
    colorizer = Colorizer(CUNet(CUNetConfig(width=8)).eval(), working_size=32)
    stroke = StrokeHint.from_rgb([(-1e308, 0), (1e308, 0)], "#f00")
    with pytest.raises(CunetError, match="stroke 1 leaves the 512x512 image"):
        colorizer.predict_ab(astronaut, Hints(strokes=(stroke,)))


def test_a_points_reach_is_the_weight_its_correction_gets():
    from cunet.point_fill import hint_reach

    lightness = torch.full((1, 1, 48, 96), 80.0)
    lightness[..., :48] = 25.0
    point = PointHint(20.0, 24.0, 1.0, 0.0, 3)
    transforms = fill_transform(lightness), fill_transform(torch.zeros(1, 1, 48, 96))
    corrected = fill_points(torch.zeros(1, 2, 48, 96), [point], *transforms)
    reach = hint_reach([point], (48, 96), *transforms)
    assert torch.allclose(corrected[:, :1], reach, atol=1e-5)
    assert float(reach[..., :40].min()) == 1.0 and float(reach[..., 56:].max()) == 0.0
