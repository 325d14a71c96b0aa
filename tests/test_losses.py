import numpy as np
import pytest
import torch

from cunet.color import normalize_ab, rgb_to_lab
from cunet.gamut import num_bins, quantize_ab
from cunet.losses import ab_loss, chroma_deficit, class_weights, rebalanced_cross_entropy


def test_ab_loss_is_huber_or_l2_in_ab_units():
    target = torch.zeros(1, 2, 1, 2)
    predicted = normalize_ab(torch.tensor([2.0, 10.0]).view(1, 1, 1, 2).expand(1, 2, 1, 2))
    # Huber with delta 6: 0.5 * 2^2 = 2 below delta, 6 * (10 - 3) = 42 above it.
    assert float(ab_loss(predicted, target, "huber", 6.0)) == pytest.approx((2 + 42) / 2, rel=1e-5)
    assert float(ab_loss(predicted, target, "l2")) == pytest.approx((4 + 100) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        ab_loss(predicted, target, "l1")


def test_the_chroma_deficit_is_how_much_less_colourful_each_photo_came_out():
    truth = torch.zeros(2, 2, 1, 2)
    truth[0, 0] = 30.0  # photo 0: chroma 30 at both pixels; photo 1: gray
    assert float(chroma_deficit(normalize_ab(torch.zeros(2, 2, 1, 2)), truth)) == pytest.approx(15.0, rel=1e-5)
    vivid = normalize_ab(torch.full((2, 2, 1, 2), 40.0))  # chroma 40 * sqrt(2) everywhere: no deficit at all
    assert float(chroma_deficit(vivid, truth)) == 0.0


def test_the_chroma_deficit_pushes_a_dull_prediction_towards_more_colour():
    truth = torch.zeros(1, 2, 4, 4)
    truth[:, 1] = 50.0
    dull = normalize_ab(torch.full((1, 2, 4, 4), 5.0)).requires_grad_()
    chroma_deficit(dull, truth).backward()
    assert (dull.grad < 0).all()  # descending the gradient raises both a* and b*, so chroma grows


def test_rebalanced_cross_entropy_weighs_each_pixel_by_its_bins_weight():
    ab = torch.tensor([[[[0.0, 60.0]], [[0.0, 60.0]]]])  # (1, 2, 1, 2): gray and a saturated orange
    logits = torch.zeros(1, num_bins(), 1, 2)
    weights = torch.ones(num_bins())
    plain = float(rebalanced_cross_entropy(logits, ab, weights))
    assert plain == pytest.approx(np.log(num_bins()), rel=1e-5)
    weights[int(quantize_ab(ab)[0, 0, 1])] = 3.0
    assert float(rebalanced_cross_entropy(logits, ab, weights)) == pytest.approx(2 * plain, rel=1e-5)


def test_class_weights_favour_the_colour_that_training_draws_less_often():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((16, 16, 3), np.uint8)
    blue[..., 2] = 200
    weights = class_weights([red, blue], np.array([0.8, 0.2]))
    red_bin = int(quantize_ab(rgb_to_lab(torch.from_numpy(red).permute(2, 0, 1).float() / 255)[1:])[0, 0])
    blue_bin = int(quantize_ab(rgb_to_lab(torch.from_numpy(blue).permute(2, 0, 1).float() / 255)[1:])[0, 0])
    assert weights.shape == (num_bins(),)
    assert weights[blue_bin] > weights[red_bin]
    equal = class_weights([red, blue], np.array([0.5, 0.5]))
    assert float(equal[blue_bin]) == pytest.approx(float(equal[red_bin]), rel=0.05)
