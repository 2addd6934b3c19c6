"""What the tests of :mod:`hyperbolic.poisson` and :mod:`hyperbolic.nn.hyla` share: the mpmath oracle for
the log Poisson kernel h, and a model known only through the protocol."""

import mpmath
from mpmath import mp, mpf

from hyperbolic import HalfSpace, HyperbolicManifold, reference


# --------------------------------------------------------------------------- mpmath oracle
def ref_h(point, omega_hat):
    """h = -log(-<x, (1, ω)>_L) for an exact Lorentz point and an exact unit direction."""
    with mp.workprec(mp.prec + reference._magnitude_bits(point)):
        return -mpmath.log(point[0] - mpmath.fsum(a * b for a, b in zip(point[1:], omega_hat, strict=True)))


def unit(values):
    values = [mpf(v) for v in values]
    norm = mpmath.sqrt(mpmath.fsum(v * v for v in values))
    return [v / norm for v in values]


def halfspace_boundary_to_ball(omega):
    """Exact unit ball direction of a half-space boundary point: (2ω, ‖ω‖² - 1)/(1 + ‖ω‖²)."""
    omega = [mpf(v) for v in omega]
    s = mpmath.fsum(v * v for v in omega)
    return [2 * v / (1 + s) for v in omega] + [(s - 1) / (1 + s)]


def aligned_point(r, direction, sideways):
    """The point at radius r towards `direction`, then moved `sideways` along the horosphere-ish frame."""
    p = reference.point_at(r, direction)
    tangent = reference.tangent_frame(r, direction)[1][0]
    return reference.expmap(p, tuple(mpf(sideways) * c for c in tangent))


def assert_close_h(h, truth, tol=1e-13):
    for got, want in zip(h.reshape(-1).tolist(), truth, strict=True):
        want = float(want)
        assert abs(got - want) <= tol * max(1.0, abs(want)), (got, want)


# --------------------------------------------------------------------------- a model known only through the protocol
class _Opaque(HyperbolicManifold):
    """A model the layer does not know (like a tiling model): only the protocol, via a half-space."""

    storage_dim = property(lambda self: self.dim)
    contract = HalfSpace.contract
    _off_manifold_rows = HalfSpace._off_manifold_rows
    to_reference = HalfSpace.to_reference
    to_lorentz = HalfSpace.to_lorentz
    from_lorentz = HalfSpace.from_lorentz
    from_reference = HalfSpace.from_reference
    dist = HalfSpace.dist
    retr = expmap = HalfSpace.expmap
    inner = HalfSpace.inner
    proju = HalfSpace.proju
    projx = HalfSpace.projx
    egrad2rgrad = HalfSpace.egrad2rgrad
