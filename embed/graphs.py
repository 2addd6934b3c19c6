"""Graph input: an immutable graph type, edge-list reading and BFS trees.

Conventions
-----------
* Nodes are identified by their names (strings, kept exactly as in the input) and numbered
  ``0 .. n-1``; ``Graph.names[i]`` is the name of node ``i``.
* A directed edge ``(u, v)`` of a hierarchy points from the child (hyponym, descendant) to the
  parent (hypernym, ancestor), like the ``id1,id2`` columns of the WordNet closure files. BFS
  trees of directed graphs therefore walk edges backwards, from parents to children, unless
  ``orientation="parent-child"`` is given.
* Nothing is dropped silently: duplicate edges and self loops are dropped with a warning that
  counts them and names the first one, or refused with an error when asked.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hyperbolic.io import atomic_write

__all__ = [
    "BFSTree",
    "Graph",
    "GraphError",
    "GraphFormatError",
    "NotATreeError",
    "bfs_tree",
    "connected_components",
    "is_transitively_closed",
    "parse_edgelist",
    "read_edgelist",
    "transitive_reduction",
    "write_edgelist",
]


class GraphError(ValueError):
    """A graph cannot be used as asked (unknown node, wrong shape, ...)."""


class GraphFormatError(GraphError):
    """An edge-list file is malformed; the message names the file, the line and the value."""


class NotATreeError(GraphError):
    """``require_tree=True`` was given but an edge closes a cycle."""


Orientation = Literal["child-parent", "parent-child"]


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable graph with named nodes.

    Parameters
    ----------
    names : sequence of str
        Node names; node ``i`` is ``names[i]``. Stored as a tuple; names must be unique.
    edges : torch.Tensor
        ``(E, 2)`` integer tensor of node indices, stored as int64.
    weights : torch.Tensor or None
        ``(E,)`` edge weights, stored as float64, or None for an unweighted graph.
    directed : bool
        Whether ``(u, v)`` differs from ``(v, u)``. Hierarchies point child -> parent.
    source : str or None
        Where the graph came from (a path or a dataset name), used in messages.

    Notes
    -----
    The tensors are copied on construction; treat ``edges`` and ``weights`` as read-only.
    """

    names: tuple[str, ...]
    edges: torch.Tensor
    weights: torch.Tensor | None = None
    directed: bool = False
    source: str | None = None

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not all(isinstance(name, str) for name in names):
            raise GraphError("Graph: node names must be strings")
        edges = torch.as_tensor(self.edges)
        if edges.numel() == 0:
            edges = edges.reshape(0, 2)
        if edges.dim() != 2 or edges.shape[1] != 2:
            raise GraphError(f"Graph: edges must have shape (E, 2), got {tuple(edges.shape)}")
        if edges.dtype.is_floating_point or edges.dtype == torch.bool or edges.is_complex():
            raise GraphError(f"Graph: edges must be an integer tensor, got {edges.dtype}")
        edges = edges.to(dtype=torch.int64, device="cpu").contiguous().clone()
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= len(names)):
            raise GraphError(
                f"Graph: edge indices must lie in [0, {len(names)}), "
                f"got range [{int(edges.min())}, {int(edges.max())}]"
            )
        weights = self.weights
        if weights is not None:
            weights = torch.as_tensor(weights).to(dtype=torch.float64, device="cpu").clone()
            if weights.shape != (edges.shape[0],):
                raise GraphError(
                    f"Graph: weights must have shape ({edges.shape[0]},), "
                    f"got {tuple(weights.shape)}"
                )
        if len(set(names)) != len(names):
            seen: set[str] = set()
            duplicate = next(name for name in names if name in seen or seen.add(name))
            raise GraphError(f"Graph: node names must be unique; {duplicate!r} repeats")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "directed", bool(self.directed))

    # ------------------------------------------------------------------ basic facts
    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return len(self.names)

    @property
    def num_edges(self) -> int:
        """Number of edges (rows of ``edges``)."""
        return int(self.edges.shape[0])

    @cached_property
    def index(self) -> dict[str, int]:
        """Mapping from node name to node index."""
        return {name: i for i, name in enumerate(self.names)}

    def node_id(self, node: str | int) -> int:
        """Return the index of a node given by name (str) or index (int).

        Raises
        ------
        GraphError
            If the node is not in the graph; the message names it.
        """
        if isinstance(node, str):
            try:
                return self.index[node]
            except KeyError:
                raise GraphError(
                    f"node {node!r} is not in graph {self._label()} ({self.num_nodes} nodes)"
                ) from None
        if isinstance(node, bool) or not isinstance(node, int):
            raise GraphError(f"node must be a name (str) or an index (int), got {node!r}")
        if not 0 <= node < self.num_nodes:
            raise GraphError(
                f"node index {node} is not in graph {self._label()} "
                f"(indices 0..{self.num_nodes - 1})"
            )
        return node

    def _label(self) -> str:
        return repr(self.source) if self.source else "<unnamed>"

    def degrees(self) -> torch.Tensor:
        """Number of edge ends at each node, ``(n,)`` int64 (a self loop counts twice)."""
        return torch.bincount(self.edges.reshape(-1), minlength=self.num_nodes)

    def named_edges(self) -> list[tuple[str, str]]:
        """Edges as ``(name_u, name_v)`` pairs, in edge order."""
        names = self.names
        return [(names[u], names[v]) for u, v in self.edges.tolist()]

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        weighted = ", weighted" if self.weights is not None else ""
        source = f", source={self.source!r}" if self.source else ""
        return f"Graph({self.num_nodes} nodes, {self.num_edges} edges, {kind}{weighted}{source})"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_named_edges(
        cls,
        pairs: Iterable[tuple[str, str]],
        *,
        weights: Sequence[float] | torch.Tensor | None = None,
        directed: bool = False,
        names: Sequence[str] | None = None,
        source: str | None = None,
    ) -> Graph:
        """Build a graph from ``(name_u, name_v)`` pairs.

        Nodes are numbered by first appearance (reading each pair left to right), after the
        nodes listed in ``names``, if given.
        """
        index: dict[str, int] = {}
        for name in names or ():
            index.setdefault(name, len(index))
        flat = []
        for u, v in pairs:
            flat.append(index.setdefault(u, len(index)))
            flat.append(index.setdefault(v, len(index)))
        edges = torch.tensor(flat, dtype=torch.int64).reshape(-1, 2)
        return cls(
            tuple(index),
            edges,
            None if weights is None else torch.as_tensor(weights),
            directed,
            source,
        )

    @classmethod
    def from_networkx(cls, graph, *, weight: str | None = "weight", source: str | None = None):
        """Build a graph from a networkx graph.

        Node names are ``str(node)`` in networkx's node order. Edge weights are read from the
        edge attribute ``weight`` when every edge has it (set ``weight=None`` to ignore them).
        Multigraphs are refused.
        """
        if graph.is_multigraph():
            raise GraphError("from_networkx: multigraphs are not supported")
        nodes = list(graph.nodes)
        names = [str(node) for node in nodes]
        position = {node: i for i, node in enumerate(nodes)}
        edge_data = list(graph.edges(data=True))
        edges = torch.tensor(
            [(position[u], position[v]) for u, v, _ in edge_data], dtype=torch.int64
        ).reshape(-1, 2)
        weights = None
        if weight is not None and edge_data and all(weight in data for _, _, data in edge_data):
            weights = torch.tensor(
                [float(data[weight]) for _, _, data in edge_data], dtype=torch.float64
            )
        return cls(
            tuple(names),
            edges,
            weights,
            graph.is_directed(),
            source if source is not None else (graph.name or None),
        )

    def to_networkx(self):
        """Return a ``networkx.DiGraph`` or ``networkx.Graph`` with the names as nodes.

        Nodes are added in index order (isolated ones included); weights become the edge
        attribute ``weight``. Duplicate edges collapse, as networkx keeps one edge per pair;
        networkx lists edges node by node, so a round trip keeps the edge set, not its order.
        """
        import networkx as nx

        graph = nx.DiGraph() if self.directed else nx.Graph()
        if self.source:
            graph.graph["name"] = self.source
        graph.add_nodes_from(self.names)
        names = self.names
        if self.weights is None:
            graph.add_edges_from((names[u], names[v]) for u, v in self.edges.tolist())
        else:
            graph.add_weighted_edges_from(
                (names[u], names[v], w)
                for (u, v), w in zip(self.edges.tolist(), self.weights.tolist(), strict=True)
            )
        return graph

    # ------------------------------------------------------------------ derived graphs
    def as_undirected(self) -> Graph:
        """The same edges as an undirected graph (no de-duplication of ``(u, v)``/``(v, u)``)."""
        return Graph(self.names, self.edges, self.weights, False, self.source)

    def subgraph(self, nodes: Sequence[int | str] | torch.Tensor) -> Graph:
        """Induced subgraph on the given nodes, numbered in the order given."""
        if isinstance(nodes, torch.Tensor):
            ids = nodes.to(torch.int64).reshape(-1)
        else:
            ids = torch.tensor([self.node_id(node) for node in nodes], dtype=torch.int64)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_nodes):
            raise GraphError("subgraph: node index out of range")
        if torch.unique(ids).numel() != ids.numel():
            raise GraphError("subgraph: nodes repeat")
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.int64)
        new_id[ids] = torch.arange(ids.numel())
        mapped = new_id[self.edges]
        keep = (mapped >= 0).all(dim=1)
        weights = None if self.weights is None else self.weights[keep]
        names = tuple(self.names[i] for i in ids.tolist())
        return Graph(names, mapped[keep], weights, self.directed, self.source)

    # ------------------------------------------------------------------ adjacency
    def csr(
        self, direction: Literal["out", "in", "both"] = "out"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compressed sparse row adjacency.

        Parameters
        ----------
        direction : {"out", "in", "both"}
            For directed graphs: neighbours ``v`` of ``u`` are the heads of edges ``(u, v)``
            ("out"), the tails of edges ``(v, u)`` ("in"), or both. Undirected graphs always
            use "both".

        Returns
        -------
        indptr : torch.Tensor
            ``(n + 1,)`` int64; the neighbours of ``u`` are ``indices[indptr[u]:indptr[u+1]]``.
        indices : torch.Tensor
            Neighbour indices, int64. Within a row, neighbours keep edge order (for "both",
            all out-edges of the row come before the in-edges, each in edge order).
        edge_ids : torch.Tensor
            For each entry of ``indices``, the row of ``edges`` it comes from.
        """
        if direction not in ("out", "in", "both"):
            raise GraphError(f"csr: direction must be 'out', 'in' or 'both', got {direction!r}")
        if not self.directed:
            direction = "both"
        tails, heads = self.edges[:, 0], self.edges[:, 1]
        edge_ids = torch.arange(self.num_edges, dtype=torch.int64)
        if direction == "out":
            rows, cols, ids = tails, heads, edge_ids
        elif direction == "in":
            rows, cols, ids = heads, tails, edge_ids
        else:
            rows = torch.cat([tails, heads])
            cols = torch.cat([heads, tails])
            ids = torch.cat([edge_ids, edge_ids])
        order = torch.sort(rows, stable=True).indices
        counts = torch.bincount(rows, minlength=self.num_nodes)
        indptr = torch.zeros(self.num_nodes + 1, dtype=torch.int64)
        torch.cumsum(counts, dim=0, out=indptr[1:])
        return indptr, cols[order], ids[order]

    def adjacency_lists(self, direction: Literal["out", "in", "both"] = "out") -> list[list[int]]:
        """Neighbour lists per node (see :meth:`csr` for ``direction`` and the order)."""
        indptr, indices, _ = self.csr(direction)
        bounds = indptr.tolist()
        flat = indices.tolist()
        return [flat[bounds[u] : bounds[u + 1]] for u in range(self.num_nodes)]


# ====================================================================== reading files

_HEADER_WORDS = {
    "id1",
    "id2",
    "id",
    "u",
    "v",
    "source",
    "target",
    "src",
    "dst",
    "from",
    "to",
    "node1",
    "node2",
    "head",
    "tail",
    "child",
    "parent",
    "weight",
    "w",
    "hyponym",
    "hypernym",
}
_INTEGER_NAME = re.compile(r"0|[1-9][0-9]*")


def _format_delimiter(delimiter: str | None) -> str:
    return "whitespace" if delimiter is None else repr(delimiter)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_rows(text: str, delimiter: str | None) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line_number, fields)`` of non-blank, non-comment lines."""
    if delimiter == ",":
        reader = csv.reader(io.StringIO(text), skipinitialspace=True)
        previous_line = 0
        for fields in reader:
            line_number = previous_line + 1
            previous_line = reader.line_num
            if not fields or not "".join(fields).strip():
                continue
            if fields[0].lstrip().startswith(("#", "%")):
                continue
            yield line_number, [f.strip() for f in fields]
        return
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "%")):
            continue
        if delimiter is None:
            yield line_number, stripped.split()
        else:
            yield line_number, [f.strip() for f in line.rstrip("\r\n").split(delimiter)]


