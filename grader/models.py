"""Network builders, by name, so a checkpoint can say how to rebuild its model.

    build(name, **args) -> nn.Module
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make the builder ``fn`` available to ``build`` under its own name."""
    ARCHITECTURES[fn.__name__] = fn
    return fn


def build(name: str, **args) -> nn.Module:
    """Build the architecture registered as ``name`` with keyword ``args``.

    Raises:
        KeyError: naming the known architectures, when ``name`` is not one of them.
    """
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name](**args)


@register
def homework_net(num_classes: int = 10, dropout: float = 0.3) -> nn.Sequential:
    """The homework's AlexNet-like reference network, layer for layer, as one nn.Sequential.

    Input (n, 3, 32, 32) in 0..1, no normalisation; output (n, num_classes) logits.
    Weights: Kaiming-uniform on every Conv2d and Linear, as the reference solution did.
    """
    net = nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=7, stride=1, padding=3), nn.ReLU(), nn.MaxPool2d(2),  # 16x16
        nn.Conv2d(16, 64, kernel_size=5, stride=1, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 8x8
        nn.Conv2d(64, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
        nn.Flatten(),  # 64 * 4 * 4 = 1024
        nn.Linear(1024, 256), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(256, num_classes),
    )
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight)
    return net


class _Scale(nn.Module):
    """Multiply by a constant: keeps the head's logits small at init without a learned scale."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def _batch_norm(channels: int, momentum: float, eps: float, scale: bool) -> nn.BatchNorm2d:
    """BatchNorm; ``scale=False`` freezes its weight at 1 (only the shift is learned, as airbench)."""
    bn = nn.BatchNorm2d(channels, momentum=momentum, eps=eps)
    bn.weight.requires_grad_(scale)
    return bn


def _conv_group(c_in: int, c_out: int, bn_momentum: float, bn_eps: float, bn_scale: bool) -> nn.Sequential:
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU: halves h and w."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False), nn.MaxPool2d(2),
        _batch_norm(c_out, bn_momentum, bn_eps, bn_scale), nn.GELU(),
        nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False),
        _batch_norm(c_out, bn_momentum, bn_eps, bn_scale), nn.GELU(),
    )


@register
def fast_net(widths: tuple[int, int, int] | list[int] = (32, 64, 128), whiten_width: int = 24,
             num_classes: int = 10, bn_momentum: float = 0.4, logit_scale: float = 1 / 9,
             bn_eps: float = 1e-5, bn_scale: bool = True, head_std: float | None = None) -> nn.Sequential:
    """A small airbench-style network (after KellerJordan/cifar10-airbench and Page's ResNet-9).

    Input (n, 3, 32, 32) normalised per channel; output (n, num_classes) logits.
    Layer 0 is a 2x2 "whitening" convolution (whiten_width = 2 * 12 patch eigenvectors) whose
    weights the trainer sets from the data and that are built frozen (requires_grad False); then
    three conv groups, each halving the resolution: 31 -> 15 -> 7 -> 3, a global max pool and a
    bias-free linear head whose output is multiplied by ``logit_scale``.

    ``bn_scale=False`` freezes every BatchNorm weight at 1; ``head_std`` rescales the head's initial
    weights to that standard deviation (airbench's Muon variant: 1.0 with logit_scale 1/width).
    """
    w1, w2, w3 = widths
    whiten = nn.Conv2d(3, whiten_width, kernel_size=2, padding=0, bias=True)  # 31x31
    groups = [_conv_group(c_in, c_out, bn_momentum, bn_eps, bn_scale)
              for c_in, c_out in ((whiten_width, w1), (w1, w2), (w2, w3))]  # 15x15, 7x7, 3x3
    net = nn.Sequential(
        whiten, nn.GELU(),
        *groups,
        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(w3, num_classes, bias=False), _Scale(logit_scale),
    )
    if head_std is not None:
        with torch.no_grad():
            head = net[-2].weight
            head.mul_(head_std / head.std())
    net[0].weight.requires_grad_(False)  # set from the data by the trainer, never trained
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            # Dirac-plus-noise init (airbench): each conv starts near an identity on its first channels.
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            with torch.no_grad():
                n_id = min(module.in_channels, module.out_channels)
                nn.init.dirac_(module.weight[:n_id])
    return net
