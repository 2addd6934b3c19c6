"""Where representations announce themselves.

Two tables:

* model classes by ``name``, filled automatically when a subclass of
  :class:`~hyperbolic.manifold.HyperbolicManifold` is defined; :func:`manifold_from_spec` rebuilds a
  saved manifold from its :meth:`~hyperbolic.manifold.HyperbolicManifold.spec`;
* labelled configurations for the precision table and the conformance suite (``register``), so a
  representation added later appears in ``hyperbolic precision`` and in the tests without editing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Entry", "register", "entries", "get", "register_model", "model_class", "manifold_from_spec"]


@dataclass(frozen=True)
class Entry:
    """One registered configuration: ``factory(dim)`` builds the manifold; ``dtypes`` it supports."""

    label: str
    factory: Callable
    dtypes: tuple[torch.dtype, ...]

    def create(self, dim: int):
        return self.factory(dim)


_ENTRIES: dict[str, Entry] = {}
_MODELS: dict[str, type] = {}


def register(
    label: str,
    factory: Callable,
    dtypes: tuple[torch.dtype, ...] = (torch.float64, torch.float32),
) -> None:
    """Register a configuration under ``label`` (e.g. ``"halfspace-mcf2"``)."""
    if label in _ENTRIES and _ENTRIES[label].factory is not factory:
        raise ValueError(f"a manifold is already registered as {label!r}")
    _ENTRIES[label] = Entry(label, factory, tuple(dtypes))


def entries() -> list[Entry]:
    """All registered configurations, in registration order."""
    return list(_ENTRIES.values())


def get(label: str) -> Entry:
    try:
        return _ENTRIES[label]
    except KeyError:
        known = ", ".join(_ENTRIES) or "none"
        raise KeyError(f"no manifold registered as {label!r}; known: {known}") from None


def register_model(cls: type) -> None:
    """Record a model class under its ``name`` for :func:`manifold_from_spec`."""
    _MODELS[cls.name] = cls


def model_class(name: str) -> type:
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(sorted(_MODELS)) or "none"
        raise KeyError(
            f"unknown manifold {name!r} in spec; known: {known} "
            "(import the package that defines it, e.g. tiling, before loading)"
        ) from None


def manifold_from_spec(spec: dict):
    """Rebuild a manifold from the plain dictionary written by ``spec()``."""
    return model_class(spec["name"]).from_spec(spec)
