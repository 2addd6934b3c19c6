"""Products of L-tilings: the Riemannian product distance, and the l1 sum only by name."""

import math

import geoopt
import mpmath
import pytest
import torch

from hyperbolic import reference, registry
from tiling import LTilingProduct


def test_product_distance_is_the_riemannian_one():
    product = LTilingProduct(3, max_radius=40)
    torch.manual_seed(0)
    x, y = product.random(10, std=5.0), product.random(10, std=5.0)
    assert x.shape == (10, product.storage_dim)
    with mpmath.mp.workprec(300):
        exact = [[reference.dist(a, b) for a, b in zip(p, q)]
                 for p, q in zip(product.to_reference(x), product.to_reference(y))]
    riemannian = [float(mpmath.sqrt(sum(d * d for d in ds))) for ds in exact]
    l1 = [float(sum(ds)) for ds in exact]
    assert torch.allclose(product.dist(x, y), torch.tensor(riemannian, dtype=torch.float64), rtol=1e-14)
    l1_product = LTilingProduct(3, max_radius=40, combine="l1-sum")
    assert torch.allclose(l1_product.dist(x, y), torch.tensor(l1, dtype=torch.float64), rtol=1e-14)
    with pytest.raises(ValueError, match="combine"):
        LTilingProduct(2, combine="sum")


def test_gradient_is_guarded_at_zero_and_optimiser_trains():
    product = LTilingProduct(2, max_radius=30)
    torch.manual_seed(1)
    x = product.random(4, std=2.0).requires_grad_()
    product.dist(x, x.detach()).sum().backward()
    assert bool(torch.isfinite(x.grad).all())
    target = product.random(16, std=3.0)
    point = geoopt.ManifoldParameter(product.random(16, std=3.0), manifold=product)
    optimiser = geoopt.optim.RiemannianSGD([point], lr=0.1)
    start = product.dist(point, target).mean().item()
    for _ in range(20):
        optimiser.zero_grad()
        product.dist(point, target).square().sum().backward()
        optimiser.step()
    product.assert_points(point.detach())
    assert product.dist(point, target).mean().item() < 0.5 * start


def test_exp_log_and_spec():
    product = LTilingProduct(2, max_radius=30)
    torch.manual_seed(2)
    x = product.random(20, std=4.0)
    v = product.proju(x, torch.randn(20, product.storage_dim, dtype=torch.float64))
    v = v / product.norm(x, v, keepdim=True) * 0.7
    y = product.expmap(x, v)
    assert torch.allclose(product.dist(x, y), torch.full((20,), 0.7, dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(product.logmap(x, y), v, atol=1e-12)
    rebuilt = registry.manifold_from_spec(product.spec())
    assert isinstance(rebuilt, LTilingProduct) and rebuilt.factors == 2 and math.isclose(
        rebuilt.factor.max_radius, 30)
