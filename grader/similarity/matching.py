"""Weight matching: how alike two networks of one architecture are, whatever order their hidden
units are in (pure).

    match_weights(a, b) -> Matched | None      None when the architectures differ

Permuting a layer's output units (and the next layer's inputs to match) leaves a network's
function unchanged, so a copy can hide behind a reordering. As in git re-basin's weight
matching (Ainsworth et al., 2023), each hidden layer's permutation is chosen by an assignment
(scipy's ``linear_sum_assignment``) that maximises the inner product of the two networks'
weights, layer by layer, repeated while any permutation changes. The score is the cosine
similarity of the aligned weight matrices, averaged over layers by size: near 1 for a copy or
a fine-tuned copy, far lower for networks trained apart.

Layers are read from the tensors' order: each tensor of two or more dimensions (out, in, ...)
starts a layer, and the 1-D tensors of length ``out`` after it (bias, BatchNorm) follow its
units. A layer whose ``in`` is the previous layer's ``out`` (or a multiple: a flatten) has its
inputs permuted with it; residual connections are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MatchLimits:
    """Bounds on one pair's matching.

    Attributes:
        rounds: passes over the layers (each layer one assignment per pass).
        units: a layer with more output units keeps its order (an assignment is cubic in units).
    """

    rounds: int = 6
    units: int = 2048


@dataclass(frozen=True)
class Matched:
    """Two same-architecture networks compared.

    Attributes:
        as_saved: cosine similarity of the weights in their saved order.
        aligned: the same after weight matching (at least ``as_saved``).
        reordered_units: hidden units the matching moved, in all layers.
    """

    as_saved: float
    aligned: float
    reordered_units: int


@dataclass(frozen=True)
class _Layer:
    weight: int          # index of its weight tensor
    out: int             # output units
    attached: tuple[int, ...]  # indices of its 1-D tensors (bias, BatchNorm)
    group: int           # inputs per previous unit (1; a flatten's spatial size); 0: inputs not linked


def match_weights(a: list[np.ndarray], b: list[np.ndarray], limits: MatchLimits = MatchLimits()) -> Matched | None:
    """Weight-match ``b`` to ``a`` (tensors in layer order, as ``read_tensors`` gives them).

    Returns:
        the comparison, or None when the two do not have the same shapes in the same order.
    """
    if [t.shape for t in a] != [t.shape for t in b]:
        return None
    layers = _layers([t.shape for t in a])
    if not layers:
        return None
    perms = [np.arange(layer.out) for layer in layers]
    as_saved = _score(a, b, layers, perms)
    free = [i for i, layer in enumerate(layers[:-1]) if layer.out <= limits.units]  # the outputs keep their order
    for _ in range(limits.rounds):
        changed = False
        for i in free:
            new = _assign(a, b, layers, perms, i)
            changed |= not np.array_equal(new, perms[i])
            perms[i] = new
        if not changed:
            break
    moved = int(sum(np.count_nonzero(p != np.arange(len(p))) for p in perms))
    return Matched(as_saved, max(as_saved, _score(a, b, layers, perms)), moved)


def _layers(shapes: list[tuple[int, ...]]) -> list[_Layer]:
    """The chain of layers that ``shapes`` (in order) describe."""
    layers: list[_Layer] = []
    for i, shape in enumerate(shapes):
        if len(shape) >= 2:
            group = 0
            if layers and shape[1] % layers[-1].out == 0:
                group = shape[1] // layers[-1].out
            layers.append(_Layer(i, shape[0], (), group))
        elif len(shape) == 1 and layers and shape[0] == layers[-1].out:
            last = layers[-1]
            layers[-1] = _Layer(last.weight, last.out, (*last.attached, i), last.group)
    return layers


def _inputs_permuted(w: np.ndarray, layer: _Layer, before: np.ndarray | None) -> np.ndarray:
    """Weight ``w`` as (out, in_units, rest) with its inputs in ``before``'s order."""
    out = w.shape[0]
    if before is None or not layer.group:
        return w.reshape(out, 1, -1)
    return w.reshape(out, len(before), -1)[:, before, :]


def _assign(a, b, layers: list[_Layer], perms: list[np.ndarray], i: int) -> np.ndarray:
    """The best order of layer ``i``'s units of ``b``, the other layers' orders held."""
    from scipy.optimize import linear_sum_assignment

    layer = layers[i]
    before = perms[i - 1] if i else None
    wa = _inputs_permuted(a[layer.weight], layer, np.arange(len(before)) if before is not None else None)
    wb = _inputs_permuted(b[layer.weight], layer, before)
    cost = wa.reshape(layer.out, -1) @ wb.reshape(layer.out, -1).T  # (out, out)
    for t in layer.attached:
        cost += np.outer(a[t], b[t])
    after = layers[i + 1] if i + 1 < len(layers) else None
    if after is not None and after.group:
        na = a[after.weight].reshape(after.out, layer.out, -1)
        nb = b[after.weight].reshape(after.out, layer.out, -1)[perms[i + 1]]
        cost += na.transpose(1, 0, 2).reshape(layer.out, -1) @ nb.transpose(1, 0, 2).reshape(layer.out, -1).T
    return linear_sum_assignment(cost, maximize=True)[1]


def _score(a, b, layers: list[_Layer], perms: list[np.ndarray]) -> float:
    """Cosine similarity of each layer's weight matrix, ``b`` permuted by ``perms``, averaged by size."""
    total, weight = 0.0, 0
    for i, layer in enumerate(layers):
        before = perms[i - 1] if i else None
        wa = _inputs_permuted(a[layer.weight], layer, np.arange(len(before)) if before is not None else None)
        wb = _inputs_permuted(b[layer.weight], layer, before)[perms[i]]
        norm = float(np.linalg.norm(wa) * np.linalg.norm(wb))
        if norm > 0:
            total += float(np.sum(wa * wb)) / norm * wa.size
            weight += wa.size
    return total / weight if weight else 0.0