def read_edgelist(
    path: str | os.PathLike,
    *,
    directed: bool = False,
    delimiter: str | None = None,
    weighted: bool | None = None,
    header: bool | None = None,
    duplicates: Literal["warn", "error"] = "warn",
    self_loops: Literal["warn", "error"] = "warn",
    allow_negative_weights: bool = False,
    node_order: Literal["auto", "appearance", "numeric", "sorted"] = "auto",
) -> Graph:
    """Read an edge list from ``.csv``, ``.tsv`` or whitespace-separated (``.edges``) text.

    Parameters
    ----------
    path : path-like
        The file. UTF-8 (a byte-order mark is ignored).
    directed : bool
        Read ``u v`` as the directed edge ``u -> v`` (for hierarchies: child -> parent).
    delimiter : str or None
        Field separator. Default: ``","`` for ``.csv`` (quoted fields allowed), tab for
        ``.tsv``, runs of whitespace otherwise.
    weighted : bool or None
        None: a third column, if the first data line has one, is the weight. True: every line
        must have a weight. False: a third column is accepted and ignored.
    header : bool or None
        Whether the first non-comment line is a header. None detects it: it is a header when
        its third field is not a number, or when every field is a usual column name (``id1``,
        ``id2``, ``weight``, ``source``, ``target``, ``u``, ``v``, ...).
    duplicates : {"warn", "error"}
        A repeated edge (for undirected graphs also ``v u`` after ``u v``) is dropped with one
        warning that counts them and names the first, or refused with an error. The first
        occurrence is kept; the warning says when repeated weights differ.
    self_loops : {"warn", "error"}
        An edge ``u u`` is dropped with a warning (count, first one), or refused. Its node stays
        in the graph.
    allow_negative_weights : bool
        Negative weights are an error unless this is True. NaN and infinite weights always are.
    node_order : {"auto", "appearance", "numeric", "sorted"}
        Node numbering: by first appearance reading rows as (u, v); by integer value of the
        names (every name must be a non-negative integer without leading zeros); by string
        sort. "auto" = "numeric" when every name is such an integer, else "appearance".

    Returns
    -------
    Graph
        Names as in the file; ``source`` = the path.

    Raises
    ------
    GraphFormatError
        Malformed line (wrong number of columns, bad weight, a NUL character in a name), empty
        file, no edges, or a refused duplicate/self loop. The message names the file, the line
        and the value.
    FileNotFoundError, IsADirectoryError
        ``path`` does not exist or is a directory; the message names it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"edge list {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"edge list {str(path)!r} is a directory, not a file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise GraphFormatError(f"{path}:{line}: not UTF-8 text ({error.reason})") from None
    if delimiter is None:
        suffix = path.suffix.lower()
        delimiter = {".csv": ",", ".tsv": "\t"}.get(suffix)
    return parse_edgelist(
        text,
        source=str(path),
        directed=directed,
        delimiter=delimiter,
        weighted=weighted,
        header=header,
        duplicates=duplicates,
        self_loops=self_loops,
        allow_negative_weights=allow_negative_weights,
        node_order=node_order,
    )


def parse_edgelist(
    text: str,
    *,
    source: str = "<text>",
    directed: bool = False,
    delimiter: str | None = None,
    weighted: bool | None = None,
    header: bool | None = None,
    duplicates: Literal["warn", "error"] = "warn",
    self_loops: Literal["warn", "error"] = "warn",
    allow_negative_weights: bool = False,
    node_order: Literal["auto", "appearance", "numeric", "sorted"] = "auto",
) -> Graph:
    """Parse edge-list text; see :func:`read_edgelist` (``source`` names it in messages).

    Here ``delimiter=None`` always means whitespace.
    """
    if duplicates not in ("warn", "error"):
        raise ValueError(f"duplicates must be 'warn' or 'error', got {duplicates!r}")
    if self_loops not in ("warn", "error"):
        raise ValueError(f"self_loops must be 'warn' or 'error', got {self_loops!r}")
    if node_order not in ("auto", "appearance", "numeric", "sorted"):
        raise ValueError(f"unknown node_order {node_order!r}")

    rows = _split_rows(text, delimiter)
    first = next(rows, None)
    if first is None:
        raise GraphFormatError(f"{source}: empty edge list (no edges, only blank or comment lines)")
    line_number, fields = first
    if header is None:
        header = (len(fields) == 3 and not _is_number(fields[2])) or all(
            f.lower() in _HEADER_WORDS for f in fields
        )
    if header:
        if len(fields) not in (2, 3):
            raise GraphFormatError(
                f"{source}:{line_number}: header has {len(fields)} columns, expected 2 "
                f"(u, v) or 3 (u, v, weight): {fields!r}"
            )
        first = next(rows, None)
        if first is None:
            raise GraphFormatError(f"{source}: empty edge list (header only, no edges)")
        line_number, fields = first
    if weighted is None:
        if len(fields) not in (2, 3):
            raise GraphFormatError(
                f"{source}:{line_number}: expected 2 (u, v) or 3 (u, v, weight) columns "
                f"separated by {_format_delimiter(delimiter)}, got {len(fields)}: {fields!r}"
            )
        allowed_columns: tuple[int, ...] = (len(fields),)
        weighted = len(fields) == 3
    else:
        allowed_columns = (3,) if weighted else (2, 3)
    expected_text = {
        (2,): "2 (u, v)",
        (3,): "3 (u, v, weight)",
        (2, 3): "2 (u, v) or 3 (u, v, ignored weight)",
    }[allowed_columns]

    index: dict[str, int] = {}
    flat: list[int] = []
    weights: list[float] = []
    seen: dict[tuple[int, int], tuple[int, float]] = {}
    duplicate_count = 0
    duplicate_first: str | None = None
    conflicting_weights = 0
    loop_count = 0
    loop_first: str | None = None

    def location(line: int) -> str:
        return f"{source}:{line}"

    for line_number, fields in itertools.chain([first], rows):
        if len(fields) not in allowed_columns:
            raise GraphFormatError(
                f"{location(line_number)}: expected {expected_text} columns separated by "
                f"{_format_delimiter(delimiter)}, got {len(fields)}: {fields!r}"
            )
        u_name, v_name = fields[0], fields[1]
        if not u_name or not v_name:
            raise GraphFormatError(f"{location(line_number)}: empty node name in {fields!r}")
        if "\x00" in u_name or "\x00" in v_name:
            raise GraphFormatError(
                f"{location(line_number)}: NUL character in node name in {fields!r} (binary data?)"
            )
        weight = 1.0
        if weighted:
            value = fields[2]
            try:
                weight = float(value)
            except ValueError:
                raise GraphFormatError(
                    f"{location(line_number)}: weight {value!r} is not a number"
                ) from None
            if not math.isfinite(weight):
                raise GraphFormatError(f"{location(line_number)}: weight {value!r} is not finite")
            if weight < 0 and not allow_negative_weights:
                raise GraphFormatError(
                    f"{location(line_number)}: weight {value!r} is negative "
                    "(pass allow_negative_weights=True to accept it)"
                )
        u = index.setdefault(u_name, len(index))
        v = index.setdefault(v_name, len(index))
        if u == v:
            if self_loops == "error":
                raise GraphFormatError(
                    f"{location(line_number)}: self loop {u_name!r} -- {v_name!r} "
                    "(pass self_loops='warn' to drop self loops)"
                )
            loop_count += 1
            if loop_first is None:
                loop_first = f"{u_name!r} at line {line_number}"
            continue
        key = (u, v) if directed or u < v else (v, u)
        previous = seen.get(key)
        if previous is not None:
            first_line, first_weight = previous
            if duplicates == "error":
                raise GraphFormatError(
                    f"{location(line_number)}: duplicate edge {u_name!r} -- {v_name!r} "
                    f"(first at line {first_line}; pass duplicates='warn' to drop repeats)"
                )
            duplicate_count += 1
            if duplicate_first is None:
                duplicate_first = (
                    f"{u_name!r} -- {v_name!r} at line {line_number} (first at line {first_line})"
                )
            if weighted and weight != first_weight:
                conflicting_weights += 1
            continue
        seen[key] = (line_number, weight)
        flat.append(u)
        flat.append(v)
        if weighted:
            weights.append(weight)

    if loop_count:
        warnings.warn(
            f"{source}: dropped {loop_count} self loop{'s' if loop_count > 1 else ''} "
            f"(first: {loop_first}); their nodes are kept",
            stacklevel=3,
        )
    if duplicate_count:
        detail = (
            f"; {conflicting_weights} of them with a weight different from the kept first one"
            if conflicting_weights
            else ""
        )
        warnings.warn(
            f"{source}: dropped {duplicate_count} duplicate "
            f"edge{'s' if duplicate_count > 1 else ''} (first: {duplicate_first}){detail}",
            stacklevel=3,
        )
    if not flat:
        raise GraphFormatError(
            f"{source}: no edges left after dropping {loop_count} self loops and "
            f"{duplicate_count} duplicates"
        )

    names = list(index)
    edges = torch.tensor(flat, dtype=torch.int64).reshape(-1, 2)
    all_integers = all(_INTEGER_NAME.fullmatch(name) for name in names)
    if node_order == "numeric" and not all_integers:
        bad = next(name for name in names if not _INTEGER_NAME.fullmatch(name))
        raise GraphFormatError(
            f"{source}: node_order='numeric' needs integer node names, got {bad!r}"
        )
    if node_order == "sorted" or (node_order in ("numeric", "auto") and all_integers):
        key = (lambda i: int(names[i])) if node_order != "sorted" else (lambda i: names[i])
        permutation = sorted(range(len(names)), key=key)
        new_id = torch.empty(len(names), dtype=torch.int64)
        new_id[torch.tensor(permutation, dtype=torch.int64)] = torch.arange(len(names))
        edges = new_id[edges]
        names = [names[i] for i in permutation]
    return Graph(
        tuple(names),
        edges,
        torch.tensor(weights, dtype=torch.float64) if weighted else None,
        directed,
        source,
    )


def write_edgelist(
    graph: Graph,
    path: str | os.PathLike,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    sort_rows: bool = False,
) -> None:
    """Write a graph as an edge list, atomically (temporary file, then ``os.replace``).

    Parameters
    ----------
    delimiter : str or None
        Default ``","`` for ``.csv``, tab for ``.tsv``, a space otherwise.
    header : bool or None
        Default: a header ``id1,id2,weight`` (``id1<TAB>id2...``) for ``.csv``/``.tsv``.
    sort_rows : bool
        Sort the rows as byte strings (like ``LC_ALL=C sort``) for a canonical file.

    Notes
    -----
    Weights are written with ``repr`` (exact round trip); unweighted graphs get weight 1 when
    a header is written (the WordNet closure convention) and no weight column otherwise.
    Isolated nodes cannot be represented and are not written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if delimiter is None:
        delimiter = {".csv": ",", ".tsv": "\t"}.get(suffix, " ")
    if header is None:
        header = suffix in (".csv", ".tsv")
    with_weight = header or graph.weights is not None
    names = graph.names
    bad = next((name for name in names if not _writable_name(name, delimiter)), None)
    if bad is not None:
        raise GraphError(
            f"write_edgelist: node name {bad!r} cannot be written to the {delimiter!r}-separated "
            f"file {str(path)!r} and read back (whitespace, delimiter or comment sign); "
            "use .csv, or rename the node"
        )
    weights = graph.weights.tolist() if graph.weights is not None else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    for i, (u, v) in enumerate(graph.edges.tolist()):
        row = [names[u], names[v]]
        if with_weight:
            row.append("1" if weights is None else repr(weights[i]))
        writer.writerow(row)
    lines = buffer.getvalue().splitlines(keepends=True)
    if sort_rows:
        lines.sort(key=lambda line: line.encode("utf-8"))
    text = "".join(lines)
    if header:
        columns = ["id1", "id2", "weight"] if with_weight else ["id1", "id2"]
        text = delimiter.join(columns) + "\n" + text
    _atomic_write_bytes(path, text.encode("utf-8"))


