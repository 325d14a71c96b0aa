import pytest
import torch
from torch import nn

from cunet.gamut import num_bins
from cunet.model import ACTIVATIONS, NORM_POSITIONS, PRESETS, CUNet, CUNetConfig, build_model

# The paper's Tables 5-8 as SPEC.md section 2 reads them: (block, in, out, kernel, stride, dilation).
PAPER_LAYERS = (
    [("conv1", 4, 64, 3, 1, 1), ("conv1", 64, 64, 3, 1, 1)]
    + [("conv2", 64, 128, 3, 1, 1), ("conv2", 128, 128, 3, 1, 1)]
    + [("conv3", 128, 256, 3, 1, 1), ("conv3", 256, 256, 3, 1, 1)]
    + [("conv4", 256, 512, 3, 1, 1), ("conv4", 512, 512, 3, 1, 1)]
    + [("conv5", 512, 512, 3, 1, 2)] * 2
    + [("conv6", 512, 512, 3, 1, 2)] * 2
    + [("conv7", 512, 512, 3, 1, 1)] * 3
    + [("conv8", 512, 256, 4, 2, 1), ("conv8", 256, 256, 3, 1, 1), ("conv8", 512, 256, 3, 1, 1)]
    + [("conv9", 256, 128, 4, 2, 1), ("conv9", 128, 128, 3, 1, 1), ("conv9", 256, 128, 3, 1, 1)]
    + [("conv10", 128, 64, 4, 2, 1), ("conv10", 64, 64, 3, 1, 1), ("conv10", 128, 64, 3, 1, 1)]
    + [("out", 64, 2, 1, 1, 1)]
)


def _conv_layers(model: CUNet):
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and not name.startswith("global_hint"):
            layers.append((name.split(".")[0], module.in_channels, module.out_channels, module.kernel_size[0],
                           module.stride[0], module.dilation[0]))
    return layers


def test_paper_preset_has_the_tables_layers_channels_and_dilations():
    assert _conv_layers(build_model("paper")) == PAPER_LAYERS


def test_paper_preset_parameter_count_matches_the_tables():
    # Convs feeding BatchNorm carry no bias; each BN has a scale and a shift per channel; the 1x1 output
    # conv has a bias; the global-hint branch is two biased 1x1 convs (Q + 3 -> 512 -> 512).
    hidden = sum(k * k * cin * cout + 2 * cout for _, cin, cout, k, _, _ in PAPER_LAYERS[:-1])
    output = 64 * 2 + 2
    q = num_bins()
    global_branch = (q + 3) * 512 + 512 + 512 * 512 + 512
    model = build_model("paper")
    assert sum(p.numel() for p in model.parameters()) == hidden + output + global_branch == 26_686_210


def test_paper_preset_puts_batchnorm_before_sigmoid_and_pools_by_averaging():
    model = build_model("paper")
    unit = model.conv5[0]
    assert [type(m) for m in unit] == [nn.Conv2d, nn.BatchNorm2d, nn.Sigmoid]
    assert isinstance(model.down, nn.AvgPool2d) and model.down.kernel_size == 2
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_runs_forward_and_backward_without_nan(preset):
    model = build_model(preset)
    inputs = torch.randn(2, 4, 32, 48)
    hint = torch.rand(2, num_bins() + 3)
    ab, logits = model(inputs, hint)
    assert ab.shape == (2, 2, 32, 48) and logits is None
    ab.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("norm_position", NORM_POSITIONS)
def test_every_activation_and_norm_position_trains_a_step(activation, norm_position):
    model = CUNet(CUNetConfig(width=4, activation=activation, norm_position=norm_position, distribution_head=True))
    ab, logits = model(torch.randn(2, 4, 16, 16))
    assert logits.shape == (2, num_bins(), 16, 16)
    (ab.square().mean() + logits.square().mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_output_is_tanh_bounded():
    ab, _ = CUNet(CUNetConfig(width=4))(torch.randn(1, 4, 16, 16) * 100)
    assert ab.abs().max() <= 1.0


def test_global_hint_changes_the_prediction():
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4))  # training mode: BatchNorm rescales the untrained signal
    inputs = torch.randn(2, 4, 16, 16)
    hint = torch.zeros(2, num_bins() + 3)
    hint[0, 100], hint[0, num_bins()] = 1.0, 1.0
    without, with_hint = model(inputs)[0], model(inputs, hint)[0]
    assert (without - with_hint).abs().max() > 1e-5


def test_sizes_not_divisible_by_eight_are_rejected():
    with pytest.raises(ValueError, match="multiples of 8"):
        CUNet(CUNetConfig(width=4))(torch.zeros(1, 4, 20, 16))


def test_config_round_trips_and_rejects_unknown_values():
    config = CUNetConfig(width=8, activation="leaky-relu")
    assert CUNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="activation"):
        CUNetConfig(activation="gelu")
    with pytest.raises(ValueError, match="unknown model config"):
        CUNetConfig.from_dict({"width": 8, "depth": 3})


def test_the_distribution_head_at_chosen_pixels_equals_the_full_map_there():
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=num_bins(), distribution_head=True)).eval()
    inputs = torch.randn(2, 4, 16, 24)
    with torch.no_grad():
        _, full = model(inputs)
        pixels = torch.tensor([0, 5, 100, 383])
        _, sampled = model(inputs, distribution_at=pixels)
    assert sampled.shape == (2, num_bins(), 4)
    assert torch.allclose(sampled, full.flatten(2)[:, :, pixels], atol=1e-5)


def test_the_distribution_head_reads_the_features_that_decode_features_returns():
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=num_bins(), distribution_head=True)).eval()
    with torch.no_grad():
        features = model.encode(torch.randn(1, 4, 16, 24))
        ab, logits = model.decode(*features)
        same_ab, head_features = model.decode_features(*features)
    assert head_features.shape == (1, 4, 16, 24)
    assert torch.equal(same_ab, ab)
    assert torch.allclose(model.distribution(head_features), logits, atol=1e-6)


def test_spread_hints_add_three_input_channels():
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=0, propagated_hints=True))
    assert model.conv1[0][0].in_channels == 7
    with pytest.raises(ValueError, match=r"\(B, 7, H, W\)"):
        model(torch.zeros(1, 4, 16, 16))
