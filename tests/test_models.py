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


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(KeyError, match="homework_net"):
        build("resnet9000")
