"""The conformance suite: every registered representation, in each of its dtypes, keeps the protocol.

New representations register themselves (``hyperbolic.registry.register``) and run here unchanged.
The oracle is the mpmath reference; tolerances come from the dtype table in ``cases.py``.
"""

import math
import random

import geoopt
import mpmath
import pytest
import torch

from hyperbolic import PrecisionError, io, reference

from .cases import DTYPE_TOLERANCE, all_cases, build, reference_points, tangent

CASES = all_cases()
FLOAT64_CASES = [case for case in CASES if case.values[1] == torch.float64]
SEEDS = (0, 1)


def _points(manifold, dtype, n, max_radius, seed):
    return manifold.from_reference(reference_points(n, max_radius, manifold.dim, seed), dtype=dtype)


@pytest.mark.parametrize("label,dtype,dim", CASES)
@pytest.mark.parametrize("seed", SEEDS)
def test_projx_is_idempotent_and_keeps_points(label, dtype, dim, seed):
    manifold = build(label, dim)
    x = _points(manifold, dtype, 32, DTYPE_TOLERANCE[dtype]["radius"], seed)
    once = manifold.projx(x)
    manifold.assert_points(once)
    assert torch.equal(manifold.projx(once), once)
    assert float(manifold.dist(once, x).max()) <= DTYPE_TOLERANCE[dtype]["inverse"]


@pytest.mark.parametrize("label,dtype,dim", CASES)
@pytest.mark.parametrize("seed", SEEDS)
def test_expmap_and_logmap_are_inverse(label, dtype, dim, seed):
    manifold = build(label, dim)
    tol = DTYPE_TOLERANCE[dtype]["inverse"]
    generator = torch.Generator().manual_seed(seed)
    x = _points(manifold, dtype, 32, 3.0, seed)
    length = torch.empty(32, dtype=dtype).uniform_(0.05, 2.0, generator=generator)
    u = tangent(manifold, x, length, generator)
    y = manifold.expmap(x, u)
    manifold.assert_points(y)
    torch.testing.assert_close(manifold.dist(x, y), length, rtol=tol, atol=tol)
    v = manifold.logmap(x, y)
    error = manifold.norm(x, u - v) / length
    assert float(error.max()) <= tol
    # and the other way round: exp(log) lands on the target
    assert float(manifold.dist(manifold.expmap(x, v), y).max()) <= tol


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_distance_is_symmetric_zero_on_diagonal_and_triangular(label, dtype, dim):
    manifold = build(label, dim)
    slack = DTYPE_TOLERANCE[dtype]["slack"]
    x, y, z = _points(manifold, dtype, 3 * 40, 6.0, 7).split(40)
    dxy, dyx = manifold.dist(x, y), manifold.dist(y, x)
    torch.testing.assert_close(dxy, dyx, rtol=slack, atol=slack)
    assert float(manifold.dist(x, x).abs().max()) <= slack
    assert bool((manifold.dist(x, z) <= dxy + manifold.dist(y, z) + slack * (1 + dxy)).all())


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_distance_is_isometry_invariant(label, dtype, dim):
    manifold = build(label, dim)
    tol = DTYPE_TOLERANCE[dtype]["inverse"]
    points = reference_points(20, 3.0, dim, 11)
    rng = random.Random(3)
    with mpmath.mp.workprec(400):
        moved = []
        for k, p in enumerate(points):
            if k % 2 == 0:
                angle, t = rng.uniform(0, 2 * math.pi), rng.uniform(-2, 2)
                isometry = (reference.rotation(dim, 1, dim, angle), reference.boost(dim, 1, t))
            moved.append(reference.apply(isometry[1], reference.apply(isometry[0], p)))
    x = manifold.from_reference(points, dtype=dtype)
    y = manifold.from_reference(moved, dtype=dtype)
    before = manifold.dist(x[0::2], x[1::2])
    after = manifold.dist(y[0::2], y[1::2])
    torch.testing.assert_close(before, after, rtol=tol, atol=tol)


