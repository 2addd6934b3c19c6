"""Embedding files: plain tensors, the manifold spec, node names and the run config.

An embedding file is a ``torch.save`` of a dictionary holding only tensors, strings, numbers, lists and
dictionaries, so it loads with ``torch.load(weights_only=True)``: opening a file never runs code from it.
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so an interrupted save never
leaves a truncated file behind.

Exports: ``.npz`` (exact: the full storage, e.g. every MCF component or tiling integer, plus names and the
spec as JSON) and ``.tsv`` (name, then the storage coordinates with ``%.17g``, which round-trips float64).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .manifold import FORMAT_VERSION, HyperbolicManifold
from .registry import model_class

__all__ = [
    "EmbeddingFileError",
    "save_embedding",
    "load_embedding",
    "export_npz",
    "load_npz",
    "export_tsv",
    "atomic_write",
]

_KIND = "hyperbolic-embedding"


class EmbeddingFileError(ValueError):
    """A file is not a valid embedding file."""


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(temporary_path)`` on a new file beside ``path``, flush it to disk, then rename it over
    ``path``: readers never see a partial file. The file gets the usual umask permissions.

    Raises
    ------
    IsADirectoryError
        ``path`` is a directory; nothing is written.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _check_names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(n)]
    names = [str(name) for name in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} points")
    return names


def save_embedding(
    path: str | os.PathLike,
    points: torch.Tensor,
    manifold: HyperbolicManifold,
    names: Sequence[str] | None = None,
    config: dict | None = None,
) -> None:
    """Save ``points`` ``(N, storage_dim)`` of ``manifold`` with node ``names`` and a JSON-able ``config``."""
    if points.dim() != 2 or points.shape[-1] != manifold.storage_dim:
        raise ValueError(
            f"points must have shape (N, {manifold.storage_dim}) for {manifold.name}, got {tuple(points.shape)}"
        )
    payload = {
        "kind": _KIND,
        "format_version": FORMAT_VERSION,
        "spec": manifold.spec(),
        "points": points.detach().cpu().clone(),
        "names": _check_names(names, points.shape[0]),
        "config": json.dumps(config or {}, sort_keys=True, default=str),
    }
    atomic_write(path, lambda temporary: torch.save(payload, temporary))


def _read_payload(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The dictionary of an embedding file, loaded with ``weights_only=True``, format checked."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for foreign or unsafe files
        raise EmbeddingFileError(f"{path}: not a loadable embedding file ({error})") from None
    if not isinstance(payload, dict) or payload.get("kind") != _KIND:
        raise EmbeddingFileError(f"{path}: not an embedding file (no '{_KIND}' marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EmbeddingFileError(f"{path}: format version {version!r}; this library reads up to {FORMAT_VERSION}")
    return payload


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {tuple(value.shape)} {value.dtype} tensor"
    return f"a {type(value).__name__}"


def _manifold(spec, path) -> HyperbolicManifold:
    """The manifold of a stored spec; :class:`EmbeddingFileError` naming ``path`` when it is not one."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        found = f"name {spec.get('name')!r}" if isinstance(spec, dict) else _describe(spec)
        raise EmbeddingFileError(f"{path}: no manifold spec (a dictionary with a string 'name'), found {found}")
    try:
        model = model_class(spec["name"])
    except KeyError as error:
        raise EmbeddingFileError(f"{path}: {error.args[0]}") from None
    try:
        return model.from_spec(spec)
    except KeyError as error:
        raise EmbeddingFileError(f"{path}: manifold spec {spec!r} lacks {error}") from None
    except (TypeError, ValueError) as error:
        raise EmbeddingFileError(f"{path}: invalid manifold spec {spec!r} ({error})") from None


