"""Explicit pair storage: a float parameter and an integer buffer, trained by geoopt's optimisers."""

import io

import geoopt
import pytest
import torch

from tiling import LTiling, LTilingPoints


def _train(model, points_of, parameters, optimiser_class, steps=15, **options):
    torch.manual_seed(0)
    target = model.random(32, std=6.0, generator=torch.Generator().manual_seed(1))
    optimiser = optimiser_class(parameters, **options)
    for _ in range(steps):
        optimiser.zero_grad()
        model.dist(points_of(), target).square().sum().backward()
        optimiser.step()
    return points_of().detach(), model.dist(points_of(), target).mean().item()


@pytest.mark.parametrize("optimiser_class, options", [
    (geoopt.optim.RiemannianSGD, {"lr": 0.05}),
    (geoopt.optim.RiemannianSGD, {"lr": 0.02, "momentum": 0.5}),
    (geoopt.optim.RiemannianAdam, {"lr": 0.3}),
])
def test_pair_trains_exactly_like_the_packed_storage(optimiser_class, options):
    model = LTiling(max_radius=40)
    start = model.random(32, std=6.0, generator=torch.Generator().manual_seed(2))
    packed = geoopt.ManifoldParameter(start.clone(), manifold=model)
    expected, packed_loss = _train(model, lambda: packed, [packed], optimiser_class, **options)
    pair = LTilingPoints(start, model)
    result, pair_loss = _train(model, pair, pair.parameters(), optimiser_class, **options)
    initial = model.dist(start, model.random(32, std=6.0, generator=torch.Generator().manual_seed(1))).mean().item()
    assert pair_loss < 0.8 * initial  # it learns
    # Every step is the packed arithmetic (the optimiser state of the packed storage also has the integer slots,
    # so reductions may round in another order: ulps).
    assert torch.allclose(result, expected, rtol=0, atol=1e-12)
    assert not torch.equal(pair.T, model.split(start)[1])  # the group elements did change
    assert [name for name, _ in pair.named_parameters()] == ["u"]
    assert pair.T.dtype == torch.int64 and not pair.T.requires_grad


def test_pair_state_dict_round_trip_and_errors():
    model = LTiling(max_radius=30)
    pair = LTilingPoints(model.random(5, std=4.0), model)
    buffer = io.BytesIO()
    torch.save(pair.state_dict(), buffer)
    buffer.seek(0)
    other = LTilingPoints(model.origin(5), model)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(other(), pair())
    with pytest.raises(ValueError, match="dense optimisers"):
        pair.u.manifold.retr(pair.u[:2].detach(), torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(NotImplementedError, match="retr_transp"):
        pair.u.manifold.transp(pair.u, pair.u, pair.u)
    with pytest.raises(ValueError):
        LTilingPoints(model.random(3)[:, :10], model)