@pytest.mark.parametrize("label,dtype,dim", CASES)
@pytest.mark.parametrize("seed", SEEDS)
def test_distance_agrees_with_reference_on_stored_points(label, dtype, dim, seed):
    """Random pairs within radius 10 (float64; 3 for float32): relative error against the exact
    distance of the points as stored."""
    manifold = build(label, dim)
    tol = DTYPE_TOLERANCE[dtype]
    x = _points(manifold, dtype, 2 * 30, tol["radius"], seed)
    first, second = x[:30], x[30:]
    computed = manifold.dist(first, second).to(torch.float64).tolist()
    with mpmath.mp.workprec(reference.working_precision(tol["radius"] + 1)):
        truth = [reference.dist(a, b) for a, b in zip(manifold.to_reference(first), manifold.to_reference(second))]
    errors = [float(abs(mpmath.mpf(c) - t) / t) for c, t in zip(computed, truth)]
    assert max(errors) <= tol["dist_rel"], f"worst relative error {max(errors):.3g}"


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_precision_contract_holds_at_its_radius_and_ceiling_is_enforced(label, dtype, dim):
    """Near pairs (d = 1) at the declared usable radius are within 1e-6 of the exact distance; points
    beyond the declared ceiling are refused."""
    from hyperbolic.precision import make_pairs, measure

    manifold = build(label, dim)
    contract = manifold.contract(dtype)
    radius = min(contract.usable_radius, 1000.0)
    if radius > 0:
        pairs = make_pairs(radius, "near", n_pairs=10, dim=dim, seed=5)
        row = measure(label, manifold, dtype, pairs)
        assert row.status == "ok" and row.nonfinite == 0
        assert row.max_rel_err < 1e-6, f"error {row.max_rel_err:.3g} at declared usable radius {radius:.1f}"
    if contract.max_radius < 5000:
        with mpmath.mp.workprec(reference.working_precision(contract.max_radius + 2)):
            beyond = reference.point_at(contract.max_radius + 1, [mpmath.mpf(1)] + [mpmath.mpf(0)] * (dim - 1))
        with pytest.raises(PrecisionError):
            manifold.from_reference([beyond], dtype=dtype)


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_lorentz_and_reference_round_trips(label, dtype, dim):
    manifold = build(label, dim)
    tol = DTYPE_TOLERANCE[dtype]["inverse"]
    x = _points(manifold, dtype, 20, 4.0, 13)
    back = manifold.from_lorentz(manifold.to_lorentz(x))
    assert float(manifold.dist(x, back).max()) <= tol
    exact = manifold.from_reference(manifold.to_reference(x), dtype=dtype)
    assert float(manifold.dist(x, exact).max()) <= DTYPE_TOLERANCE[dtype]["slack"]
    X = manifold.to_lorentz(x)
    R2 = manifold.scale(X).square()
    defect = (-X[..., 0] ** 2 + X[..., 1:].square().sum(-1) + R2) / X[..., 0].square()
    assert float(defect.abs().max()) <= 10 * tol


