import math

import pytest
import torch

from cunet.color import normalize_ab
from cunet.hints import PointHint, encode_point_hints, network_inputs
from cunet.propagation import DomainTransform, domain_transform_filter, propagate_points


def flat_lightness(height: int = 32, width: int = 48, value: float = 50.0) -> torch.Tensor:
    return torch.full((1, 1, height, width), value)


def test_without_points_every_channel_is_zero():
    spread = propagate_points(flat_lightness(), torch.zeros(1, 3, 32, 48))
    assert spread.shape == (1, 3, 32, 48) and not spread.any()


def test_a_point_in_a_flat_photo_gives_its_colour_everywhere_with_reach_falling_with_distance():
    maps = encode_point_hints([PointHint(x=10, y=16, a=40.0, b=-20.0, size=3)], 32, 48)[None]
    spread = propagate_points(flat_lightness(), maps)
    expected = normalize_ab(torch.tensor([40.0, -20.0]))
    assert torch.allclose(spread[0, :2], expected[:, None, None].expand(2, 32, 48), atol=1e-4)
    reach = spread[0, 2, 16]
    assert 0 < reach[47] < reach[30] < reach[20] < reach[10] < 1.0


def test_an_lightness_edge_keeps_each_side_to_its_own_point():
    lightness = flat_lightness(value=30.0)
    lightness[..., 24:] = 80.0
    points = [PointHint(x=4, y=16, a=50.0, b=10.0, size=3), PointHint(x=44, y=16, a=-30.0, b=40.0, size=3)]
    spread = propagate_points(lightness, encode_point_hints(points, 32, 48)[None])
    left, right = normalize_ab(torch.tensor([50.0, 10.0])), normalize_ab(torch.tensor([-30.0, 40.0]))
    # Right next to the edge, each side holds its own point's colour, far from the other's.
    assert torch.allclose(spread[0, :2, :, 23], left[:, None].expand(2, 32), atol=0.01)
    assert torch.allclose(spread[0, :2, :, 24], right[:, None].expand(2, 32), atol=0.01)


def test_the_edge_blocks_reach_that_a_flat_photo_would_give():
    maps = encode_point_hints([PointHint(x=4, y=16, a=50.0, b=10.0, size=3)], 32, 48)[None]
    edged = flat_lightness(value=30.0)
    edged[..., 24:] = 80.0
    flat_reach = propagate_points(flat_lightness(), maps)[0, 2, 16, 30]
    edged_reach = propagate_points(edged, maps)[0, 2, 16, 30]
    assert edged_reach < 0.01 * flat_reach


def test_the_filter_keeps_a_constant_signal_and_works_per_image_in_a_batch():
    lightness = torch.rand(3, 1, 16, 24) * 100
    constant = torch.full((3, 2, 16, 24), 0.7)
    assert torch.allclose(domain_transform_filter(constant, lightness), constant, atol=1e-5)
    signal = torch.rand(3, 2, 16, 24)
    batch = domain_transform_filter(signal, lightness)
    assert torch.allclose(batch[1:2], domain_transform_filter(signal[1:2], lightness[1:2]), atol=1e-6)


def test_a_kept_transform_spreads_each_new_set_of_points_as_a_fresh_one_does():
    lightness = torch.rand(1, 1, 24, 40, generator=torch.Generator().manual_seed(3)) * 100
    transform = DomainTransform(lightness)
    for points in ([PointHint(x=5, y=5, a=40.0, b=-20.0)],
                   [PointHint(x=30, y=20, a=-10.0, b=60.0, size=3), PointHint(x=12, y=18, a=70.0, b=5.0)]):
        maps = encode_point_hints(points, 24, 40)[None]
        assert torch.equal(propagate_points(lightness, maps, transform), propagate_points(lightness, maps))


def test_a_transform_refuses_a_signal_of_another_size():
    with pytest.raises(ValueError, match="does not fit the guide"):
        DomainTransform(flat_lightness())(torch.zeros(1, 3, 16, 16))


@pytest.mark.parametrize("block", [1, 3, 8, 64])  # the whole-axis scan, blocks padded, the default, one block
def test_every_block_size_gives_the_papers_sequential_recursion(block):
    generator = torch.Generator().manual_seed(1)
    lightness = torch.rand(1, 1, 21, 30, generator=generator) * 100
    signal = torch.rand(1, 3, 21, 30, generator=generator)
    assert torch.allclose(DomainTransform(lightness, block=block)(signal), sequential_domain_transform(signal, lightness),
                          atol=1e-5)


def test_network_inputs_append_the_spread_only_when_asked():
    maps = encode_point_hints([PointHint(x=3, y=3, a=10.0, b=10.0)], 16, 16)[None]
    assert network_inputs(flat_lightness(16, 16), maps).shape == (1, 4, 16, 16)
    with_spread = network_inputs(flat_lightness(16, 16), maps, propagate=True)
    assert with_spread.shape == (1, 7, 16, 16)
    assert torch.equal(with_spread[:, 4:], propagate_points(flat_lightness(16, 16), maps))


def sequential_domain_transform(signal: torch.Tensor, lightness: torch.Tensor, sigma_space: float = 48.0,
                                sigma_range: float = 8.0, iterations: int = 3) -> torch.Tensor:
    """Gastal & Oliveira's recursive filter written as their pixel-by-pixel loops: the reference."""
    signal, guide = signal.double().clone(), lightness.double()
    dx = 1 + sigma_space / sigma_range * (guide[..., :, 1:] - guide[..., :, :-1]).abs()
    dy = 1 + sigma_space / sigma_range * (guide[..., 1:, :] - guide[..., :-1, :]).abs()
    for k in range(iterations):
        sigma = sigma_space * math.sqrt(3) * 2 ** (iterations - k - 1) / math.sqrt(4**iterations - 1)
        feedback = math.exp(-math.sqrt(2) / sigma)
        wx, wy = feedback**dx, feedback**dy
        for x in range(1, signal.shape[-1]):
            signal[..., x] += wx[..., x - 1] * (signal[..., x - 1] - signal[..., x])
        for x in range(signal.shape[-1] - 2, -1, -1):
            signal[..., x] += wx[..., x] * (signal[..., x + 1] - signal[..., x])
        for y in range(1, signal.shape[-2]):
            signal[..., y, :] += wy[..., y - 1, :] * (signal[..., y - 1, :] - signal[..., y, :])
        for y in range(signal.shape[-2] - 2, -1, -1):
            signal[..., y, :] += wy[..., y, :] * (signal[..., y + 1, :] - signal[..., y, :])
    return signal.float()


@pytest.mark.parametrize("shape", [(37, 53), (5, 7), (64, 32)])  # blocks padded, one short block, whole blocks
def test_the_scan_equals_the_papers_sequential_recursion_across_strong_edges(shape):
    generator = torch.Generator().manual_seed(0)
    lightness = torch.rand(2, 1, *shape, generator=generator) * 100  # every neighbour pair an edge of its own
    lightness[..., 1:4, :] = 40.0  # and flat bands the filter reaches far along
    signal = torch.rand(2, 3, *shape, generator=generator)
    assert torch.allclose(domain_transform_filter(signal, lightness), sequential_domain_transform(signal, lightness),
                          atol=1e-5)
