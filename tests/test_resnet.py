import pytest
import timm
import torch

from vp_utils.models import count_parameters, layer_responses, main_path_layers, resnet
from vp_utils.pretrained import from_timm


def _randomise_batch_norm(model):
    """timm zero-inits the last BN of each block; random statistics make the comparison strict."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=generator) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=generator) * 0.1
            m.running_mean = torch.randn(m.running_mean.shape, generator=generator) * 0.1
            m.running_var = torch.rand(m.running_var.shape, generator=generator) + 0.5
    return model


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_from_timm_gives_identical_logits(name):
    reference = _randomise_batch_norm(timm.create_model(name, pretrained=False)).eval()
    ours = from_timm(reference)
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    assert count_parameters(ours) == count_parameters(reference)


def test_parameter_counts_match_the_papers():
    assert count_parameters(resnet("resnet50")) == 25_557_032
    assert count_parameters(resnet("resnet18")) == 11_689_512


def test_plain_twin_has_no_shortcuts_and_the_same_main_path():
    res, plain = resnet("resnet56", width=8), resnet("plain56", width=8)
    assert len(main_path_layers(res)) == len(main_path_layers(plain)) == 55
    assert count_parameters(plain) < count_parameters(res)  # only the projection shortcuts differ
    x = torch.randn(2, 3, 32, 32)
    assert res(x).shape == plain(x).shape == (2, 1000)


def test_residual_block_is_identity_when_its_branch_is_zero():
    model = resnet("resnet20", width=8).eval()
    block = model.layer1[0]
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    x = torch.rand(1, 8, 16, 16)  # non-negative, as after a ReLU
    torch.testing.assert_close(block(x), x)


def test_stage_shapes_of_a_cifar_resnet():
    _, maps = resnet("resnet20", width=16, num_classes=10).forward_features(torch.randn(1, 3, 32, 32), return_stages=True)
    assert [tuple(m.shape[1:]) for m in maps] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("name", ["resnet19", "wide20", "resnet"])
def test_unknown_depths_are_named(name):
    with pytest.raises(ValueError, match="ResNet"):
        resnet(name)


def test_wrong_input_is_named():
    model = resnet("resnet20", width=8)
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_unsupported_timm_models_are_refused():
    with pytest.raises(ValueError, match="stem"):
        from_timm(timm.create_model("resnet18d", pretrained=False))
    with pytest.raises(TypeError, match="no converter"):
        from_timm(timm.create_model("efficientnet_b0", pretrained=False))
    with pytest.raises(TypeError, match="takes a timm model"):
        from_timm(torch.nn.Linear(2, 2))


def test_layer_responses_read_every_3x3_layer_before_the_shortcut():
    model = resnet("resnet20", num_classes=3, width=4, zero_init_last=False)
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = 1.0  # running statistics := this batch's, so eval mode normalises exactly
    for bn in [model.layer1[0].bn1, model.layer1[0].bn2]:
        bn.weight.data.fill_(0.25)  # a normalised response's spread is its batch-norm scale
    with torch.no_grad():
        model.train()(images)
    responses = layer_responses(model, images)
    assert len(responses) == len(main_path_layers(model)) - 1  # every 3x3 conv but the stem
    assert responses[:2] == pytest.approx([0.25, 0.25], abs=0.01)
    assert responses[2:] == pytest.approx([1.0] * 16, abs=0.05)
    assert not model.training and not model.layer1[0].bn1._forward_hooks