def _writable_name(name: str, delimiter: str) -> bool:
    if not name or name != name.strip() or name.startswith(("#", "%")):
        return False
    if delimiter == ",":
        return True  # csv quoting takes care of commas, quotes and newlines
    if delimiter == " ":
        return not any(c.isspace() for c in name)
    return delimiter not in name and "\n" not in name and "\r" not in name


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda temporary: Path(temporary).write_bytes(data))


# ====================================================================== components and BFS


def connected_components(graph: Graph) -> tuple[int, torch.Tensor]:
    """Connected components, ignoring edge directions (weak components of a digraph).

    Returns
    -------
    count : int
        Number of components.
    labels : torch.Tensor
        ``(n,)`` int64 component of each node; components are numbered by their smallest node.
    """
    n = graph.num_nodes
    labels = torch.arange(n, dtype=torch.int64)
    if graph.num_edges:
        tails = torch.cat([graph.edges[:, 0], graph.edges[:, 1]])
        heads = torch.cat([graph.edges[:, 1], graph.edges[:, 0]])
        while True:
            # Min-label propagation with pointer jumping: labels only decrease and stay
            # inside their component, so this converges to each component's smallest node.
            updated = labels.scatter_reduce(0, heads, labels[tails], reduce="amin")
            updated = updated[updated]
            if torch.equal(updated, labels):
                break
            labels = updated
    _, inverse = torch.unique(labels, return_inverse=True)
    return int(inverse.max()) + 1 if n else 0, inverse


