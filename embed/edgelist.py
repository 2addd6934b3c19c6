"""Edge-list files: reading (with every malformed line named), parsing text, and atomic writing.

Nothing is dropped silently: duplicate edges and self loops are dropped with a warning that counts them and
names the first one, or refused with an error when asked.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch

from hyperbolic.io import atomic_write

from .graphs import Graph, GraphError

__all__ = ["GraphFormatError", "parse_edgelist", "read_edgelist", "write_edgelist"]


class GraphFormatError(GraphError):
    """An edge-list file is malformed; the message names the file, the line and the value."""


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
