import numpy as np
import pytest
import torch

from cunet.color import rgb_to_lab
from cunet.gamut import (
    GRID_STEP,
    ab_histogram,
    annealed_mean_of_head,
    bin_probabilities,
    decode_distribution,
    in_gamut_bins,
    num_bins,
    quantize_ab,
)


def test_the_in_gamut_rule_gives_261_bins_on_the_10_unit_grid():
    bins = in_gamut_bins()
    assert num_bins() == 261
    assert bins.shape == (261, 2)
    assert torch.equal(bins % GRID_STEP, torch.zeros_like(bins))
    assert bins.abs().max() <= 110


def test_every_srgb_colour_falls_in_a_bin_whose_cell_contains_it():
    generator = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (3, 100, 100), generator=generator).float() / 255.0
    ab = rgb_to_lab(rgb)[1:]
    centres = in_gamut_bins()[quantize_ab(ab)]  # (100, 100, 2)
    distance = (ab.permute(1, 2, 0) - centres).abs()
    assert distance.max() <= GRID_STEP / 2 + 1e-4


def test_gray_falls_in_the_neutral_bin():
    index = quantize_ab(torch.zeros(2, 1, 1))
    assert in_gamut_bins()[index.item()].tolist() == [0.0, 0.0]


def test_far_out_of_gamut_ab_maps_to_the_nearest_in_gamut_bin():
    index = quantize_ab(torch.tensor([[[-120.0]], [[120.0]]])).item()
    assert index in range(num_bins())


def test_histogram_of_a_flat_colour_is_one_hot_and_sums_to_one():
    ab = torch.zeros(2, 2, 8, 8)
    ab[1, 0] = 40.0
    ab[1, 1] = -20.0
    histogram = ab_histogram(ab)
    assert histogram.shape == (2, num_bins())
    assert torch.allclose(histogram.sum(-1), torch.ones(2))
    assert in_gamut_bins()[histogram[1].argmax()].tolist() == [40.0, -20.0]
    assert histogram[1].max() == 1.0


def test_histogram_counts_fractions():
    ab = torch.zeros(2, 1, 4)
    ab[0, 0, :1] = 30.0
    histogram = ab_histogram(ab)
    assert sorted(histogram[histogram > 0].tolist()) == [0.25, 0.75]


def test_decoding_a_confident_distribution_gives_that_bin_centre():
    logits = torch.full((num_bins(), 1, 1), -50.0)
    logits[17] = 50.0
    assert torch.allclose(decode_distribution(logits)[:, 0, 0], in_gamut_bins()[17])


def test_decoding_is_the_annealed_mean_of_the_softmax_in_either_memory_layout():
    logits = torch.randn(2, num_bins(), 6, 5, generator=torch.Generator().manual_seed(0)) * 20
    expected = torch.einsum("nqhw,qc->nchw", torch.softmax(logits.double() / 0.38, dim=1), in_gamut_bins().double())
    for layout in (torch.contiguous_format, torch.channels_last):
        given = logits.contiguous(memory_format=layout)
        assert torch.allclose(decode_distribution(given, 0.38).double(), expected, atol=1e-3)  # a*b* units
        assert torch.equal(given, logits)  # the caller's logits are left as they were


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_fused_head_decoding_equals_the_head_then_the_annealed_mean(layout):
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 6, 9, 7, generator=generator).contiguous(memory_format=layout)
    weight, bias = torch.randn(num_bins(), 6, 1, 1, generator=generator) * 3, torch.randn(num_bins(), generator=generator)
    expected = decode_distribution(torch.nn.functional.conv2d(features, weight, bias), 0.38)
    # 126 pixels in chunks of 10: the last chunk is partial, and the batch's two photos share one.
    fused = annealed_mean_of_head(features, weight, bias, 0.38, chunk_pixels=10)
    assert fused.shape == (2, 2, 9, 7)
    assert torch.allclose(fused, expected, atol=1e-3)  # a*b* units


def test_bin_probabilities_are_the_softmax_over_bins_with_bins_last():
    logits = torch.randn(1, num_bins(), 4, 3, generator=torch.Generator().manual_seed(1)) * 10
    assert torch.allclose(bin_probabilities(logits), torch.softmax(logits, dim=1).movedim(1, -1), atol=1e-6)


def test_the_smoothed_prior_is_a_distribution_that_spreads_to_neighbour_bins():
    from cunet.gamut import in_gamut_bins, smoothed_prior

    histogram = torch.zeros(num_bins())
    histogram[0] = 1.0
    prior = smoothed_prior(histogram, sigma=5.0)
    assert float(prior.sum()) == pytest.approx(1.0, abs=1e-6) and prior.argmax() == 0
    distances = (in_gamut_bins() - in_gamut_bins()[0]).norm(dim=1)
    neighbour = int(torch.nonzero(distances == 10.0)[0])
    assert prior[neighbour] / prior[0] == pytest.approx(np.exp(-100 / 50), rel=1e-4)


def test_rebalancing_weights_favour_rare_colours_and_average_one_under_the_prior():
    from cunet.gamut import rebalancing_weights

    prior = torch.linspace(1.0, 100.0, num_bins())
    prior = prior / prior.sum()
    weights = rebalancing_weights(prior, mix=0.5)
    assert (prior * weights).sum() == pytest.approx(1.0)
    assert bool((weights[:-1] > weights[1:]).all())  # rarer bins weigh more
    assert torch.allclose(rebalancing_weights(prior, mix=1.0), torch.ones(num_bins()))
    with pytest.raises(ValueError, match="mix"):
        rebalancing_weights(prior, mix=1.5)


def test_the_shipped_in_gamut_table_is_what_the_rule_gives():
    from cunet.gamut import _occupied_cells, occupied_cells_by_rule

    assert torch.equal(_occupied_cells(), occupied_cells_by_rule())