def load_embedding(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[list[str], torch.Tensor, HyperbolicManifold]:
    """Load an embedding file: ``(names, points, manifold)``.

    Uses ``torch.load(weights_only=True)``. Raises :class:`EmbeddingFileError` naming the problem when
    the file is not an embedding file, was written by a newer format, has a missing or unknown manifold
    spec, points that are not a 2-D float tensor, names that are not unique strings (one per point), or
    holds points that are not finite points of its manifold.
    """
    payload = _read_payload(path, map_location)
    manifold = _manifold(payload.get("spec"), path)
    points = payload.get("points")
    if not isinstance(points, torch.Tensor) or points.dim() != 2 or not points.is_floating_point():
        raise EmbeddingFileError(f"{path}: points must be a 2-D floating-point tensor, found {_describe(points)}")
    names = payload.get("names")
    if not isinstance(names, (list, tuple)):
        raise EmbeddingFileError(f"{path}: names must be a list of strings, found {_describe(names)}")
    return _checked(path, list(names), points, manifold)


def _checked(path, names: list, points: torch.Tensor, manifold: HyperbolicManifold):
    """``(names, points, manifold)`` of a loaded file once the names are unique strings, one per point, and the
    points are finite points of the manifold; :class:`EmbeddingFileError` naming ``path`` otherwise."""
    if len(names) != points.shape[0]:
        raise EmbeddingFileError(f"{path}: {len(names)} names for {points.shape[0]} points")
    row = next((i for i, name in enumerate(names) if not isinstance(name, str)), None)
    if row is not None:
        raise EmbeddingFileError(f"{path}: name at row {row} is {names[row]!r}, not a string")
    if len(set(names)) != len(names):
        first: dict[str, int] = {}
        row = next(i for i, name in enumerate(names) if first.setdefault(name, i) != i)
        raise EmbeddingFileError(f"{path}: name {names[row]!r} repeats (rows {first[names[row]]} and {row})")
    try:
        manifold.assert_points(points, what=str(path))
    except ValueError as error:
        raise EmbeddingFileError(str(error)) from None
    return names, points, manifold


def load_config(path: str | os.PathLike) -> dict:
    """The run configuration stored in an embedding file (:class:`EmbeddingFileError` when it is not a
    JSON object)."""
    config = _read_payload(path).get("config", "{}")
    try:
        config = json.loads(config)
    except (TypeError, ValueError) as error:
        raise EmbeddingFileError(f"{path}: the stored config is not JSON text ({error})") from None
    if not isinstance(config, dict):
        raise EmbeddingFileError(f"{path}: the stored config is {_describe(config)}, not a JSON object")
    return config


def export_npz(
    path: str | os.PathLike, points: torch.Tensor, manifold: HyperbolicManifold, names: Sequence[str] | None = None
) -> None:
    """Exact export: the full storage tensor, the names and the spec (as JSON) in one ``.npz``."""
    storage = points.detach().cpu().numpy()
    names = np.array(_check_names(names, storage.shape[0]), dtype=str)
    spec = np.array(json.dumps(manifold.spec(), sort_keys=True))

    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, points=storage, names=names, spec=spec)

    atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> tuple[list[str], torch.Tensor, HyperbolicManifold]:
    """Read an ``.npz`` written by :func:`export_npz` (no pickles are loaded); :class:`EmbeddingFileError`
    naming the file and the problem when it is not one (the checks of :func:`load_embedding`)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in ("spec", "points", "names") if key in data.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"embedding file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as error:
        raise EmbeddingFileError(f"{path}: not a readable .npz file ({error})") from None
    missing = [key for key in ("spec", "points", "names") if key not in stored]
    if missing:
        raise EmbeddingFileError(f"{path}: not an exported embedding, no {' or '.join(missing)}")
    points, names = stored["points"], [str(n) for n in stored["names"].reshape(-1)]
    try:
        spec = json.loads(str(stored["spec"]))
    except ValueError as error:
        raise EmbeddingFileError(f"{path}: the stored spec is not JSON text ({error})") from None
    manifold = _manifold(spec, path)
    if points.ndim != 2 or points.dtype.kind != "f":
        raise EmbeddingFileError(f"{path}: points must be a 2-D floating-point array, found {points.dtype} "
                                 f"{points.shape}")
    return _checked(path, names, torch.from_numpy(points.copy()), manifold)


def export_tsv(path: str | os.PathLike, points: torch.Tensor, names: Sequence[str] | None = None) -> None:
    """One line per node: the name, then the storage coordinates as ``%.17g`` (exact for float64)."""
    values = points.detach().cpu().to(torch.float64).numpy()
    names = _check_names(names, values.shape[0])
    for row, name in enumerate(names):
        if any(c in name for c in "\t\n\r"):
            raise ValueError(f"node name at row {row} ({name!r}) contains a tab or newline; cannot write TSV")

    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            for name, row in zip(names, values):
                handle.write(name + "\t" + "\t".join(f"{v:.17g}" for v in row) + "\n")

    atomic_write(path, write)
