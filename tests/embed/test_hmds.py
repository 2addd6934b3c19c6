"""h-MDS: exact recovery of hyperboloid points against mpmath, scikit-learn conventions, bad input, and the
published phylo_tree figures."""

import random

import mpmath
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from embed.edgelist import read_edgelist
from embed.hmds import HMDS, evaluate_hmds, hmds_graph
from hyperbolic import HalfSpace, Lorentz, PoincareBall, reference

pytestmark = pytest.mark.usefixtures("one_thread")


def centred_points(m=6, k=3, seed=0, dps=60):
    """``2 m`` exact points of H^k in antipodal pairs ``(x0, x_s)``, ``(x0, -x_s)``, so that
    ``sum_i x0_i x_s,i = 0`` (centred), and their exact distance matrix."""
    rng = random.Random(seed)
    with mpmath.workdps(dps):
        points = []
        for _ in range(m):
            r = mpmath.mpf(rng.uniform(0.3, 3.0))
            direction = reference.random_direction(k, rng)
            p = reference.point_at(r, direction)
            points += [p, (p[0], *[-c for c in p[1:]])]
        D = [[reference.dist(a, b) if a is not b else mpmath.mpf(0) for b in points] for a in points]
    return points, D


def relative_error(D_true, D_got):
    n = len(D_true)
    worst = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            worst = max(worst, abs(float((mpmath.mpf(D_got[i][j]) - D_true[i][j]) / D_true[i][j])))
    return worst


@pytest.mark.parametrize("n_components,selection", [(3, "positive"), (4, "magnitude")])
def test_float64_recovers_centred_points(n_components, selection):
    _, D = centred_points()
    model = HMDS(n_components, selection=selection).fit(np.array([[float(v) for v in row] for row in D]))
    assert model.n_positive_ == 3
    assert model.embedding_.shape == (12, n_components)
    assert relative_error(D, model.distances()) < 1e-9


def test_high_precision_recovers_centred_points_exactly():
    points, D = centred_points()
    model = HMDS(3, selection="positive", precision=256).fit(D)
    assert model.n_positive_ == 3 and len(model.reference_points_) == 12
    with mpmath.workprec(256):
        worst = max(abs(reference.dist(model.reference_points_[i], model.reference_points_[j]) - D[i][j]) / D[i][j]
                    for i in range(12) for j in range(i + 1, 12))
        # recovered points lie on the hyperboloid
        for p in model.reference_points_:
            assert abs(reference.inner(p, p) + 1) < mpmath.mpf(2) ** -200
    assert worst < mpmath.mpf(10) ** -55
    # the float64 coordinates are the rounded exact ones
    assert np.allclose(model.embedding_, [[float(c) for c in p[1:]] for p in model.reference_points_], rtol=1e-15)


def test_scale_divides_embedded_distances():
    _, D = centred_points(m=4, k=2)
    D = np.array([[float(v) for v in row] for row in D])
    model = HMDS(2, scale=0.5, selection="positive").fit(D / 0.5)
    assert np.allclose(model.distances(), D / 0.5, rtol=1e-9)


def test_to_manifold_gives_the_same_distances_in_every_model():
    points, D = centred_points(m=4, k=2)
    Df = np.array([[float(v) for v in row] for row in D])
    model = HMDS(2, selection="positive").fit(Df)
    exact = HMDS(2, selection="positive", precision=200).fit(D)
    for manifold in (Lorentz(2), PoincareBall(2), HalfSpace(2)):
        for fitted in (model, exact):
            x = fitted.to_manifold(manifold)
            d = manifold.dist(x[:, None], x[None]).numpy()
            assert np.allclose(d, Df, rtol=1e-9, atol=1e-12), manifold.name
    with pytest.raises(ValueError, match="dimension"):
        model.to_manifold(Lorentz(3))


def test_exact_centring_float_agrees_with_mpmath():
    points, D = centred_points(m=4, k=2, seed=3)
    Df = np.array([[float(v) for v in row] for row in D])
    fast = HMDS(3, method="exact-centring", scale=0.5).fit(Df)
    slow = HMDS(3, method="exact-centring", scale=0.5, precision=160).fit(D)
    assert fast.n_positive_ == slow.n_positive_ >= 2
    assert np.allclose(fast.distances(), slow.distances(), rtol=1e-8, atol=1e-10)
    assert np.all(np.isfinite(fast.embedding_))


def test_simple_method_float_agrees_with_mpmath_on_graph_distances():
    D = np.array([[0, 1, 2, 2], [1, 0, 1, 1], [2, 1, 0, 2], [2, 1, 2, 0]], dtype=float)
    fast = HMDS(3, scale=0.7).fit(D)
    slow = HMDS(3, scale=0.7, precision=128).fit(D)
    assert fast.n_positive_ == slow.n_positive_
    assert np.allclose(fast.eigenvalues_, slow.eigenvalues_, rtol=1e-12)
    assert np.allclose(fast.distances(), slow.distances(), rtol=1e-10, atol=1e-12)


