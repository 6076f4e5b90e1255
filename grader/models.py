"""Network builders, by name, so a checkpoint can say how to rebuild its model.

    build(name, **args) -> nn.Module
"""

from __future__ import annotations

from typing import Callable

from torch import nn

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
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
