"""The fused Poincaré training kernels against the generic manifold operations (and autograd)."""

import mpmath
import pytest
import torch

from embed.kernels import is_plain_poincare, poincare_nearest, poincare_rows_distance, poincare_sgd_rows
from embed.train import EuclideanBaseline, _distinct
from hyperbolic import Lorentz, PoincareBall, reference


def _rows(n, dim, R, dtype, generator, max_radius=8.0):
    direction = torch.nn.functional.normalize(torch.randn(n, dim, generator=generator, dtype=torch.float64), dim=1)
    radius = torch.rand(n, 1, generator=generator, dtype=torch.float64) * max_radius
    return (direction * torch.tanh(radius / 2) * R).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_fused_distance_and_gradient_match_autograd(dtype, curvature):
    generator = torch.Generator().manual_seed(0)
    manifold = PoincareBall(5, curvature=curvature)
    R = float(manifold.scale(torch.zeros((), dtype=torch.float64)))
    rows = _rows(200, 5, R, dtype, generator)
    rows[3, 1] = 0
    rows[7] = rows[3]
    rows[7, 1] = 1e-170 if dtype == torch.float64 else 1e-22  # the square of the gap underflows
    iu = torch.randint(200, (60,), generator=generator)
    io = torch.randint(200, (60, 9), generator=generator)
    iu[0], io[0, 0], io[0, 1] = 3, 7, 3  # a pair closer than the square range, and a pair at distance 0
    weights = torch.randn(60, 9, generator=generator, dtype=dtype)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-5)

    fused = rows.clone().requires_grad_()
    d = poincare_rows_distance(manifold, fused, iu, io)
    (d * weights).sum().backward()
    generic = rows.clone().requires_grad_()
    reference = manifold.dist(generic[iu].unsqueeze(1), generic[io])
    (reference * weights).sum().backward()
    assert d.dtype == dtype and d.shape == (60, 9)
    torch.testing.assert_close(d, reference, **tol)
    assert float(d[0, 0].detach()) > 0 and float(d[0, 1].detach()) == 0
    # float32: both sides round 1 - |p|^2 near the boundary differently
    grad_tol = tol if dtype == torch.float64 else dict(rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(fused.grad, generic.grad, **grad_tol)
    assert torch.isfinite(fused.grad).all()

    pairs = poincare_rows_distance(manifold, rows, iu, io[:, 0])  # (B,) against (B,)
    torch.testing.assert_close(pairs, manifold.dist(rows[iu], rows[io[:, 0]]), **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("curvature", [-1.0, -2.5])
@pytest.mark.parametrize("max_step", [None, 0.1])
def test_fused_sgd_step_matches_retraction(dtype, curvature, max_step):
    generator = torch.Generator().manual_seed(1)
    manifold = PoincareBall(4, curvature=curvature)
    R = float(manifold.scale(torch.zeros((), dtype=torch.float64)))
    x = _rows(300, 4, R, dtype, generator, max_radius=6.0)
    grad = torch.randn(300, 4, generator=generator, dtype=dtype) * torch.logspace(-3, 0, 300, dtype=dtype)[:, None]
    grad[5] = 0
    lr = 0.7
    step = poincare_sgd_rows(manifold, x, grad, lr, max_step)
    g = grad
    if max_step is not None:  # the trainer's clipping hook: Riemannian step length at most max_step
        norm = manifold.norm(x, manifold.egrad2rgrad(x, grad.clone()))
        g = grad * (max_step / lr / norm.clamp_min(1e-300)).clamp(max=1).unsqueeze(-1)
    reference = manifold.retr(x, -lr * manifold.egrad2rgrad(x, g))
    gap = manifold.dist(step, reference)
    assert float(gap.max()) < (1e-11 if dtype == torch.float64 else 1e-3)
    assert torch.equal(step[5], x[5])
    if max_step is not None:
        slack = 1e-9 if dtype == torch.float64 else 1e-4
        assert float(manifold.dist(step, x).max()) <= max_step + slack


def test_fused_path_only_for_plain_poincare():
    assert is_plain_poincare(PoincareBall(3))
    assert not is_plain_poincare(PoincareBall(3, learnable=True))
    assert not is_plain_poincare(Lorentz(3))
    assert not is_plain_poincare(EuclideanBaseline(3))

    class Custom(PoincareBall):
        def dist(self, x, y, *, keepdim=False):
            return super().dist(x, y, keepdim=keepdim)

    assert not is_plain_poincare(Custom(3))


def test_distinct_is_unique_with_inverse():
    flat = torch.randint(50, (400,), generator=torch.Generator().manual_seed(2))
    ids, inverse = _distinct(flat, 60)
    expected_ids, expected_inverse = torch.unique(flat, return_inverse=True)
    assert torch.equal(ids, expected_ids) and torch.equal(inverse, expected_inverse)


@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_fused_distance_gradcheck(curvature):
    """float64 gradcheck of the hand-derived backward (repeated rows, so gradients accumulate), on the unit
    ball and scaled to another radius, for ``(B, K)`` and ``(B,)`` partners."""
    generator = torch.Generator().manual_seed(11)
    manifold = PoincareBall(3, curvature=curvature)
    R = float(manifold.scale(torch.zeros((), dtype=torch.float64)))
    rows = _rows(6, 3, R, torch.float64, generator, max_radius=4.0).requires_grad_()
    iu = torch.tensor([0, 1, 2, 0])
    io = torch.tensor([[1, 3, 4], [0, 5, 2], [3, 3, 1], [5, 4, 2]])
    assert torch.autograd.gradcheck(lambda r: poincare_rows_distance(manifold, r, iu, io), (rows,))
    assert torch.autograd.gradcheck(lambda r: poincare_rows_distance(manifold, r, iu, io[:, 0]), (rows,))


@pytest.mark.parametrize("curvature", [-1.0, -0.3])
def test_poincare_nearest_orders_like_the_mpmath_distance(curvature):
    generator = torch.Generator().manual_seed(4)
    manifold = PoincareBall(3, curvature=curvature)
    R = float(manifold.scale(torch.zeros((), dtype=torch.float64)))
    points = _rows(40, 3, R, torch.float64, generator, max_radius=12.0)
    rows = torch.tensor([0, 5, 17, 39])
    found = poincare_nearest(manifold, points, rows, 8)
    with mpmath.workprec(200):
        lifted = [reference.from_poincare([mpmath.mpf(float(c)) / R for c in p]) for p in points]
        for row, indices in zip(rows.tolist(), found.tolist()):
            distances = [reference.dist(lifted[row], q) for q in lifted]
            assert indices == sorted(range(40), key=lambda j: distances[j])[:8]