def test_sklearn_conventions():
    model = HMDS(4, scale=0.3, method="exact-centring", random_state=1)
    assert model.get_params()["scale"] == 0.3 and model.get_params()["n_components"] == 4
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "embedding_")
    with pytest.raises(NotFittedError):
        copy.distances()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 3))
    embedding = HMDS(2, metric="euclidean").fit_transform(features)
    assert embedding.shape == (10, 2)
    D = np.linalg.norm(features[:, None] - features[None], axis=-1)
    assert np.allclose(HMDS(2).fit_transform(D), embedding)


def test_passes_the_scikit_learn_estimator_checks():
    """scikit-learn's own checks (``__init__`` only stores, ``fit`` returns self, clone, refit, messages) on
    feature input; the precomputed default takes square distance matrices, which those checks do not make."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(HMDS(metric="euclidean"), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert results
    assert not failed, failed


def test_arpack_is_seeded_and_agrees_with_dense():
    _, D = centred_points(m=6, k=3, seed=2)
    D = np.array([[float(v) for v in row] for row in D])
    dense = HMDS(3, selection="positive", eigen_solver="dense").fit(D)
    a = HMDS(3, selection="positive", eigen_solver="arpack", random_state=0).fit(D)
    b = HMDS(3, selection="positive", eigen_solver="arpack", random_state=0).fit(D)
    assert np.array_equal(a.embedding_, b.embedding_)
    assert np.allclose(a.distances(), dense.distances(), rtol=1e-8)


@pytest.mark.parametrize("params,match", [
    (dict(n_components=0), "n_components"),
    (dict(scale=-1.0), "scale"),
    (dict(method="fancy"), "method"),
    (dict(selection="random"), "selection"),
    (dict(precision=20), "precision"),
    (dict(eigen_solver="lobpcg"), "eigen_solver"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        HMDS(**params).fit(np.array([[0.0, 1.0], [1.0, 0.0]]))


@pytest.mark.parametrize("matrix,match", [
    (np.zeros((2, 3)), "square"),
    (np.array([[0.0, -1.0], [-1.0, 0.0]]), "negative"),
    (np.array([[0.0, 1.0], [2.0, 0.0]]), "symmetric"),
    (np.array([[1.0, 1.0], [1.0, 0.0]]), "diagonal"),
    (np.array([[0.0, np.inf], [np.inf, 0.0]]), "non-finite"),
    (np.zeros((1, 1)), "at least 2"),
    (np.array([[0.0, 800.0], [800.0, 0.0]]), "overflows"),
])
def test_bad_distance_matrices(matrix, match):
    with pytest.raises(ValueError, match=match):
        HMDS(2).fit(matrix)


def test_high_precision_handles_huge_distances():
    # cosh(800) overflows float64; with mpmath the two points come out 800 apart.
    model = HMDS(1, selection="positive", precision=2000).fit([[0, 800], [800, 0]])
    with mpmath.workprec(2000):
        d = reference.dist(*model.reference_points_)
    assert abs(d - 800) < 1e-100


def test_phylo_tree_published_figures(shared_data):
    """Published (Sala et al., README): k = 100, scale 0.1: D_avg 0.0326, MAP 0.617 (measured 0.6175), with
    the pairs that collapse to distance 0 skipped. Ours counts them: 762 ordered pairs, D_avg 0.0389."""
    graph = read_edgelist(shared_data / "hyperbolics" / "phylo_tree.edges")
    model = hmds_graph(graph, 100, scale=0.1)
    result = evaluate_hmds(model, graph)
    assert model.n_positive_ == 82
    assert result["zero"] == 762
    assert result["d_avg_skipping_zero"] == pytest.approx(0.0326, abs=1e-3)
    assert result["d_avg"] == pytest.approx(0.0389, abs=1e-3)
    # 762 pairs at d_E = 0 and no non-finite one: D_wc is infinite (embed.metrics), which as_json reports as None
    assert result["nonfinite"] == 0 and result["d_wc"] is None and result["d_wc_row"] is None
    assert result["edge_map"] == pytest.approx(0.6175, abs=2e-3)


def test_hmds_graph_uses_shortest_paths():
    graph = read_edgelist_text("0 1\n1 2\n2 3\n")
    model = hmds_graph(graph, 3, scale=1.0, selection="positive")
    assert model.n_features_in_ == 4
    d = model.distances()
    assert d[0, 3] > d[0, 2] > d[0, 1] > 0


def read_edgelist_text(text):
    from embed.edgelist import parse_edgelist

    return parse_edgelist(text, source="inline")


def test_torch_input_is_accepted():
    # Three points on one geodesic at 0, 0.3 and 1.1 (0.3 + 0.8 == 1.1 exactly in float64): the configuration
    # can be centred, so h-MDS recovers it exactly and the embedded distances are D itself. 0.3 is not a float32,
    # so a lossy conversion of the tensor would show; requires_grad checks the tensor is detached.
    t = torch.tensor([0.0, 0.3, 1.1], dtype=torch.float64)
    D = (t[:, None] - t[None, :]).abs().requires_grad_()
    model = HMDS(2)
    embedding = model.fit_transform(D)
    assert np.array_equal(embedding, HMDS(2).fit_transform(D.detach().numpy()))
    assert embedding.shape == (3, 2) and model.n_positive_ == 1
    np.testing.assert_allclose(model.distances(), D.detach().numpy(), rtol=0, atol=1e-12)
