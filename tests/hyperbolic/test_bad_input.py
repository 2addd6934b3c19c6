"""Bad input is refused with a message that names the problem."""

import argparse
import math

import mpmath
import numpy as np
import pytest
import torch

from hyperbolic import (
    HalfSpace,
    Lorentz,
    NonFiniteError,
    OffManifoldError,
    PoincareBall,
    PrecisionError,
    io,
    reference,
)


@pytest.mark.parametrize("model", [Lorentz, PoincareBall, HalfSpace])
@pytest.mark.parametrize("curvature", [0.0, 1.0, math.inf, math.nan])
def test_curvature_must_be_negative(model, curvature):
    with pytest.raises(ValueError, match="curvature must be a finite negative number"):
        model(2, curvature=curvature)


@pytest.mark.parametrize("dim", [0, -1, 2.5, True])
def test_dimension_must_be_a_positive_integer(dim):
    with pytest.raises(ValueError, match="dimension"):
        Lorentz(dim)


def test_off_manifold_rows_are_named():
    ball = PoincareBall(2)
    x = torch.tensor([[0.1, 0.2], [0.3, 0.1], [0.9, 0.9]], dtype=torch.float64)
    with pytest.raises(OffManifoldError, match=r"row \(2,\).*0\.9"):
        ball.assert_points(x)
    lorentz = Lorentz(2)
    X = lorentz.origin(4)
    X[1, 1] = 5.0
    with pytest.raises(OffManifoldError, match=r"row \(1,\)"):
        lorentz.assert_points(X)
    half = HalfSpace(2)
    with pytest.raises(OffManifoldError, match=r"row \(0,\)"):
        half.assert_points(torch.tensor([[0.0, -1.0]], dtype=torch.float64))
    ok, reason = half.check_point_on_manifold(torch.tensor([[0.0, 1.0], [0.0, 0.0]]), explain=True)
    assert not ok and "row (1,)" in reason


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_points_raise(value):
    for manifold in (Lorentz(2), PoincareBall(2), HalfSpace(2)):
        x = manifold.origin(3)
        x[2, 0] = value
        with pytest.raises(NonFiniteError, match=r"row \(2,\)"):
            manifold.assert_points(x)


def test_wrong_storage_size_is_named():
    with pytest.raises(OffManifoldError, match="last axis of size 3"):
        Lorentz(2).assert_points(torch.zeros(4, 2))


def test_reference_points_beyond_the_ceiling_raise():
    with mpmath.mp.workprec(400):
        far = reference.point_at(40, [mpmath.mpf(1), mpmath.mpf(0)])
    with pytest.raises(PrecisionError, match="beyond the poincare model's ceiling"):
        PoincareBall(2).from_reference([far])
    with pytest.raises(PrecisionError, match="radius 40"):
        PoincareBall(2).from_reference([far], dtype=torch.float32)
    with pytest.raises(OffManifoldError, match="time coordinate"):
        Lorentz(2).from_reference([(mpmath.mpf("0.5"), mpmath.mpf(0), mpmath.mpf(0))])
    with pytest.raises(ValueError, match="has 2 coordinates"):
        Lorentz(2).from_reference([(mpmath.mpf(1), mpmath.mpf(0))])


@pytest.mark.parametrize("dtype,ceiling", [(torch.float64, 36.04), (torch.float32, 15.94)])
def test_poincare_conversion_refuses_points_beyond_the_ceiling(dtype, ceiling):
    """from_lorentz (every conversion into the ball goes through it) refuses a point the ball cannot hold, naming
    the row and its radius, where it used to move it silently onto the ceiling; within the rounding slack of
    the ceiling it still lands on the ceiling."""
    ball, lorentz = PoincareBall(2, curvature=-0.25), Lorentz(2, curvature=-0.25)
    with mpmath.mp.workprec(400):
        near = reference.point_at(ceiling + 0.5, [mpmath.mpf(0), mpmath.mpf(1)])
        far = reference.point_at(ceiling + 10, [mpmath.mpf(1), mpmath.mpf(0)])
    X = lorentz.from_reference([near, near, far, near])
    with pytest.raises(PrecisionError, match=rf"point 2 lies at radius {ceiling + 10:.4g}.*ceiling {ceiling}"):
        ball.from_lorentz(X.to(dtype))
    landed = ball.from_lorentz(X[:2].to(dtype))
    assert torch.equal(landed, ball.projx(landed))
    unit_radius = ball.dist(ball.origin(2, dtype=dtype), landed) / 2  # curvature -1/4: distances are doubled
    assert bool((unit_radius > ceiling - 0.5).all()) and bool((unit_radius < ceiling + 1).all())


def test_halfspace_refuses_heights_that_left_the_float_range():
    half = HalfSpace(2)
    with pytest.raises(PrecisionError, match="height 0.0"):
        half.projx(torch.tensor([[0.5, 1.0], [0.0, 0.0]], dtype=torch.float64))
    # an exp-map step far past the exponent range underflows y: refused, not a silent point at infinity
    x = half.origin(1)
    with pytest.raises(PrecisionError):
        half.expmap(x, torch.tensor([[0.0, -800.0]], dtype=torch.float64))


