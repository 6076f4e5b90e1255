"""The recipe's network, built and initialised: seeded weights, then the optional whitening conv.

    new_model(recipe, train_x, seed, device) -> nn.Module
    set_whitening(net, x, eps)                 layer 0 set to the data's patch basis, frozen
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grader.errors import GraderError
from grader.models import build
from grader.train.data import normalise
from grader.train.recipes import Recipe


def new_model(recipe: Recipe, train_x: torch.Tensor, seed: int, device: torch.device) -> nn.Module:
    """The recipe's network, initialised from ``seed`` (and whitened from the data if asked).

    The whitening sample is a fixed random draw of training images (the same for every seed):
    an image tree is stored class by class, so its first images would all be airplanes.
    """
    torch.manual_seed(seed)
    net = build(recipe.arch, **recipe.arch_args)
    if recipe.whiten_samples:
        n = len(train_x)
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:recipe.whiten_samples]
        set_whitening(net, normalise(train_x[pick.to(train_x.device)], recipe), recipe.whiten_eps)
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if recipe.channels_last else net


def set_whitening(net: nn.Module, x: torch.Tensor, eps: float) -> None:
    """Set the first conv (k x k, 2m outputs) to the ZCA-like basis of the data's k x k patches.

    Its weights become +/- the patch-covariance eigenvectors divided by sqrt(eigenvalue + eps),
    and are frozen (airbench's whitening init): the network starts on decorrelated inputs.
    Its bias stays trainable.
    """
    conv = net[0]
    if not isinstance(conv, nn.Conv2d):
        raise GraderError(f"the architecture has no whitening conv as layer 0 (found {type(conv).__name__})",
                          "set whiten_samples = 0 for this recipe")
    c, (k, _) = conv.in_channels, conv.kernel_size
    patches = F.unfold(x.float(), k).transpose(1, 2).reshape(-1, c * k * k)  # (n*l, c*k*k)
    patches = patches - patches.mean(0)
    cov = patches.T @ patches / len(patches)  # on x's device; the small eigenproblem on the CPU
    eigvals, eigvecs = torch.linalg.eigh(cov.double().cpu())  # ascending
    basis = (eigvecs.T / torch.sqrt(eigvals + eps)[:, None]).flip(0).float()  # (c*k*k, c*k*k)
    m = conv.out_channels // 2
    weight = torch.cat([basis[:m], -basis[:m]]).view(2 * m, c, k, k)
    with torch.no_grad():
        conv.weight.copy_(weight.to(conv.weight.device))
        if conv.bias is not None:
            conv.bias.zero_()
    conv.weight.requires_grad_(False)