@dataclass(frozen=True, eq=False)
class BFSTree:
    """A breadth-first spanning tree (or forest) of a graph.

    Attributes
    ----------
    names : tuple of str
        Node names; equal to the graph's, plus the virtual root's name at the end if any.
    parent : torch.Tensor
        ``(n,)`` int64 parent of each node in the tree, -1 for roots.
    depth : torch.Tensor
        ``(n,)`` int64 depth (roots 0).
    order : torch.Tensor
        ``(n,)`` nodes in BFS order; depths are nondecreasing along it.
    level_ptr : torch.Tensor
        ``(max_depth + 2,)`` offsets: level ``d`` is ``order[level_ptr[d]:level_ptr[d + 1]]``.
    parent_edge : torch.Tensor
        ``(n,)`` row of ``graph.edges`` used as each node's tree edge; -1 for roots and for the
        links to a virtual root.
    roots : torch.Tensor
        The real roots (one per tree, components of the graph may hold several for directed
        graphs with several sources), in the order they were chosen.
    num_dropped_edges : int
        Graph edges not used as tree edges (including self loops and repeated edges).
    num_components : int
        Connected components of the graph, ignoring directions.
    virtual_root : int or None
        Index of the virtual root (the last node) when one was added.
    """

    names: tuple[str, ...]
    parent: torch.Tensor
    depth: torch.Tensor
    order: torch.Tensor
    level_ptr: torch.Tensor
    parent_edge: torch.Tensor
    roots: torch.Tensor
    num_dropped_edges: int
    num_components: int
    virtual_root: int | None = None
    source: str | None = field(default=None)

    @property
    def num_nodes(self) -> int:
        """Number of tree nodes (graph nodes, plus the virtual root if any)."""
        return len(self.names)

    @property
    def num_trees(self) -> int:
        """Number of real roots (trees before a virtual root joins them)."""
        return int(self.roots.numel())

    @property
    def max_depth(self) -> int:
        """Largest depth."""
        return int(self.level_ptr.numel()) - 2

    def levels(self) -> list[torch.Tensor]:
        """Nodes of each depth, as a list of index tensors in BFS order."""
        bounds = self.level_ptr.tolist()
        return [self.order[bounds[d] : bounds[d + 1]] for d in range(len(bounds) - 1)]

    def tree_edges(self) -> torch.Tensor:
        """``(n - roots, 2)`` tree edges ``(child, parent)`` in BFS order of the child."""
        children = self.order[self.parent[self.order] >= 0]
        return torch.stack([children, self.parent[children]], dim=1)

    def to_graph(self) -> Graph:
        """The tree as a directed :class:`Graph` with edges child -> parent."""
        return Graph(self.names, self.tree_edges(), None, True, self.source)

    def summary(self) -> str:
        """One line: roots, depth, dropped edges, components."""
        roots = ", ".join(repr(self.names[r]) for r in self.roots[:3].tolist())
        more = f" and {self.num_trees - 3} more" if self.num_trees > 3 else ""
        virtual = (
            f"; joined under virtual root {self.names[self.virtual_root]!r}"
            if self.virtual_root is not None
            else ""
        )
        return (
            f"BFS tree of {self.source or '<graph>'}: {self.num_trees} tree(s) rooted at "
            f"{roots}{more}{virtual}; max depth {self.max_depth}; "
            f"{self.num_dropped_edges} non-tree edges dropped; "
            f"{self.num_components} connected component(s)"
        )


