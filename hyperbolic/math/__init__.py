"""Pure maths kernels of the float models at curvature -1.

Functions only: no state, no classes. Manifold classes in :mod:`hyperbolic` scale these to other
curvatures and add the protocol around them. Every function broadcasts over leading axes and acts on
the last axis, which holds the coordinates of one point.
"""
