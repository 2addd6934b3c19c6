"""FrechetAggregation: equals the batched mean on padded neighbourhoods, index/ptr/order agree, edge cases."""

from __future__ import annotations

import pytest
import torch

import hyperbolic
from hyperbolic.nn import FrechetAggregation, _kernel, frechet_mean, segment_frechet_mean

from . import mp_frechet as M


def _graph(seed=0, N=7, n=3):
    """Random neighbourhoods of sizes 0..5 (node 3 isolated); messages as ball points."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 6, (N,), generator=g)
    sizes[3] = 0
    index = torch.repeat_interleave(torch.arange(N), sizes)
    x = M.benchmark_sets(1, int(sizes.sum()), n, 1.5, seed=seed)[0]
    w = torch.rand(int(sizes.sum()), generator=g, dtype=torch.float64) + 0.1
    return x, w, index, sizes


def _padded_reference(x, w, index, sizes):
    N, t = sizes.numel(), int(sizes.max())
    xp = torch.zeros(N, t, x.shape[-1], dtype=x.dtype)
    wp = torch.zeros(N, t, dtype=x.dtype)
    slot = torch.cat([torch.arange(int(k)) for k in sizes])
    xp[index, slot] = x
    wp[index, slot] = w
    return frechet_mean(xp, wp, warn=False)


def test_equals_padded_batched_mean_and_isolated_node_is_origin():
    x, w, index, sizes = _graph()
    agg = FrechetAggregation()
    out = agg(x, index, weight=w)
    torch.testing.assert_close(out, _padded_reference(x, w, index, sizes), rtol=0, atol=1e-13)
    assert torch.equal(out[3], torch.zeros(3, dtype=torch.float64))
    assert agg.last_info.degenerate.tolist() == [k == 3 for k in range(7)]
    assert bool(agg.last_info.converged[sizes > 0].all())


def test_index_ptr_and_edge_order_agree():
    x, w, index, sizes = _graph(seed=1)
    agg = FrechetAggregation()
    out = agg(x, index, weight=w)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    torch.testing.assert_close(agg(x, ptr=ptr, weight=w), out, rtol=0, atol=0)
    perm = torch.randperm(index.numel(), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(agg(x[perm], index[perm], weight=w[perm]), out, rtol=0, atol=1e-13)
    # dim_size beyond the last target adds isolated nodes
    assert agg(x, index, dim_size=10, weight=w).shape == (10, 3)
    # neither index nor ptr: one set
    torch.testing.assert_close(agg(x, weight=w)[0], frechet_mean(x, w), rtol=0, atol=1e-14)


def test_ptr_given_with_index_must_agree_and_sets_the_node_count():
    """PyG's aggregations take ``ptr`` and ``index`` together: ptr is not ignored then."""
    x, w, index, sizes = _graph(seed=1)
    agg = FrechetAggregation()
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    torch.testing.assert_close(agg(x, index, ptr, weight=w), agg(x, index, weight=w), rtol=0, atol=0)
    # trailing nodes without messages: only ptr knows them
    longer = torch.cat([ptr, ptr[-1:], ptr[-1:]])
    out = agg(x, index, longer, weight=w)
    assert out.shape == (9, 3) and torch.equal(out[7:], torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="index and ptr"):
        agg(x, index, torch.tensor([0, index.numel()]))
    with pytest.raises(ValueError, match="index and ptr"):
        agg(x, index.flip(0), ptr)


def test_lorentz_messages_and_leading_axes():
    x, w, index, sizes = _graph(seed=3)
    lorentz = hyperbolic.Lorentz(3, curvature=-2.0)
    ball = hyperbolic.PoincareBall(3, curvature=-2.0)
    xb = x / 2**0.5
    out_l = FrechetAggregation(lorentz)(ball.to_lorentz(xb), index, weight=w)
    out_b = FrechetAggregation(ball)(xb, index, weight=w)
    torch.testing.assert_close(lorentz.to_poincare(out_l), out_b, rtol=0, atol=1e-12)
    # messages with the edge axis first and a channel axis in the middle
    stacked = torch.stack([x, 0.5 * x], dim=1)  # [E, 2, n]
    out = FrechetAggregation()(stacked, index, dim=0, weight=w)
    assert out.shape == (7, 2, 3)
    torch.testing.assert_close(out[:, 0], FrechetAggregation()(x, index, weight=w), rtol=0, atol=1e-14)


def test_gradcheck_messages_and_weights():
    x, w, index, sizes = _graph(seed=4, N=4, n=2)
    x, w = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    agg = FrechetAggregation()
    assert torch.autograd.gradcheck(lambda a, b: agg(a, index, weight=b), (x, w))


