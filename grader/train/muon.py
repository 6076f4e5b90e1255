"""Muon: momentum SGD whose update for each convolution filter bank is orthogonalised.

    Muon(params, lr=..., momentum=..., nesterov=True)

After Keller Jordan's Muon (https://kellerjordan.github.io/posts/muon/), as used by airbench's
fastest CIFAR-10 runs. For each parameter of shape (out, ...), the momentum update, seen as an
(out, rest) matrix G = U S V^T, is replaced by about U V^T: every direction of the update gets
the same size, so the filters that the plain gradient barely moves learn as fast as the others.
U V^T comes from a few Newton-Schulz iterations in bfloat16, not from an SVD. Before each step
the weights are rescaled to a fixed norm (sqrt(out)), so the lr is a relative step size and the
weight scale cannot drift (the BatchNorm after each convolution makes that scale irrelevant to
the network's output anyway).

Only for parameters with 2 or more dimensions that feed a normalisation: the trainer gives
biases, BatchNorm shifts and the classifier head to plain SGD.
"""

from __future__ import annotations

import torch

# Quintic Newton-Schulz coefficients (Jordan): chosen to push small singular values up fast.
# The iteration then leaves singular values between about 0.7 and 1.2 instead of exactly 1,
# which costs nothing in training and saves iterations.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalise(g: torch.Tensor, steps: int = 3) -> torch.Tensor:
    """About U V^T for the matrix g = U S V^T (rows x columns), in bfloat16.

    Each iteration maps X to a X + (b A + c A^2) X with A = X X^T, which moves every singular
    value of X (first scaled so that all are at most 1) towards 1 and keeps U and V.
    """
    if g.ndim != 2:
        raise ValueError(f"orthogonalise takes a matrix, not shape {tuple(g.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = g.to(torch.bfloat16)
    x = x / (x.norm() + 1e-7)  # the Frobenius norm bounds the largest singular value
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the short side: A is then the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Momentum (optionally Nesterov) with orthogonalised updates and norm-fixed weights.

    Per parameter p (out, ...) and step: buf = momentum * buf + grad; the update u is buf
    (or grad + momentum * buf with Nesterov); p is rescaled to norm sqrt(out); then
    p -= lr * orthogonalise(u as an (out, rest) matrix). No weight decay: the norm is fixed.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.9, nesterov: bool = True,
                 ns_steps: int = 3):
        if lr < 0 or not 0 <= momentum < 1:
            raise ValueError(f"Muon needs lr >= 0 and 0 <= momentum < 1 (got {lr}, {momentum})")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(f"Muon updates matrices and filter banks, not shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(p.grad)
                update = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.mul_(p.shape[0] ** 0.5 / p.norm().clamp_min(1e-12))
                direction = orthogonalise(update.reshape(p.shape[0], -1), group["ns_steps"])
                p.add_(direction.view(p.shape).to(p.dtype), alpha=-group["lr"])
        return loss