_DEEP_LEVEL = 64
_NARROW_FRONTIER = 64


def _gather_neighbours(
    frontier: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor, edge_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        empty = torch.empty(0, dtype=torch.int64)
        return empty, empty, empty
    shift = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
    positions = shift + torch.arange(total, dtype=torch.int64)
    return torch.repeat_interleave(frontier, counts), indices[positions], edge_ids[positions]


class _Search:
    """State of a level-synchronous BFS over a CSR adjacency, shared by several starts."""

    def __init__(self, n: int, indptr, indices, edge_ids):
        self.indptr, self.indices, self.edge_ids = indptr, indices, edge_ids
        self.parent = torch.full((n,), -1, dtype=torch.int64)
        self.parent_edge = torch.full((n,), -1, dtype=torch.int64)
        self.depth = torch.full((n,), -1, dtype=torch.int64)
        self.visit_rank = torch.full((n,), -1, dtype=torch.int64)
        self.visited = 0
        self.roots: list[torch.Tensor] = []
        self._lists: tuple[list[int], list[int], list[int]] | None = None

    def run(self, roots: torch.Tensor) -> None:
        """Breadth-first search from ``roots`` (unvisited nodes) through unvisited nodes."""
        frontier = roots
        self.roots.append(roots)
        self._mark(
            frontier,
            frontier.new_full(frontier.shape, -1),
            frontier.new_full(frontier.shape, -1),
            0,
        )
        level = 0
        while frontier.numel():
            if level >= _DEEP_LEVEL and frontier.numel() < _NARROW_FRONTIER:
                self._finish_with_queue(frontier, level)
                return
            sources, candidates, via = _gather_neighbours(
                frontier, self.indptr, self.indices, self.edge_ids
            )
            fresh = self.depth[candidates] < 0
            sources, candidates, via = sources[fresh], candidates[fresh], via[fresh]
            if candidates.numel() == 0:
                break
            # Keep each node's first occurrence: that is the order a FIFO queue would see.
            unique, inverse = torch.unique(candidates, return_inverse=True)
            first = torch.full((unique.numel(),), candidates.numel(), dtype=torch.int64)
            first.scatter_reduce_(0, inverse, torch.arange(candidates.numel()), reduce="amin")
            first = torch.sort(first).values
            level += 1
            frontier = candidates[first]
            self._mark(frontier, sources[first], via[first], level)

    def _finish_with_queue(self, frontier: torch.Tensor, level: int) -> None:
        # Long thin graphs (paths, deep chains) would pay the per-level tensor overhead once per
        # level; a plain FIFO queue continues the same search in the same discovery order.
        if self._lists is None:
            self._lists = (self.indptr.tolist(), self.indices.tolist(), self.edge_ids.tolist())
        indptr, indices, edge_ids = self._lists
        depth = self.depth.tolist()
        queue = deque(frontier.tolist())
        found_nodes: list[int] = []
        found_parents: list[int] = []
        found_edges: list[int] = []
        found_depths: list[int] = []
        while queue:
            node = queue.popleft()
            child_depth = depth[node] + 1
            for position in range(indptr[node], indptr[node + 1]):
                neighbour = indices[position]
                if depth[neighbour] < 0:
                    depth[neighbour] = child_depth
                    queue.append(neighbour)
                    found_nodes.append(neighbour)
                    found_parents.append(node)
                    found_edges.append(edge_ids[position])
                    found_depths.append(child_depth)
        if found_nodes:
            nodes = torch.tensor(found_nodes, dtype=torch.int64)
            count = nodes.numel()
            self.parent[nodes] = torch.tensor(found_parents, dtype=torch.int64)
            self.parent_edge[nodes] = torch.tensor(found_edges, dtype=torch.int64)
            self.depth[nodes] = torch.tensor(found_depths, dtype=torch.int64)
            self.visit_rank[nodes] = torch.arange(self.visited, self.visited + count)
            self.visited += count

    def _mark(self, nodes, parents, via, level) -> None:
        count = nodes.numel()
        self.parent[nodes] = parents
        self.parent_edge[nodes] = via
        self.depth[nodes] = level
        self.visit_rank[nodes] = torch.arange(self.visited, self.visited + count)
        self.visited += count


def bfs_tree(
    graph: Graph,
    root: str | int | None = None,
    *,
    forest: Literal["roots", "virtual", "error"] | None = None,
    require_tree: bool = False,
    orientation: Orientation = "child-parent",
    virtual_root_name: str = "<root>",
    neighbour_order: Literal["edges", "sorted", "input"] = "edges",
) -> BFSTree:
    """Breadth-first spanning tree of a graph or DAG.

    Parameters
    ----------
    graph : Graph
        Undirected: edges are walked both ways. Directed: edges point child -> parent
        (``orientation="child-parent"``, the WordNet convention) and are walked from parents
        to children; with ``orientation="parent-child"`` they are walked as given.
    root : str, int or None
        A node name (str) or index (int). None chooses automatically: for a directed graph,
        every node without a parent (the unique source of a single-rooted hierarchy); for an
        undirected graph, in each connected component the node of largest degree (smallest
        index among ties) -- a cheap stand-in for the centre.
    forest : {"roots", "virtual", "error"} or None
        What to do with nodes the root(s) do not reach (disconnected graphs, or directed graphs
        with several sources): "roots" gives each remaining part its own automatically chosen
        root(s); "virtual" does the same, then adds a virtual root (named
        ``virtual_root_name``, the last node) as parent of all roots; "error" raises. None
        behaves as "roots" and warns with the number of trees.
    require_tree : bool
        Raise :class:`NotATreeError` if any edge is left out of the tree: an edge that closes a
        cycle of the underlying undirected graph, a second parent, a self loop or a repeat.
    orientation : {"child-parent", "parent-child"}
        Direction of the edges of a directed graph (ignored for undirected graphs).
    virtual_root_name : str
        Name of the virtual root; must not be a node name.
    neighbour_order : {"edges", "sorted", "input"}
        Order in which a node's neighbours are discovered: "edges" follows :meth:`Graph.csr`
        (for an undirected graph: the edges listing the node first, then those listing it
        second, each in edge order); "sorted" increasing node index, which makes the tree
        independent of how the edge list happens to be ordered; "input" the order in which the
        edges touching the node appear, either way round (networkx's adjacency order for a
        graph built from the edge list).

    Returns
    -------
    BFSTree

    Raises
    ------
    GraphError
        ``root`` is not in the graph, or ``forest="error"`` and one root does not reach all.
    NotATreeError
        ``require_tree=True`` and an edge is left out; the message names it.

    Notes
    -----
    The search is level-synchronous and vectorised; within a level, nodes are discovered in
    the order a FIFO-queue BFS over the adjacency in ``neighbour_order`` would find them.
    """
    if forest not in (None, "roots", "virtual", "error"):
        raise ValueError(f"forest must be 'roots', 'virtual' or 'error', got {forest!r}")
    if neighbour_order not in ("edges", "sorted", "input"):
        raise ValueError(f"neighbour_order must be 'edges', 'sorted' or 'input', got {neighbour_order!r}")
    if orientation not in ("child-parent", "parent-child"):
        raise ValueError(
            f"orientation must be 'child-parent' or 'parent-child', got {orientation!r}"
        )
    n = graph.num_nodes
    if n == 0:
        raise GraphError(f"bfs_tree: graph {graph._label()} has no nodes")
    if graph.directed:
        walk = "in" if orientation == "child-parent" else "out"
        indptr, indices, edge_ids = graph.csr(walk)
        child_column = 0 if orientation == "child-parent" else 1
        parent_counts = torch.bincount(graph.edges[:, child_column], minlength=n)
    else:
        indptr, indices, edge_ids = graph.csr("both")
        parent_counts = None
    if neighbour_order != "edges":
        row = torch.repeat_interleave(torch.arange(n), torch.diff(indptr))
        key = indices if neighbour_order == "sorted" else edge_ids
        order = torch.argsort(row * max(n, graph.num_edges) + key, stable=True)  # repeats keep edge order
        indices, edge_ids = indices[order], edge_ids[order]
    num_components, component = connected_components(graph)
    search = _Search(n, indptr, indices, edge_ids)

    if root is not None:
        search.run(torch.tensor([graph.node_id(root)], dtype=torch.int64))
    else:
        search.run(
            _automatic_roots(
                graph, parent_counts, component, num_components, torch.ones(n, dtype=torch.bool)
            )
        )
    unreached = search.depth < 0
    if bool(unreached.any()):
        example = graph.names[int(torch.nonzero(unreached)[0])]
        count = int(unreached.sum())
        if forest == "error":
            start = (
                f"root {graph.names[int(search.roots[0][0])]!r}"
                if root is not None
                else (f"the {search.roots[0].numel()} automatic root(s)")
            )
            raise GraphError(
                f"bfs_tree: {start} does not reach {count} of {n} nodes of graph "
                f"{graph._label()} (e.g. {example!r}; {num_components} connected component(s)); "
                "pass forest='roots' or forest='virtual' for a forest"
            )
        while bool(unreached.any()):
            search.run(_automatic_roots(graph, parent_counts, component, num_components, unreached))
            unreached = search.depth < 0
    roots = torch.cat(search.roots)
    if forest is None and roots.numel() > 1:
        warnings.warn(
            f"bfs_tree: graph {graph._label()} needs {roots.numel()} trees "
            f"({num_components} connected component(s)); built a forest. Pass forest='roots' "
            "to accept this silently or forest='virtual' to join the trees under one root.",
            stacklevel=2,
        )

    tree_edge_count = n - roots.numel()
    dropped = graph.num_edges - tree_edge_count
    if require_tree and dropped:
        used = torch.zeros(graph.num_edges, dtype=torch.bool)
        used[search.parent_edge[search.parent_edge >= 0]] = True
        edge = int(torch.nonzero(~used)[0])
        u, v = graph.edges[edge].tolist()
        names = graph.names
        if u == v:
            reason = "it is a self loop"
        else:
            if graph.directed:
                child = u if orientation == "child-parent" else v
            else:
                child = u if bool(search.depth[u] > search.depth[v]) else v
            other = v if child == u else u
            child_parent = int(search.parent[child])
            if child_parent == other:
                reason = f"it repeats the tree edge between {names[u]!r} and {names[v]!r}"
            elif child_parent < 0:
                reason = f"{names[child]!r} is a root"
            else:
                reason = f"{names[child]!r} is already reached through {names[child_parent]!r}"
        arrow = "->" if graph.directed else "--"
        raise NotATreeError(
            f"graph {graph._label()} is not a tree: edge {edge} ({names[u]!r} {arrow} "
            f"{names[v]!r}) closes a cycle ({reason}); {dropped} edge(s) in all are not tree edges"
        )

    parent, depth, parent_edge = search.parent, search.depth, search.parent_edge
    visit_key = depth * n + search.visit_rank
    order = torch.sort(visit_key).indices
    names = graph.names
    virtual_root = None
    if forest == "virtual":
        if virtual_root_name in graph.index:
            raise GraphError(f"virtual root name {virtual_root_name!r} is a node of the graph")
        virtual_root = n
        parent = torch.cat([parent, torch.tensor([-1])])
        parent[roots] = n
        depth = torch.cat([depth + 1, torch.tensor([0])])
        parent_edge = torch.cat([parent_edge, torch.tensor([-1])])
        order = torch.cat([torch.tensor([n]), order])
        names = names + (virtual_root_name,)
    level_ptr = torch.zeros(int(depth.max()) + 2, dtype=torch.int64)
    torch.cumsum(torch.bincount(depth, minlength=level_ptr.numel() - 1), 0, out=level_ptr[1:])
    return BFSTree(
        names=names,
        parent=parent,
        depth=depth,
        order=order,
        level_ptr=level_ptr,
        parent_edge=parent_edge,
        roots=roots,
        num_dropped_edges=dropped,
        num_components=num_components,
        virtual_root=virtual_root,
        source=graph.source,
    )


def _automatic_roots(
    graph: Graph,
    parent_counts: torch.Tensor | None,
    component: torch.Tensor,
    num_components: int,
    candidates: torch.Tensor,
) -> torch.Tensor:
    """Roots among the ``candidates`` mask: see ``bfs_tree``'s ``root=None``."""
    n = graph.num_nodes
    if parent_counts is not None:
        sources = torch.nonzero(candidates & (parent_counts == 0)).reshape(-1)
        if sources.numel():
            return sources
        # Only cycles remain: start from the smallest unreached node.
        return torch.nonzero(candidates)[:1].reshape(-1)
    degree = graph.degrees()
    # Per component: largest degree, then smallest index, packed into one integer key.
    key = torch.where(candidates, degree * (n + 1) + (n - torch.arange(n)), -1)
    best = torch.full((num_components,), -1, dtype=torch.int64)
    best.scatter_reduce_(0, component, key, reduce="amax")
    best = best[best >= 0]
    return torch.sort(n - best % (n + 1)).values


# ====================================================================== closures


def _sparse(graph: Graph):
    import scipy.sparse as sp

    n = graph.num_nodes
    u, v = graph.edges[:, 0].numpy(), graph.edges[:, 1].numpy()
    return sp.csr_matrix((np.ones(len(u), dtype=np.int64), (u, v)), shape=(n, n))


def is_transitively_closed(graph: Graph) -> bool:
    """True when a directed graph with at least one path of length 2 contains all its 2-step shortcuts."""
    if not graph.directed or graph.num_edges == 0:
        return False
    adjacency = _sparse(graph)
    adjacency.data[:] = 1
    two = (adjacency @ adjacency).tocoo()
    if two.nnz == 0:
        return False
    two.setdiag(0)
    two.eliminate_zeros()
    if two.nnz == 0:
        return False
    inside = two.multiply(adjacency).tocoo()
    inside.eliminate_zeros()
    return inside.nnz == two.nnz


def transitive_reduction(graph: Graph) -> Graph:
    """The transitive reduction of a transitively closed DAG: edges not implied by two others.

    An edge ``(u, w)`` is kept unless some ``v`` has edges ``(u, v)`` and ``(v, w)`` (for a closure this is
    exactly the Hasse diagram, e.g. the hypernym DAG of a WordNet closure).
    """
    adjacency = _sparse(graph)
    adjacency.data[:] = 1
    two = (adjacency @ adjacency).tocsr()
    two.data[:] = 1
    edges = graph.edges.numpy()
    implied = np.asarray(two[edges[:, 0], edges[:, 1]]).reshape(-1) > 0
    keep = torch.from_numpy(~implied)
    weights = None if graph.weights is None else graph.weights[keep]
    return Graph(graph.names, graph.edges[keep], weights, graph.directed, graph.source)
