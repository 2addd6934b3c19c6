"""The binary tiling computes on the limbs in use only: bit for bit what the full width gives.

The reference is the same model with :meth:`BinaryTiling.limbs_in_use` answering ``self.limbs`` ("every stored
limb is in use"): ``k`` is then read at full width, re-normalisation runs on ``self.limbs + 1`` limbs and the
distance forms :math:`K` in multi-limb arithmetic, as before limbs in use were tracked. The model, with one or two
limbs in use, forms :math:`K` in float64 or int64 wherever the bits of its ``k`` and the height ratio allow
(``BinaryTiling._integer_bits``), so the distance checks compare those routes with the multi-limb one.
"""

import math

import pytest
import torch

from hyperbolic import PrecisionError
from hyperbolic.numerics import sinhc
from tiling import BinaryTiling, bigint

pytestmark = pytest.mark.usefixtures("one_thread")


def _full_width(model, monkeypatch):
    full = BinaryTiling(model.dim, max_radius=model.max_radius)
    monkeypatch.setattr(full, "limbs_in_use", lambda *points: full.limbs)
    return full


def _identical(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    nan = torch.isnan(a)
    assert torch.equal(nan, torch.isnan(b))
    assert torch.equal(a[~nan], b[~nan])


def _outcome(f, *args):
    """``f(*args)``, or the message of the PrecisionError it raises."""
    try:
        return f(*args)
    except PrecisionError as error:
        return str(error)


def _same_outcome(a, b):
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        _identical(a, b)


def _points(model, radii, seed):
    """Points at the given hyperbolic radii in random directions (from Lorentz coordinates)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(len(radii), model.dim, dtype=torch.float64, generator=g)
    r = torch.tensor(radii, dtype=torch.float64).unsqueeze(-1)
    v = v / v.norm(dim=-1, keepdim=True) * r
    return model.from_lorentz(torch.cat([torch.cosh(r), sinhc(r) * v], -1))


def _tangent(model, x, length, seed):
    v = model.proju(x, torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return v / model.norm(x, v, keepdim=True) * length


def _compare_operations(model, full, x, seed):
    """expmap (one and many pieces), dist, logmap, and renormalize of displaced floats, fast against full."""
    for length in (1e-8, 0.05, 0.7, 3.0):
        v = _tangent(model, x, length, seed)
        _same_outcome(_outcome(model.expmap, x, v), _outcome(full.expmap, x, v))
    y = x.flip(0)
    _, _, jx, _ = model.split(x)
    assert int((jx - jx.flip(0)).abs().max()) > 3  # pairs at height ratios beyond 2^3
    _identical(model.dist(x, y), full.dist(x, y))
    _identical(model.logmap(x, y), full.logmap(x, y))
    xh, xn, j, k = model.split(x)
    for shift, factor in ((1.25, 1.0), (-1.25, 1.0), (0.5, 0.5), (0.3, 4.0), (-7.5, 2.0**-30), (0.1, 2.0**40)):
        moved = model.pack(xh + shift, xn * factor, j, k)
        _same_outcome(_outcome(model.renormalize, moved), _outcome(full.renormalize, moved))


def test_few_limbs_in_use_of_many_stored(monkeypatch):
    model = BinaryTiling(3, max_radius=1100)
    full = _full_width(model, monkeypatch)
    radii = torch.linspace(0, 12, 300).tolist()
    x = _points(model, radii, seed=0)
    assert model.limbs == 67 and model.limbs_in_use(x) == 1
    _, _, jx, _ = model.split(x)
    assert bigint.LIMB_BITS + int((jx - jx.flip(0)).abs().max()) + 2 <= 53  # the float route against the limbs
    _compare_operations(model, full, x, seed=1)
    y = _points(model, [18.0 + r for r in radii], seed=2)  # two limbs in use
    assert model.limbs_in_use(y) == 2
    assert model.limbs_in_use(y, x) == model.limbs_in_use(x, y) == 2  # every argument counts, in any order
    _compare_operations(model, full, y, seed=3)


def test_many_limbs_in_use_near_capacity(monkeypatch):
    model = BinaryTiling(2, max_radius=300)
    full = _full_width(model, monkeypatch)
    x = _points(model, torch.linspace(150, 295, 200).tolist(), seed=4)
    assert model.limbs_in_use(x) >= model.limbs - 2
    _compare_operations(model, full, x, seed=5)
    # Long steps outward from near the capacity overflow, with the same error in both.
    edge = BinaryTiling(2, max_radius=40)
    x = _points(edge, torch.linspace(36, 39, 50).tolist(), seed=6)
    v = _tangent(edge, x, 20.0, seed=7)
    fast, reference = _outcome(edge.expmap, x, v), _outcome(_full_width(edge, monkeypatch).expmap, x, v)
    assert isinstance(fast, str) and fast == reference and "capacity" in fast


def test_carries_across_limb_boundaries_and_negative_k(monkeypatch):
    model = BinaryTiling(2, max_radius=100)  # 7 limbs
    full = _full_width(model, monkeypatch)
    B = bigint.LIMB_BASE
    values = [0, 1, -1, B - 1, -(B - 1), B, -B, B * B - 1, -(B * B - 1), B * B, -(B * B), 2**61 - 1, -(2**61),
              2**62 - 1, -(2**62), B**3 - 1, -(B**3 - 1), B**4 - 1, -(B**4)]
    k = bigint.from_ints([[v] for v in values], model.limbs)
    count = len(values)
    xh = torch.full((count, 1), 0.5, dtype=torch.float64)
    xn = torch.full((count, 1), 1.5, dtype=torch.float64)
    j = torch.zeros(count, dtype=torch.int64)
    for shift, factor in ((1.0, 1.0), (-1.0, 1.0), (0.0, 0.5), (0.25, 0.25), (0.0, 4.0), (-0.75, 8.0),
                          (0.0, 2.0**-14), (0.0, 2.0**-40), (0.0, 2.0**55), (0.0, 2.0**60), (3e5, 2.0**-20)):
        moved = model.pack(xh + shift, xn * factor, j, k)
        fast = model.renormalize(moved)
        _identical(fast, full.renormalize(moved))
        for row in range(count):  # alone, each row uses as few limbs as its own k needs
            _identical(model.renormalize(moved[row:row + 1]), fast[row:row + 1])
        _, _, _, k_fast = model.split(fast)
        if factor == 1.0:  # k + floor(0.5 + shift), exactly, across every limb boundary
            assert bigint.to_ints(k_fast[:, 0]) == [v + math.floor(0.5 + shift) for v in values]
    # The carry out of a full limb: (B - 1) + 1 = B needs the second limb.
    assert bigint.to_ints(model.split(model.renormalize(model.pack(xh + 1.0, xn, j, k)))[3][3, 0]) == B


def test_overflow_at_capacity_is_unchanged(monkeypatch):
    model = BinaryTiling(2, max_radius=32)  # 3 limbs, 72 bits
    full = _full_width(model, monkeypatch)
    assert model.limbs == 3
    top = 2 ** (3 * bigint.LIMB_BITS)
    cases = [  # (k, x, x_n, overflows)
        (top - 1, 1.5, 1.0, True),  # k + 1 reaches 2^72
        (-(top - 1), -0.5, 1.0, True),
        (top // 2, 0.5, 0.75, True),  # doubled by x_n < 1: 2^72
        (top // 2 - 1, 0.0, 0.75, False),  # doubled: 2^72 - 2 fits
        (top - 1, 0.5, 1.0, False),
        (5, 1e25, 1.0, True),  # few limbs in use, but floor(x) alone needs 84 bits
        (5, 0.5, 2.0**-80, True),  # few limbs in use, but 2^80 k does not fit
        (5, 0.5, 2.0**-60, False),
    ]
    for value, x, xn, overflows in cases:
        point = model.pack(torch.tensor([[x]], dtype=torch.float64), torch.tensor([[xn]], dtype=torch.float64),
                           torch.zeros(1, dtype=torch.int64), bigint.from_ints([[value]], model.limbs))
        fast, reference = _outcome(model.renormalize, point), _outcome(full.renormalize, point)
        _same_outcome(fast, reference)
        assert isinstance(fast, str) == overflows, (value, x, xn, fast)
        if overflows:
            assert fast.startswith("binary tiling: k at index") and "capacity of BinaryTiling(max_radius=32)" in fast


def _pairs_at_height_ratio(model, k1, k2, t, g, zero_every_third_x2=False):
    """H^2 points ``p`` with integers ``k1`` and, 2^t higher, ``q`` with ``k2``; random floats from ``g``."""
    count = len(k1)
    x1 = torch.rand(count, 1, dtype=torch.float64, generator=g)
    x2 = torch.rand(count, 1, dtype=torch.float64, generator=g)
    if zero_every_third_x2:
        x2 = torch.where(torch.arange(count).unsqueeze(-1) % 3 == 0, 0.0, x2)
    heights = 1 + torch.rand(count, 1, dtype=torch.float64, generator=g)
    zero = torch.zeros(count, dtype=torch.int64)
    p = model.pack(x1, heights, zero, bigint.from_ints([[v] for v in k1], model.limbs))
    q = model.pack(x2, heights.flip(0), zero + t, bigint.from_ints([[v] for v in k2], model.limbs))
    return p, q


def _same_separations(model, full, p, q):
    for a, b in ((p, q), (q, p)):
        _identical(model.dist(a, b), full.dist(a, b))
        _identical(model.logmap(a, b), full.logmap(a, b))
        fast, reference = model._separation(a, b), full._separation(a, b)
        _identical(fast["delta"], reference["delta"])
        _identical(fast["sigma"], reference["sigma"])


@pytest.mark.parametrize("t", [4, 12, 13, 16, 40])
def test_distance_where_K_fits_int64_or_not(monkeypatch, t):
    """Pairs at height ratio 2^t with two-limb k: K = k1 - 2^t k2 - floor(2^t x2) fits int64 up to t = 12, with
    up to 62 bits, so its rounding to float64 (ties included) is checked against the multi-limb route."""
    model = BinaryTiling(2, max_radius=1100)
    B = bigint.LIMB_BASE
    g = torch.Generator().manual_seed(t)
    k2 = [-(B * B - 1 - int(i)) for i in torch.randint(0, 1000, (64,), generator=g)]
    k1 = [int(i) * 64 + 32 * (n % 2) for n, i in enumerate(torch.randint(0, 2**40, (64,), generator=g))]
    p, q = _pairs_at_height_ratio(model, k1, k2, t, g, zero_every_third_x2=True)
    assert model.limbs_in_use(p, q) == 2
    _same_separations(model, _full_width(model, monkeypatch), p, q)


@pytest.mark.parametrize("t", [0, 4, 20, 27])
def test_distance_float_route_up_to_its_bound(monkeypatch, t):
    """One limb in use and t <= 27: K = k1 - 2^t k2 - floor(2^t x2) below 2^53, formed in float64, with k at the
    top of the limb and of either sign; the same separation and distance as the multi-limb route."""
    model = BinaryTiling(2, max_radius=1100)
    B = bigint.LIMB_BASE
    g = torch.Generator().manual_seed(100 + t)
    k1 = [(B - 1 - int(i)) * (-1) ** n for n, i in enumerate(torch.randint(0, 1000, (64,), generator=g))]
    k2 = [(B - 1 - int(i)) * (-1) ** (n // 2) for n, i in enumerate(torch.randint(0, 1000, (64,), generator=g))]
    p, q = _pairs_at_height_ratio(model, k1, k2, t, g)
    assert model.limbs_in_use(p, q) == 1 and bigint.LIMB_BITS + t + 2 <= 53
    _same_separations(model, _full_width(model, monkeypatch), p, q)


@pytest.mark.parametrize("b1, b2, t", [(40, 8, 30), (47, 4, 45), (30, 20, 30), (47, 20, 38), (46, 0, 57)])
def test_distance_routes_from_the_bits_of_k(monkeypatch, b1, b2, t):
    """A far point (large |k|, two limbs) against a high one (small |k|) at a large height ratio 2^t: K needs about
    max(b1, b2 + t) bits, not 48 + t, so K is formed in float64 (up to 53 bits) or int64 (up to 62) where the
    limb count alone would take the multi-limb route; the same separation and distance as that route."""
    model = BinaryTiling(2, max_radius=1100)
    g = torch.Generator().manual_seed(b1 + b2 + t)
    k1 = [(2**(b1 - 1) + int(i)) * (-1) ** n for n, i in enumerate(torch.randint(0, 2**20, (64,), generator=g))]
    k2 = [int(i) * (-1) ** (n // 2) for n, i in enumerate(torch.randint(0, 2**b2 if b2 else 1, (64,), generator=g))]
    p, q = _pairs_at_height_ratio(model, k1, k2, t, g)
    assert model.limbs_in_use(p, q) == 2 and bigint.LIMB_BITS * 2 + t + 2 > 62  # the limb count alone: limbs
    _same_separations(model, _full_width(model, monkeypatch), p, q)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exp2_of_an_integer_is_the_power_of_two_ldexp_multiplies_by(dtype):
    """The tiling scales by 2^e as ``x * torch.exp2(e)``: the same numbers as ``torch.ldexp`` (``x * 2.0 ** e``),
    at every integer e from below the smallest subnormal to above the largest finite float."""
    e = torch.arange(-1200, 1200, dtype=dtype)
    x = torch.randn(e.shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.exp2(e), torch.pow(2.0, e))
    _identical(x * torch.exp2(e), torch.ldexp(x, e))


def test_take_rows_computes_on_the_limbs_in_use_with_the_full_results():
    """The narrow rows of take_rows: distances, Riemannian gradients, norms and steps written back with put_rows
    are those of the full rows, also where a step needs more limbs than were taken or overflows."""
    model = BinaryTiling(3, max_radius=200)  # 12 limbs
    table = _points(model, torch.linspace(0, 40, 120).tolist(), seed=8)
    ids = torch.tensor([3, 5, 17, 40, 41, 60, 99, 100, 101, 119])
    space, rows = model.take_rows(table, ids)
    full_rows = table[ids]
    assert space.limbs == model.limbs_in_use(full_rows) == 3 < model.limbs
    assert rows.shape == (len(ids), model.dim + 1 + (model.dim - 1) * space.limbs)
    a, b = torch.tensor([0, 1, 2, 9, 4]), torch.tensor([9, 8, 0, 2, 6])
    _identical(space.dist(rows[a], rows[b]), model.dist(full_rows[a], full_rows[b]))
    narrow_leaf, full_leaf = rows.clone().requires_grad_(), full_rows.clone().requires_grad_()
    space.dist(narrow_leaf[a], narrow_leaf[b]).sum().backward()
    model.dist(full_leaf[a], full_leaf[b]).sum().backward()
    grad = narrow_leaf.grad
    _identical(grad[:, :model.dim], full_leaf.grad[:, :model.dim])
    _identical(space.norm(rows, space.egrad2rgrad(rows, grad)),
               model.norm(full_rows, model.egrad2rgrad(full_rows, full_leaf.grad)))
    for length in (0.05, 3.0, 30.0):  # the longest step takes the points past three limbs
        v = _tangent(model, full_rows, length, seed=9)
        narrow_v = torch.cat([v[:, :model.dim], torch.zeros(len(ids), rows.shape[-1] - model.dim,
                                                             dtype=v.dtype)], -1)
        written = table.clone()
        space.put_rows(written, ids, space.expmap(rows, narrow_v))
        expected = table.clone().index_copy_(0, ids, model.expmap(full_rows, v))
        _identical(written, expected)
    assert model.limbs_in_use(written) > 3
    edge = BinaryTiling(2, max_radius=40)  # a step past the capacity raises the same error
    x = _points(edge, torch.linspace(0, 39, 50).tolist(), seed=6)
    space, rows = edge.take_rows(x, torch.arange(30, 50))
    v = _tangent(edge, x[30:], 20.0, seed=7)
    narrow_v = torch.cat([v[:, :edge.dim], torch.zeros(20, rows.shape[-1] - edge.dim, dtype=v.dtype)], -1)
    fast = _outcome(space.expmap, rows, narrow_v)
    assert isinstance(fast, str) and fast == _outcome(edge.expmap, x[30:], v) and "capacity" in fast


def test_take_rows_counts_the_limbs_of_a_table_again_only_after_another_write(monkeypatch):
    """take_rows remembers a table's limbs in use while the table object is unchanged; put_rows keeps the count
    current (here past the limbs taken), any other in-place write or another table object is counted again."""
    model, reference = BinaryTiling(3, max_radius=200), BinaryTiling(3, max_radius=200)
    table = _points(model, torch.linspace(0, 20, 60).tolist(), seed=12)
    counted = []
    count = reference.limbs_in_use
    monkeypatch.setattr(model, "limbs_in_use", lambda *points: counted.append(1) or count(*points))
    ids = torch.tensor([2, 30, 59])
    space, rows = model.take_rows(table, ids)
    assert space.limbs == count(table) == 2 and len(counted) == 1
    v = _tangent(reference, table[ids], 40.0, seed=13)
    narrow_v = torch.cat([v[:, :model.dim], torch.zeros(len(ids), rows.shape[-1] - model.dim, dtype=v.dtype)], -1)
    expected = table.clone().index_copy_(0, ids, reference.expmap(table[ids], v))
    space.put_rows(table, ids, space.expmap(rows, narrow_v))
    _identical(table, expected)
    space, rows = model.take_rows(table, ids)
    assert len(counted) == 1 and space.limbs == count(table) > 2
    _identical(space.dist(rows[:1], rows[1:]), reference.dist(table[ids[:1]], table[ids[1:]]))
    table[5] = _points(reference, [120.0], seed=14)[0]  # a write of its own: counted again
    space, _ = model.take_rows(table, ids)
    assert len(counted) == 2 and space.limbs == count(table) == count(table[5])
    space, _ = model.take_rows(table[:5].clone(), torch.tensor([0, 4]))  # another table
    assert len(counted) == 3 and space.limbs == count(table[:5])


def test_put_rows_into_a_strided_table_writes_the_same_rows():
    model = BinaryTiling(3, max_radius=200)
    table = _points(model, torch.linspace(0, 30, 40).tolist(), seed=16)
    ids = torch.tensor([1, 7, 30])
    space, rows = model.take_rows(table, ids)
    v = _tangent(model, table[ids], 5.0, seed=17)
    new = space.expmap(rows, torch.cat([v[:, :model.dim], torch.zeros(3, rows.shape[-1] - model.dim,
                                                                       dtype=v.dtype)], -1))
    contiguous = table.clone()
    strided = torch.zeros(2 * len(table), table.shape[-1], dtype=table.dtype)[::2]
    strided.copy_(table)
    assert not strided.is_contiguous()
    space.put_rows(contiguous, ids, new)
    space.put_rows(strided, ids, new)
    _identical(strided, contiguous)
    _identical(contiguous[ids], model.expmap(table[ids], v))


def test_a_tiling_that_took_rows_pickles_without_its_record_of_the_table():
    import pickle

    model = BinaryTiling(3, max_radius=50)
    table = _points(model, [1.0, 5.0], seed=15)
    model.take_rows(table, torch.tensor([1]))
    copy = pickle.loads(pickle.dumps(model))
    space, rows = copy.take_rows(table, torch.tensor([1]))
    assert space.limbs == model.limbs_in_use(table) and rows.shape == (1, space.storage_dim)


def test_row_sgd_training_with_take_rows_is_the_full_storage_training():
    from embed.train import TrainConfig, Trainer
    from embed.wordnet import load_mammals

    class FullRows(BinaryTiling):
        take_rows = None  # the trainer's generic path, on the full storage

    graph = load_mammals()
    config = TrainConfig(epochs=2, batch_size=256, lr=50.0, negatives=10, burnin_epochs=0, eval_every=0, seed=4,
                         optimizer="row-sgd", max_step=0.5)
    model = BinaryTiling(3, max_radius=100)
    init = _points(model, (torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(3)) * 30).tolist(),
                   seed=10)
    assert model.limbs_in_use(init) == 2
    narrow = Trainer(graph, model, config, init=init, progress=False).fit()
    full = Trainer(graph, FullRows(3, max_radius=100), config, init=init, progress=False).fit()
    _identical(narrow.points, full.points)
    assert not torch.equal(narrow.points, init)


def test_row_sgd_training_with_relocated_leaves_is_the_full_storage_training():
    """Leaf relocation writes far points (more limbs) into the table between two epochs of steps, and training
    goes on as on the full storage."""
    from embed.train import TrainConfig, Trainer
    from embed.wordnet import load_mammals

    class FullRows(BinaryTiling):
        take_rows = None

    graph = load_mammals()
    config = TrainConfig(epochs=2, batch_size=512, lr=50.0, negatives=10, burnin_epochs=0, eval_every=0, seed=4,
                         optimizer="row-sgd", max_step=0.5, hard_negatives=5, hard_refresh=1, relocate_leaves=True,
                         relocate_from=1)
    model = BinaryTiling(3, max_radius=100)
    init = _points(model, (torch.rand(graph.num_nodes, generator=torch.Generator().manual_seed(5)) * 8).tolist(),
                   seed=11)
    narrow = Trainer(graph, model, config, init=init, progress=False)
    narrow.fit(max_steps=13)  # epoch 0 (13 steps): one limb
    assert narrow.epoch == 1 and model.limbs_in_use(narrow.points) == 1
    narrow.fit()  # epoch 1 starts with relocation past radius 16.6: two limbs
    full = Trainer(graph, FullRows(3, max_radius=100), config, init=init, progress=False)
    full.fit()
    assert model.limbs_in_use(narrow.points) == 2
    _identical(narrow.points, full.points)
