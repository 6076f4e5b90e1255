"""grader.train.muon: the orthogonalised update and the optimizer that applies it."""

from __future__ import annotations

import pytest
import torch

from grader.train.muon import Muon, orthogonalise


def _matrix_with_spectrum(rows: int, cols: int, values: torch.Tensor, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=gen))
    k = len(values)
    return u[:, :k] @ torch.diag(values) @ v[:, :k].T, u[:, :k] @ v[:, :k].T


@pytest.mark.parametrize("shape", [(32, 96), (96, 32)], ids=["wide", "tall"])
def test_orthogonalise_evens_out_the_singular_values_and_keeps_the_directions(shape):
    k = min(shape)
    spread = torch.logspace(0, -1.5, k)  # singular values over 1.5 decades
    g, polar = _matrix_with_spectrum(*shape, spread * 7.0)
    out = orthogonalise(g).float()
    assert out.shape == g.shape
    s = torch.linalg.svdvals(out)
    assert s.min() > 0.5 and s.max() < 1.5  # 1.5 decades squeezed to within 3x
    cosine = (out * polar).sum() / (out.norm() * polar.norm())
    assert cosine > 0.95  # about U V^T: the singular vectors of g are kept


def test_orthogonalise_refuses_anything_but_a_matrix():
    with pytest.raises(ValueError, match="matrix"):
        orthogonalise(torch.ones(2, 3, 4))


def test_muon_fits_a_linear_map_with_a_fixed_weight_norm():
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(8, 12, generator=gen)
    target *= 8 ** 0.5 / target.norm()  # Muon holds the weight at norm sqrt(rows)
    x = torch.randn(12, 256, generator=gen)
    w = torch.nn.Parameter(torch.randn(8, 12, generator=gen))
    opt = Muon([w], lr=0.1, momentum=0.6)
    first = None
    for step in range(60):
        for g in opt.param_groups:
            g["lr"] = 0.1 * (1 - step / 60)
        loss = ((w @ x - target @ x) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.02 * first
    assert w.norm().item() == pytest.approx(8 ** 0.5, rel=0.05)


def test_muon_takes_only_matrices_and_filter_banks():
    with pytest.raises(ValueError, match="not shape"):
        Muon([torch.nn.Parameter(torch.ones(4))])
    with pytest.raises(ValueError, match="momentum"):
        Muon([torch.nn.Parameter(torch.ones(2, 2))], momentum=1.0)
