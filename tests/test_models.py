"""grader.models: every architecture builds by name, maps (n, 3, 32, 32) to (n, 10), and round-trips."""

from __future__ import annotations

import pytest
import torch

from grader.models import ARCHITECTURES, build


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_shapes_and_state_dict_round_trip(name):
    torch.manual_seed(0)
    net, twin = build(name).eval(), build(name).eval()
    twin.load_state_dict(net.state_dict())
    x = torch.rand(2, 3, 32, 32)
    assert net(x).shape == (2, 10)
    assert torch.equal(net(x), twin(x))


def test_fast_net_widths_are_arguments():
    net = build("fast_net", widths=[8, 16, 24], num_classes=5)
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 5)
    assert net[-2].in_features == 24


def test_fast_net_options_for_the_muon_recipe():
    torch.manual_seed(0)
    net = build("fast_net", widths=[8, 16, 24], bn_scale=False, bn_eps=1e-12, head_std=1.0, logit_scale=1 / 24)
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bn) == 6 and all(m.eps == 1e-12 and not m.weight.requires_grad and m.bias.requires_grad for m in bn)
    assert net[-2].weight.std().item() == pytest.approx(1.0, rel=1e-4)
    assert net[-1].factor == 1 / 24


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(KeyError, match="homework_net"):
        build("resnet9000")
