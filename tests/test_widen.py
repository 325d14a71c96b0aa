"""Net2Wider widening (cunet.widen): a wider CU-net that computes what the trained one computes."""

import numpy as np
import pytest
import torch

from cunet.model import CUNet, CUNetConfig
from cunet.widen import ChannelMap, widen_model


def _trained_looking(config: CUNetConfig, seed: int = 0) -> CUNet:
    """A model whose BatchNorm statistics and affine terms are not the fresh 0/1 ones, so that copying
    them wrong shows."""
    torch.manual_seed(seed)
    model = CUNet(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    return model


def _outputs(model: CUNet, inputs: torch.Tensor, hint: torch.Tensor) -> list[torch.Tensor]:
    c1, c2, c3, c4 = model.encode(inputs)
    ab, logits = model.decode(c1, c2, c3, c4, hint)
    return [ab, logits, model.predict_histogram(c4)]


FULL = CUNetConfig(width=8, activation="relu", norm_position="before", global_bins=20, distribution_head=True,
                   propagated_hints=True, histogram_head=True)


@pytest.mark.parametrize("width", [12, 16, 20])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_widened_model_gives_the_same_colours_logits_and_histogram(width, mode):
    model = _trained_looking(FULL).train(mode == "train")
    generator = torch.Generator().manual_seed(1)
    inputs = torch.rand(3, FULL.input_channels, 32, 40, generator=generator)
    hint = torch.rand(3, FULL.global_bins + 3, generator=generator)
    wide = widen_model(model, width)
    assert wide.config.width == width and wide.training == (mode == "train")
    for expected, got in zip(_outputs(model, inputs, hint), _outputs(wide, inputs, hint)):
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("activation,norm_position", [("sigmoid", "before"), ("leaky-relu", "after"), ("relu", "none")])
def test_widening_holds_for_every_activation_and_norm_position(activation, norm_position):
    config = CUNetConfig(width=4, activation=activation, norm_position=norm_position, global_bins=0)
    model = _trained_looking(config).eval()
    inputs = torch.rand(2, config.input_channels, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(widen_model(model, 7)(inputs)[0], model(inputs)[0], atol=2e-5, rtol=1e-4)


def test_the_copies_train_apart_under_adamw():
    """Equal split shares would keep a channel's copies equal forever; unequal ones let AdamW part them."""
    wide = widen_model(_trained_looking(FULL).train(), 16)
    conv = wide.conv2[0][0]  # its 32 channels copy the narrow model's 16
    copies = [(i, j) for i in range(32) for j in range(i + 1, 32) if torch.equal(conv.weight[i], conv.weight[j])]
    assert len(copies) == 16
    optimizer = torch.optim.AdamW(wide.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        optimizer.zero_grad()
        wide(torch.rand(2, FULL.input_channels, 16, 16, generator=generator))[0].square().mean().backward()
        optimizer.step()
    assert not any(torch.equal(conv.weight[i], conv.weight[j]) for i, j in copies)


def test_split_shares_sum_to_one_per_old_channel_and_the_old_channels_come_first():
    mapping = ChannelMap.widened(6, 15, np.random.default_rng(4))
    assert mapping.source[:6].tolist() == list(range(6))
    totals = torch.zeros(6).index_add_(0, mapping.source, mapping.share)
    torch.testing.assert_close(totals, torch.ones(6))
    assert len(set(mapping.share.tolist())) > 6


def test_the_same_width_copies_the_model_and_a_narrower_one_is_refused():
    model = _trained_looking(FULL).eval()
    inputs = torch.rand(1, FULL.input_channels, 16, 16)
    torch.testing.assert_close(widen_model(model, 8)(inputs)[0], model(inputs)[0])
    with pytest.raises(ValueError, match="width must be a whole number ≥ the model's 8, got 6"):
        widen_model(model, 6)