def test_loading_a_foreign_or_unsafe_file_is_refused(tmp_path):
    path = tmp_path / "not_embedding.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(io.EmbeddingFileError, match="not an embedding file"):
        io.load_embedding(path)

    unsafe = tmp_path / "pickle.pt"
    torch.save({"kind": "hyperbolic-embedding", "object": argparse.Namespace(code="arbitrary")}, unsafe)
    with pytest.raises(io.EmbeddingFileError, match="not a loadable embedding file"):
        io.load_embedding(unsafe)


def test_loading_a_file_with_bad_points_names_the_row(tmp_path):
    manifold = PoincareBall(2)
    x = manifold.random(4, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "e.pt"
    io.save_embedding(path, x, manifold)
    payload = torch.load(path, weights_only=True)
    payload["points"][3, 1] = math.nan
    torch.save(payload, path)
    with pytest.raises(io.EmbeddingFileError, match=r"row \(3,\)"):
        io.load_embedding(path)


_DELETE = object()


def _corrupt(payload, key, value):
    if value is _DELETE:
        del payload[key]
    else:
        payload[key] = value(payload) if callable(value) else value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("spec", _DELETE, "no manifold spec"),
        ("spec", "poincare", "no manifold spec .* found a str"),
        ("spec", {"name": "nonsense"}, "unknown manifold 'nonsense'"),
        ("spec", {"name": "poincare", "dim": 2}, "lacks 'curvature'"),
        ("spec", {"name": "poincare", "dim": "two", "curvature": -1.0}, "invalid manifold spec .*dimension"),
        ("points", _DELETE, "points must be a 2-D floating-point tensor, found a NoneType"),
        ("points", lambda p: p["points"].tolist(), "points must be .* found a list"),
        ("points", lambda p: p["points"].to(torch.int64), r"found a \(4, 2\) torch.int64 tensor"),
        ("points", lambda p: p["points"].reshape(-1), r"found a \(8,\)"),
        ("names", _DELETE, "names must be a list of strings"),
        ("names", [0, 1, 2, 3], "name at row 0 is 0, not a string"),
        ("names", ["a", "b", "a", "c"], r"name 'a' repeats \(rows 0 and 2\)"),
    ],
)
def test_loading_a_malformed_embedding_file_names_the_problem(tmp_path, key, value, message):
    manifold = PoincareBall(2)
    path = tmp_path / "e.pt"
    io.save_embedding(path, manifold.random(4, generator=torch.Generator().manual_seed(0)), manifold)
    payload = torch.load(path, weights_only=True)
    _corrupt(payload, key, value)
    torch.save(payload, path)
    with pytest.raises(io.EmbeddingFileError, match="e.pt: .*" + message):
        io.load_embedding(path)


@pytest.mark.parametrize(("config", "message"), [("{not json", "not JSON text"), ({"a": 1}, "not JSON text"),
                                                 ("[1, 2]", "is a list, not a JSON object")])
def test_loading_a_malformed_config_names_the_file(tmp_path, config, message):
    manifold = PoincareBall(2)
    path = tmp_path / "e.pt"
    io.save_embedding(path, manifold.origin(2), manifold)
    payload = torch.load(path, weights_only=True)
    payload["config"] = config
    torch.save(payload, path)
    with pytest.raises(io.EmbeddingFileError, match="e.pt: the stored config .*" + message):
        io.load_config(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("spec", _DELETE, "not an exported embedding, no spec"),
        ("spec", np.array("{not json"), "the stored spec is not JSON text"),
        ("spec", np.array('{"name": "nowhere"}'), "nowhere"),
        ("points", np.zeros(3), r"points must be a 2-D floating-point array"),
        ("points", np.full((4, 2), np.nan), "non-finite value nan at row"),
        ("names", np.array(["a", "b"]), "2 names for 4 points"),
        ("names", np.array(["a", "b", "a", "c"]), r"name 'a' repeats \(rows 0 and 2\)"),
        ("names", np.array([object()], dtype=object), "not a readable .npz file"),
    ],
)
def test_loading_a_malformed_npz_names_the_problem(tmp_path, key, value, message):
    manifold = PoincareBall(2)
    path = tmp_path / "e.npz"
    io.export_npz(path, manifold.random(4, generator=torch.Generator().manual_seed(0)), manifold,
                  ["a", "b", "c", "d"])
    with np.load(path) as data:
        arrays = dict(data)
    _corrupt(arrays, key, value)
    np.savez(path, **arrays)
    with pytest.raises(io.EmbeddingFileError, match="e.npz:? .*" + message):
        io.load_npz(path)


def test_saving_checks_shapes_and_names(tmp_path):
    manifold = Lorentz(2)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        io.save_embedding(tmp_path / "e.pt", torch.zeros(4, 2), manifold)
    with pytest.raises(ValueError, match="2 names for 4 points"):
        io.save_embedding(tmp_path / "e.pt", manifold.origin(4), manifold, names=["a", "b"])
    with pytest.raises(ValueError, match="tab or newline"):
        io.export_tsv(tmp_path / "e.tsv", manifold.origin(2), names=["a", "b\tc"])
    assert not (tmp_path / "e.pt").exists()