@pytest.mark.parametrize("label,dtype,dim", FLOAT64_CASES)
def test_riemannian_gradient_matches_directional_derivative(label, dtype, dim):
    """Finite differences need float64, so this one runs on the float64 configurations."""
    manifold = build(label, dim)
    generator = torch.Generator().manual_seed(2)
    x = _points(manifold, dtype, 8, 3.0, 17)
    target = _points(manifold, dtype, 8, 3.0, 19)
    x.requires_grad_(True)
    loss = manifold.dist(x, target).square().sum()
    (egrad,) = torch.autograd.grad(loss, x)
    rgrad = manifold.egrad2rgrad(x.detach(), egrad)
    v = tangent(manifold, x.detach(), torch.ones(8, dtype=dtype), generator)
    h = 1e-6
    with torch.no_grad():
        plus = manifold.dist(manifold.expmap(x, h * v), target).square()
        minus = manifold.dist(manifold.expmap(x, -h * v), target).square()
    numeric = (plus - minus) / (2 * h)
    torch.testing.assert_close(manifold.inner(x.detach(), rgrad, v), numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_transport_keeps_inner_products(label, dtype, dim):
    manifold = build(label, dim)
    tol = DTYPE_TOLERANCE[dtype]["inverse"]
    generator = torch.Generator().manual_seed(4)
    x, y = _points(manifold, dtype, 2 * 10, 2.5, 23).split(10)
    u = tangent(manifold, x, torch.ones(10, dtype=dtype), generator)
    v = tangent(manifold, x, torch.full((10,), 0.5, dtype=dtype), generator)
    pu, pv = manifold.transp(x, y, u), manifold.transp(x, y, v)
    torch.testing.assert_close(manifold.inner(y, pu, pv), manifold.inner(x, u, v), rtol=tol * 10, atol=tol * 10)


OPTIMISERS = [
    (geoopt.optim.RiemannianSGD, False),
    (geoopt.optim.RiemannianAdam, False),
    (geoopt.optim.SparseRiemannianSGD, True),
    (geoopt.optim.SparseRiemannianAdam, True),
]


@pytest.mark.parametrize("label,dtype,dim", CASES)
@pytest.mark.parametrize("optimiser,sparse", OPTIMISERS, ids=lambda o: getattr(o, "__name__", str(o)))
def test_one_geoopt_step_on_an_embedding_table(label, dtype, dim, optimiser, sparse):
    manifold = build(label, dim)
    table = geoopt.ManifoldParameter(_points(manifold, dtype, 12, 2.0, 29), manifold=manifold)
    before = table.detach().clone()
    left, right = torch.arange(0, 12, 2), torch.arange(1, 12, 2)

    def loss():
        a = torch.nn.functional.embedding(left, table, sparse=sparse)
        b = torch.nn.functional.embedding(right, table, sparse=sparse)
        return manifold.dist(a, b).sum()

    optim = optimiser([table], lr=1e-2)
    start = loss()
    optim.zero_grad()
    start.backward()
    assert table.grad.is_sparse == sparse
    optim.step()
    with torch.no_grad():
        manifold.assert_points(table)
        assert float(loss()) < float(start)
        assert not torch.equal(table, before)


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_save_and_load_round_trip(label, dtype, dim, tmp_path):
    manifold = build(label, dim)
    x = _points(manifold, dtype, 9, 5.0, 31)
    names = [f"node {i}" for i in range(9)]
    path = tmp_path / "embedding.pt"
    io.save_embedding(path, x, manifold, names, config={"seed": 31})
    loaded_names, loaded, loaded_manifold = io.load_embedding(path)
    assert loaded_names == names
    assert torch.equal(loaded, x) and loaded.dtype == x.dtype
    assert loaded_manifold.spec() == manifold.spec()
    assert torch.equal(loaded_manifold.dist(loaded[:4], loaded[4:8]), manifold.dist(x[:4], x[4:8]))
    io.export_npz(tmp_path / "embedding.npz", x, manifold, names)
    npz_names, npz_points, npz_manifold = io.load_npz(tmp_path / "embedding.npz")
    assert npz_names == names and torch.equal(npz_points, x) and npz_manifold.spec() == manifold.spec()


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_origin_and_random_are_points_with_dtype_and_device_of_request(label, dtype, dim):
    manifold = build(label, dim)
    origin = manifold.origin(3, dtype=dtype)
    points = manifold.random(2, 5, std=1.0, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert origin.shape == (3, manifold.storage_dim) and points.shape == (2, 5, manifold.storage_dim)
    assert origin.dtype == dtype and points.dtype == dtype
    manifold.assert_points(points)
    assert float(manifold.dist(origin[0], origin[1]).abs()) <= DTYPE_TOLERANCE[dtype]["slack"]


def _finite_gradients(output, inputs) -> bool:
    """Whether the gradients of a loss of order one, ``output.sum()`` divided by the largest entry (at least 1),
    with respect to ``inputs`` are finite (True when none flow)."""
    if not output.requires_grad:
        return True
    loss = (output / output.detach().abs().amax().clamp_min(1)).sum()
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return all(g is None or bool(torch.isfinite(g).all()) for g in grads)


def _leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_coincident_points_and_zero_vectors_give_finite_values_and_gradients(label, dtype, dim):
    """Never a silent NaN where training meets degenerate input: a node is its own negative, a parameter sits at
    the origin, a gradient or a step is zero, two points are 1e-9 or 1e-15 apart."""
    manifold = build(label, dim)
    slack = DTYPE_TOLERANCE[dtype]["slack"]
    x = torch.cat([manifold.origin(1, dtype=dtype), _points(manifold, dtype, 5, 3.0, 37)])
    zero = torch.zeros_like(x)
    v = tangent(manifold, x, torch.ones(6, dtype=dtype), torch.Generator().manual_seed(5))

    a, b = _leaves(x, x)
    d = manifold.dist(a, b)
    assert float(d.detach().abs().max()) <= slack
    grads = torch.autograd.grad(d.sum(), (a, b))
    assert all(bool(torch.isfinite(g).all()) and float(g.abs().max()) <= slack for g in grads)

    a, b = _leaves(x, x)
    log = manifold.logmap(a, b)
    assert float(manifold.norm(x, log.detach()).max()) <= slack
    assert _finite_gradients(log, (a, b))

    a, u = _leaves(x, zero)
    moved = manifold.expmap(a, u)
    assert float(manifold.dist(moved.detach(), x).max()) <= slack
    assert _finite_gradients(moved[..., : manifold.dim], (a, u))

    a, u = _leaves(x, zero)
    length = manifold.norm(a, u)
    assert float(length.detach().abs().max()) == 0 and _finite_gradients(length, (a, u))
    assert float(manifold.egrad2rgrad(x, zero).abs().max()) == 0

    a, b, w = _leaves(x, x, v)
    moved = manifold.transp(a, b, w)
    assert float(manifold.norm(x, moved.detach() - v).max()) <= DTYPE_TOLERANCE[dtype]["inverse"]
    assert _finite_gradients(moved, (a, b, w))
    a, b, w = _leaves(x, x.roll(1, 0), zero)
    moved = manifold.transp(a, b, w)
    assert float(moved.detach().abs().max()) == 0 and _finite_gradients(moved, (a, b, w))

    for step in (1e-9, 1e-15):
        with torch.no_grad():
            y = manifold.expmap(x, step * v)
        a, b = _leaves(x, y)
        d = manifold.dist(a, b)
        assert bool(torch.isfinite(d).all()) and _finite_gradients(d.square(), (a, b))
        a, b = _leaves(x, y)
        log = manifold.logmap(a, b)
        assert bool(torch.isfinite(log).all()) and _finite_gradients(log, (a, b))


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_far_points_give_finite_values_and_gradients_or_a_precision_error(label, dtype, dim):
    """At the declared usable radius and close to the ceiling, distances, logarithms and transports between a
    point and the origin (and of a point with itself) are finite with finite gradients, or refused with
    PrecisionError; never NaN or infinity. Only what the models document may refuse: transport (whose vectors
    grow like e^r: the tilings refuse it at radius 1000) anywhere, logarithms close to the ceiling; never
    ``dist`` or ``expmap``."""
    manifold = build(label, dim)
    contract = manifold.contract(dtype)
    generator = torch.Generator().manual_seed(6)
    refusable = {"usable": {"transp from the origin"},
                 "ceiling": {"transp from the origin", "logmap to the origin", "logmap from the origin",
                             "logmap to itself"}}
    for where, radius in (("usable", min(contract.usable_radius, 1000.0)),
                          ("ceiling", min(0.98 * contract.max_radius, 1000.0))):
        with mpmath.mp.workprec(reference.working_precision(radius + 2)):
            far = reference.point_at(radius, reference.random_direction(dim, random.Random(8)))
        x = manifold.from_reference([far], dtype=dtype)
        o = manifold.origin(1, dtype=dtype)
        v = tangent(manifold, o, torch.ones(1, dtype=dtype), generator)
        checks = [
            ("dist", lambda p, q: manifold.dist(p, q), (x, o)),
            ("logmap to the origin", lambda p, q: manifold.logmap(p, q), (x, o)),
            ("logmap from the origin", lambda p, q: manifold.logmap(p, q), (o, x)),
            ("logmap to itself", lambda p, q: manifold.logmap(p, q), (x, x)),
            ("transp from the origin", lambda p, q, w: manifold.transp(p, q, w), (o, x, v)),
            ("expmap of zero", lambda p, w: manifold.expmap(p, w)[..., : manifold.dim], (x, torch.zeros_like(x))),
        ]
        for name, operation, inputs in checks:
            leaves = _leaves(*inputs)
            try:
                out = operation(*leaves)
            except PrecisionError:
                assert name in refusable[where], f"{name} refused at radius {radius:.1f}"
                continue
            assert bool(torch.isfinite(out).all()), f"{name} at radius {radius:.1f}: {out}"
            assert _finite_gradients(out, leaves), f"gradient of {name} at radius {radius:.1f}"


@pytest.mark.parametrize("label,dtype,dim", CASES)
def test_long_steps_land_at_their_length_or_raise(label, dtype, dim):
    """expmap of a step as long as the usable radius (at most 50) from the origin lands at that distance; steps of
    500 and past the ceiling land at their length while the model holds them, else on the ceiling (a model that
    projects, like the Poincaré ball) or PrecisionError; never NaN, infinity or anywhere else (not for the
    tilings, whose ceiling is beyond 1000: they take steps in pieces of length 1, which is slow)."""
    manifold = build(label, dim)
    contract = manifold.contract(dtype)
    o = manifold.origin(3, dtype=dtype)
    v = tangent(manifold, o, torch.ones(3, dtype=dtype), torch.Generator().manual_seed(9))
    length = min(contract.usable_radius, 50.0)
    end = manifold.expmap(o, length * v)
    torch.testing.assert_close(manifold.dist(o, end), torch.full((3,), length, dtype=dtype), rtol=1e-4, atol=0)
    if contract.max_radius < 1000:
        for long in (500.0, 1.5 * contract.max_radius):
            try:
                end = manifold.expmap(o, long * v)
            except PrecisionError:
                continue
            assert bool(torch.isfinite(end).all()), f"step of length {long:.1f}"
            landed = manifold.dist(o, end) / manifold.scale(end)
            if long <= contract.max_radius:
                torch.testing.assert_close(landed, torch.full_like(landed, long), rtol=1e-4, atol=0)
            else:
                assert bool((abs(landed - contract.max_radius) < 1).all()), f"step of length {long:.1f}: {landed}"