def test_isolated_and_zero_weight_nodes_get_zero_gradient():
    x, w, index, sizes = _graph(seed=5)
    w = w.clone()
    w[index == 0] = 0
    x, w = x.clone().requires_grad_(True), w.requires_grad_(True)
    out = FrechetAggregation()(x, index, weight=w)
    assert torch.equal(out[0], torch.zeros(3, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[index == 0], torch.zeros_like(x.grad[index == 0]))


def test_float32_dtype_kept():
    x, w, index, sizes = _graph(seed=6)
    out = FrechetAggregation()(x.float(), index, weight=w.float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), _padded_reference(x.float().double(), w.float().double(), index, sizes),
                               rtol=0, atol=1e-6)


def test_bad_input():
    x, w, index, sizes = _graph(seed=7)
    agg = FrechetAggregation()
    with pytest.raises(ValueError, match="index values"):
        agg(x, index, dim_size=3)
    with pytest.raises(ValueError, match="index must have shape"):
        agg(x, index[:-1])
    with pytest.raises(ValueError, match="weight must have shape"):
        agg(x, index, weight=w[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        agg(x, index, weight=-w)
    with pytest.raises(ValueError, match="ptr"):
        agg(x, ptr=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="message axis"):
        agg(x, index, dim=-1)
    empty = agg(x[:0], index[:0], dim_size=4)
    assert torch.equal(empty, torch.zeros(4, 3, dtype=torch.float64))


def test_repr_and_reset():
    agg = FrechetAggregation(hyperbolic.PoincareBall(4), max_iter=50)
    agg.reset_parameters()
    assert "FrechetAggregation(" in repr(agg) and "max_iter=50" in repr(agg)


def test_warm_start_gives_the_cold_result():
    x, w, index, sizes = _graph(seed=8)
    cold = FrechetAggregation()(x, index, weight=w)
    warm = FrechetAggregation(warm_start=True)
    warm(x * 0.9, index, weight=w)  # a different previous result
    torch.testing.assert_close(warm(x, index, weight=w), cold, rtol=0, atol=1e-12)
    assert "warm_start=True" in repr(warm)
    # a previous result far from the new means (points moved many units): still finite and exact
    boundary = x / x.norm(dim=-1, keepdim=True) * (1 - 1e-9)
    far = FrechetAggregation(warm_start=True)
    far(-boundary, index, weight=w)
    out = far(boundary, index, weight=w)
    torch.testing.assert_close(out, FrechetAggregation()(boundary, index, weight=w), rtol=0, atol=1e-12)
    assert torch.isfinite(out).all()


def test_reset_parameters_forgets_the_warm_start():
    x, w, index, sizes = _graph(seed=9)
    agg = FrechetAggregation(warm_start=True)
    agg(x, index, weight=w)
    assert agg._previous is not None and agg.last_info is not None
    agg.reset_parameters()
    assert agg._previous is None and agg.last_info is None


def test_warm_start_follows_ptr_and_output_shape():
    x, w, index, sizes = _graph(seed=10)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    cold = FrechetAggregation()(x, index, weight=w)
    agg = FrechetAggregation(warm_start=True)
    agg(x * 0.9, ptr=ptr, weight=w)
    assert agg._previous is not None and torch.equal(agg._previous[0], index)
    torch.testing.assert_close(agg(x, ptr=ptr, weight=w), cold, rtol=0, atol=1e-12)
    # the same index with another output size: the previous result does not fit and is not used
    agg(x, index, dim_size=10, weight=w)
    torch.testing.assert_close(agg(x, index, weight=w), cold, rtol=0, atol=1e-12)


def test_gradcheck_recentred_newton_phase_and_warm_started_nodes():
    """gradcheck through the forward paths the plain graph above misses: a node centred beyond distance 4.1
    (translated to the origin), a node of far-apart messages (Newton steps), and a warm start."""
    index = torch.tensor([0, 0, 0, 2, 2, 3, 3, 3, 3])
    x = torch.cat([M.near_boundary_sets(1, 3, 2, 5.0, 0.5, seed=56)[0], M.benchmark_sets(1, 2, 2, 1.0, seed=57)[0],
                   M.benchmark_sets(1, 4, 2, 2.0, seed=58)[0]])
    w = torch.rand(9, generator=torch.Generator().manual_seed(59), dtype=torch.float64) + 0.1
    cold, info = segment_frechet_mean(x, index, dim_size=5, weight=w, return_info=True)
    assert float(1 - cold[0].square().sum()) < _kernel._RECENTRE_BELOW
    assert int(info.n_iter[3]) > _kernel._NEWTON_AFTER and info.degenerate.tolist() == [False, True, False, False, True]
    init = segment_frechet_mean(x, index, dim_size=5, weight=w, tol=1e-3)
    _, warm_info = segment_frechet_mean(x, index, dim_size=5, weight=w, init=init, return_info=True)
    assert bool((warm_info.n_iter[[0, 2, 3]] < info.n_iter[[0, 2, 3]]).all())
    x, w = x.requires_grad_(True), w.requires_grad_(True)
    for start in (None, init):
        assert torch.autograd.gradcheck(
            lambda a, b, s=start: segment_frechet_mean(a, index, dim_size=5, weight=b, init=s), (x, w))
