"""WordNet 3.0 datasets (noun, mammal and verb closures; the noun hypernym graph).

The graphs are built directly from the WordNet 3.0 database files (WNDB format: ``data.noun``,
``index.noun``, ...), without nltk. Synsets get nltk's names (``dog.n.01``). Every graph is a
directed :class:`embed.graphs.Graph` with edges child -> ancestor (hyponym -> hypernym) and
nodes numbered in ``data.<pos>`` offset order.

=========================  ==========================================  =======  =======
dataset                    rule                                         nodes    edges
=========================  ==========================================  =======  =======
noun_closure("full")       ancestors along any mix of ``@`` and ``@i``  82,115   743,241
noun_closure("script")     the widely used closure script's rule        82,115   743,086
mammal_closure()           mammal.n.01 subtree of the closure, filtered  1,180    6,540
mammal_closure(False)      the same, unfiltered                          1,182    6,542
verb_closure()             ancestors along ``@`` (isolated verbs absent) 13,542   35,079
noun_hypernym_graph()      plain ``@`` links, largest component          74,374   75,834
=========================  ==========================================  =======  =======

The mammal closure also ships inside the package (:func:`load_mammals`, no WordNet needed).

Where WordNet is looked for, in order: the ``wordnet_dir`` argument, ``$WORDNET_DIR``,
``$WNSEARCHDIR`` (WordNet's own variable), ``/usr/share/wordnet`` (Debian's ``wordnet-base``),
``/usr/local/share/wordnet``, then nltk's ``corpora/wordnet`` directory or ``wordnet.zip`` under
``$NLTK_DATA``, ``~/nltk_data`` and the other usual nltk_data folders. Only WordNet 3.0 is
accepted (the licence header of the data file must say so).

Built graphs are cached under ``$HYPERBOLIC_CACHE``, else ``$XDG_CACHE_HOME/hyperbolic``, else
``~/.cache/hyperbolic``, as ``.pt`` files holding only a list of names and an edge tensor
(read with ``torch.load(weights_only=True)``), keyed by the MD5 of the WordNet files used.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import logging
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import torch

from embed.edgelist import parse_edgelist, write_edgelist
from embed.graphs import Graph, connected_components
from hyperbolic.io import atomic_write

__all__ = [
    "DATASETS",
    "Synset",
    "WordNetDatabase",
    "WordNetFormatError",
    "WordNetNotFoundError",
    "cache_dir",
    "find_wordnet",
    "load_dataset",
    "load_mammals",
    "mammal_closure",
    "noun_closure",
    "noun_hypernym_graph",
    "read_synsets",
    "verb_closure",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Install WordNet 3.0 with `apt-get install wordnet-base` (Debian/Ubuntu, files in "
    "/usr/share/wordnet) or `python -m nltk.downloader wordnet` (nltk's corpus), or point "
    "the wordnet_dir argument or $WORDNET_DIR at a folder holding data.noun and index.noun."
)

#: Synsets removed from the mammal closure by the filter list of the widely used
#: Poincaré-embeddings recipe. Its 24 regular expressions are matched, anchored, against
#: ``"id1 id2"``; the 22 that start with a whitespace class can never match there, so only the
#: rows whose descendant is one of these two synsets go (each has a single row, to mammal.n.01).
MAMMAL_FILTERED_SYNSETS = ("tusker.n.01", "female_mammal.n.01")

_CACHE_FORMAT = "hyperbolic-wordnet-graph"
_CACHE_VERSION = 1
_BUILTIN_MAMMALS = "mammal_closure.csv"


class WordNetNotFoundError(FileNotFoundError):
    """No usable WordNet 3.0 database was found; the message says how to install one."""


class WordNetFormatError(ValueError):
    """A WordNet file is malformed or is not WordNet 3.0; the message names file and line."""


# ====================================================================== locating WordNet


@dataclass(frozen=True)
class WordNetDatabase:
    """A WordNet database: a folder of WNDB files, or a zip holding them (nltk's corpus).

    Attributes
    ----------
    location : str
        The folder, or the zip file.
    member_prefix : str or None
        For a zip: the folder inside it that holds the files (``"wordnet/"``); None otherwise.
    """

    location: str
    member_prefix: str | None = None

    def path_of(self, name: str) -> str:
        """Human-readable path of a database file, for messages."""
        if self.member_prefix is None:
            return str(Path(self.location) / name)
        return f"{self.location}:{self.member_prefix}{name}"

    def read_bytes(self, name: str) -> bytes:
        """Contents of a database file such as ``data.noun``."""
        if self.member_prefix is None:
            return (Path(self.location) / name).read_bytes()
        with zipfile.ZipFile(self.location) as archive:
            return archive.read(self.member_prefix + name)

    def has(self, name: str) -> bool:
        """Whether the database holds the file ``name``."""
        if self.member_prefix is None:
            return (Path(self.location) / name).is_file()
        with zipfile.ZipFile(self.location) as archive:
            return self.member_prefix + name in archive.namelist()

    def version_problem(self) -> str | None:
        """None for WordNet 3.0, else why not (read from ``data.noun``'s licence header)."""
        head = self.read_bytes("data.noun")[:4096].decode("ascii", "replace")
        header = " ".join(
            line[2:].split(None, 1)[1] if len(line[2:].split(None, 1)) > 1 else ""
            for line in head.splitlines()
            if line.startswith("  ")
        )
        if "WordNet 3.0" in header:
            return None
        for word in ("WordNet 3.1", "WordNet 2.1", "WordNet 2.0"):
            if word in header:
                return f"it is {word}, not WordNet 3.0"
        return "its data.noun licence header does not name WordNet 3.0"


def _nltk_data_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs.append(Path.home() / "nltk_data")
    prefix = Path(sys.prefix)
    dirs += [prefix / "nltk_data", prefix / "share" / "nltk_data", prefix / "lib" / "nltk_data"]
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        if appdata:
            dirs.append(Path(appdata) / "nltk_data")
        dirs += [Path("C:/nltk_data"), Path("D:/nltk_data"), Path("E:/nltk_data")]
    else:
        dirs += [
            Path("/usr/share/nltk_data"),
            Path("/usr/local/share/nltk_data"),
            Path("/usr/lib/nltk_data"),
            Path("/usr/local/lib/nltk_data"),
        ]
    return dirs


def default_search_paths() -> list[Path]:
    """Folders and zips tried when no folder is given (see the module docstring)."""
    paths = []
    if os.environ.get("WNSEARCHDIR"):
        paths.append(Path(os.environ["WNSEARCHDIR"]))
    paths += [Path("/usr/share/wordnet"), Path("/usr/local/share/wordnet")]
    for nltk_dir in _nltk_data_dirs():
        paths += [nltk_dir / "corpora" / "wordnet", nltk_dir / "corpora" / "wordnet.zip"]
    return paths


def _open_candidate(path: Path) -> WordNetDatabase | str:
    """A database at ``path``, or a string saying why there is none."""
    if path.is_dir() and not (path / "corpora" / "wordnet").is_dir():
        nltk_zip = path / "corpora" / "wordnet.zip"
        if nltk_zip.is_file():
            path = nltk_zip
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if m.endswith("data.noun")]
        if not members:
            return f"{path}: zip without data.noun"
        database = WordNetDatabase(str(path), min(members, key=len)[: -len("data.noun")])
    elif path.is_dir():
        for folder in (path, path / "dict", path / "wordnet", path / "corpora" / "wordnet"):
            if (folder / "data.noun").is_file():
                database = WordNetDatabase(str(folder))
                break
        else:
            return f"{path}: no data.noun"
    else:
        return f"{path}: does not exist"
    if not database.has("index.noun"):
        return f"{database.path_of('index.noun')}: missing"
    problem = database.version_problem()
    if problem:
        return f"{database.location}: {problem}"
    return database


def find_wordnet(
    wordnet_dir: str | os.PathLike | WordNetDatabase | None = None,
    *,
    search: Sequence[str | os.PathLike] | None = None,
) -> WordNetDatabase:
    """Locate a WordNet 3.0 database.

    Parameters
    ----------
    wordnet_dir : path-like, WordNetDatabase or None
        A folder holding ``data.noun`` (or its ``dict/`` parent, or an nltk_data folder), or a
        zip of nltk's corpus. None: ``$WORDNET_DIR`` if set, else the search list.
    search : sequence of path-like, optional
        Replaces the default search list (:func:`default_search_paths`).

    Raises
    ------
    WordNetNotFoundError
        Nothing usable was found; lists what was tried and how to install WordNet.
    WordNetFormatError
        An explicitly given folder holds a WordNet other than 3.0.
    """
    if isinstance(wordnet_dir, WordNetDatabase):
        return wordnet_dir
    explicit = wordnet_dir if wordnet_dir is not None else os.environ.get("WORDNET_DIR") or None
    if explicit is not None:
        origin = "wordnet_dir" if wordnet_dir is not None else "$WORDNET_DIR"
        found = _open_candidate(Path(explicit))
        if isinstance(found, WordNetDatabase):
            return found
        if "not WordNet 3.0" in found or "does not name WordNet 3.0" in found:
            raise WordNetFormatError(f"{origin} = {str(explicit)!r} is unusable: {found}")
        raise WordNetNotFoundError(
            f"{origin} = {str(explicit)!r} holds no WordNet database ({found}). {INSTALL_HINT}"
        )
    tried = []
    for candidate in default_search_paths() if search is None else [Path(p) for p in search]:
        found = _open_candidate(Path(candidate))
        if isinstance(found, WordNetDatabase):
            return found
        tried.append(found)
    shown = "; ".join(tried[:6]) + (f"; and {len(tried) - 6} more" if len(tried) > 6 else "")
    raise WordNetNotFoundError(f"WordNet 3.0 not found (tried: {shown}). {INSTALL_HINT}")


# ====================================================================== parsing


@dataclass(frozen=True)
class Synset:
    """One synset of a WordNet data file.

    Attributes
    ----------
    offset : int
        Byte offset of its line in ``data.<pos>``: the synset id.
    name : str
        nltk's name: first lemma lower-cased, ``.pos.``, two-digit sense number (``dog.n.01``).
    lemmas : tuple of str
        Lemma names as in the file (case kept, ``_`` for spaces).
    hypernyms : tuple of int
        Offsets of ``@`` (hypernym) targets of the same part of speech.
    instance_hypernyms : tuple of int
        Offsets of ``@i`` (instance hypernym) targets (nouns only).
    """

    offset: int
    name: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[int, ...]
    instance_hypernyms: tuple[int, ...]


def _data_lines(data: bytes, path: str):
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise WordNetFormatError(f"{path}:{line}: not ASCII") from None
    for line_number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("  ") or not line.strip():
            continue  # licence header lines start with two spaces
        yield line_number, line


def parse_index(data: bytes, path: str = "index") -> dict[str, list[str]]:
    """Map each lemma of an ``index.<pos>`` file to its synset offsets (8-digit strings, as in
    the file), in sense order."""
    senses: dict[str, list[str]] = {}
    for line_number, line in _data_lines(data, path):
        fields = line.split()
        try:
            offsets = fields[int(fields[3]) + 6 :]
            if len(offsets) != int(fields[2]):
                raise ValueError(f"{fields[2]} synsets announced, {offsets} listed")
        except (ValueError, IndexError) as error:
            raise WordNetFormatError(
                f"{path}:{line_number}: malformed index line ({error})"
            ) from None
        senses[fields[0]] = offsets
    return senses


def parse_data(
    data: bytes, pos: str, path: str = "data"
) -> list[tuple[int, tuple[str, ...], tuple[int, ...], tuple[int, ...]]]:
    """Parse a ``data.<pos>`` file into ``(offset, lemmas, hypernyms, instance_hypernyms)``.

    Only pointers to the same part of speech are kept; verb frames and glosses are skipped.
    """
    synsets = []
    for line_number, line in _data_lines(data, path):
        fields = line.partition(" | ")[0].split()
        try:
            offset = int(fields[0])
            word_count = int(fields[3], 16)
            lemmas = tuple(fields[4 : 4 + 2 * word_count : 2])
            position = 4 + 2 * word_count
            pointer_count = int(fields[position])
            hypernyms, instances = [], []
            for k in range(pointer_count):
                symbol, target, target_pos = fields[position + 1 + 4 * k : position + 4 + 4 * k]
                if target_pos != pos:
                    continue
                if symbol == "@":
                    hypernyms.append(int(target))
                elif symbol == "@i":
                    instances.append(int(target))
            if len(lemmas) != word_count or not lemmas:
                raise ValueError(f"{word_count} words announced, {len(lemmas)} found")
        except (ValueError, IndexError) as error:
            raise WordNetFormatError(
                f"{path}:{line_number}: malformed synset line ({error}): {line[:80]!r}"
            ) from None
        synsets.append((offset, lemmas, tuple(hypernyms), tuple(instances)))
    return synsets


@contextlib.contextmanager
def _collector_paused():
    # Parsing creates ~10^6 small objects and no cycles; collector passes would only cost time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_files(database: WordNetDatabase, pos: str) -> tuple[bytes, bytes]:
    suffix = {"n": "noun", "v": "verb"}[pos]
    return database.read_bytes(f"data.{suffix}"), database.read_bytes(f"index.{suffix}")


def _synsets_from_files(database: WordNetDatabase, pos: str, data: bytes, index: bytes):
    suffix = {"n": "noun", "v": "verb"}[pos]
    data_path, index_path = database.path_of(f"data.{suffix}"), database.path_of(f"index.{suffix}")
    senses = parse_index(index, index_path)
    result = []
    for offset, lemmas, hypernyms, instances in parse_data(data, pos, data_path):
        lemma = lemmas[0].lower()
        try:
            sense = senses[lemma].index(f"{offset:08d}") + 1
        except (KeyError, ValueError):
            raise WordNetFormatError(
                f"{index_path}: synset {offset:08d} ({lemmas[0]}) is not listed under "
                f"lemma {lemma!r}"
            ) from None
        result.append(Synset(offset, f"{lemma}.{pos}.{sense:02d}", lemmas, hypernyms, instances))
    return result


def read_synsets(
    pos: Literal["n", "v"] = "n", wordnet_dir: str | os.PathLike | WordNetDatabase | None = None
) -> list[Synset]:
    """All synsets of a part of speech (``"n"`` or ``"v"``), in offset order, named like nltk."""
    if pos not in ("n", "v"):
        raise ValueError(f"pos must be 'n' or 'v', got {pos!r}")
    database = find_wordnet(wordnet_dir)
    with _collector_paused():
        return _synsets_from_files(database, pos, *_read_files(database, pos))


# ====================================================================== closures


def _ancestor_sets(parents: list[tuple[int, ...]], names: Sequence[str]) -> list[tuple[int, ...]]:
    """Transitive closure of ``parents`` (sorted ancestor indices per node), by memoised DFS."""
    n = len(parents)
    ancestors: list[tuple[int, ...] | None] = [None] * n
    state = bytearray(n)  # 0 new, 1 on the DFS path, 2 done
    for start in range(n):
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(parents[start]))]
        while stack:
            node, pending = stack[-1]
            for parent in pending:
                if state[parent] == 0:
                    state[parent] = 1
                    stack.append((parent, iter(parents[parent])))
                    break
                if state[parent] == 1:
                    raise WordNetFormatError(
                        f"hypernym cycle through {names[parent]} and {names[node]}"
                    )
            else:
                stack.pop()
                collected: set[int] = set()
                for parent in parents[node]:
                    collected.add(parent)
                    collected.update(ancestors[parent])
                ancestors[node] = tuple(sorted(collected))
                state[node] = 2
    return ancestors  # type: ignore[return-value]


def _indexed(synsets: list[Synset]):
    position = {s.offset: i for i, s in enumerate(synsets)}
    names = [s.name for s in synsets]

    def targets(offsets: tuple[int, ...], source: Synset) -> tuple[int, ...]:
        try:
            return tuple(position[o] for o in offsets)
        except KeyError as error:
            raise WordNetFormatError(
                f"synset {source.name} points to offset {error.args[0]:08d}, which is not a synset"
            ) from None

    hypernyms = [targets(s.hypernyms, s) for s in synsets]
    instances = [targets(s.instance_hypernyms, s) for s in synsets]
    return names, hypernyms, instances


def _closure_ancestors(
    synsets: list[Synset], variant: Literal["full", "script"]
) -> tuple[list[str], list[tuple[int, ...]]]:
    names, hypernyms, instances = _indexed(synsets)
    if variant == "full":
        parents = [h + i for h, i in zip(hypernyms, instances, strict=True)]
        return names, _ancestor_sets(parents, names)
    if variant != "script":
        raise ValueError(f"variant must be 'full' or 'script', got {variant!r}")
    # The script's rule: plain-hypernym closure for every synset; for an instance, also its
    # instance-hypernym chains, each followed by the plain-hypernym closure of its members.
    plain = _ancestor_sets(hypernyms, names)
    instance_chains = _ancestor_sets(instances, names)
    ancestors = []
    for node in range(len(names)):
        collected = set(plain[node])
        for hyper in instance_chains[node]:
            collected.add(hyper)
            collected.update(plain[hyper])
        ancestors.append(tuple(sorted(collected)))
    return names, ancestors


def _closure_graph(
    names: list[str],
    ancestors: list[tuple[int, ...]],
    keep: Sequence[int] | None,
    source: str,
) -> Graph:
    """Graph of the pairs (node, ancestor) for nodes in ``keep`` (default: nodes in any pair)."""
    if keep is None:
        in_pairs = bytearray(len(names))
        for node, above in enumerate(ancestors):
            if above:
                in_pairs[node] = 1
                for a in above:
                    in_pairs[a] = 1
        keep = [i for i in range(len(names)) if in_pairs[i]]
    new_id = {old: new for new, old in enumerate(keep)}
    flat = []
    for old in keep:
        child = new_id[old]
        for ancestor in ancestors[old]:
            mapped = new_id.get(ancestor)
            if mapped is not None:
                flat.append(child)
                flat.append(mapped)
    edges = torch.tensor(flat, dtype=torch.int64).reshape(-1, 2)
    return Graph(tuple(names[i] for i in keep), edges, None, True, source)


# ====================================================================== caching


def cache_dir() -> Path:
    """Cache folder: ``$HYPERBOLIC_CACHE``, else ``$XDG_CACHE_HOME/hyperbolic``, else
    ``~/.cache/hyperbolic``."""
    if os.environ.get("HYPERBOLIC_CACHE"):
        return Path(os.environ["HYPERBOLIC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hyperbolic"


def _fingerprint(*blobs: bytes) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for blob in blobs:
        digest.update(hashlib.md5(blob, usedforsecurity=False).digest())
    return digest.hexdigest()


def _load_cached(path: Path, dataset: str, fingerprint: str, source: str) -> Graph | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if (
            stored.get("format") != _CACHE_FORMAT
            or stored.get("version") != _CACHE_VERSION
            or stored.get("dataset") != dataset
            or stored.get("fingerprint") != fingerprint
        ):
            return None
        return Graph(tuple(stored["names"]), stored["edges"], None, True, source)
    except Exception as error:  # a damaged cache is rebuilt, never trusted
        logger.warning("ignoring unreadable cache file %s (%s); rebuilding", path, error)
        return None


def _store_cached(path: Path, dataset: str, fingerprint: str, graph: Graph) -> None:
    payload = {
        "format": _CACHE_FORMAT,
        "version": _CACHE_VERSION,
        "dataset": dataset,
        "fingerprint": fingerprint,
        "names": list(graph.names),
        "edges": graph.edges,
    }
    try:
        atomic_write(path, lambda temporary: torch.save(payload, temporary))
    except OSError as error:
        logger.warning("could not write cache file %s (%s)", path, error)


def _dataset(
    dataset: str,
    pos: str,
    wordnet_dir,
    cache: bool | str | os.PathLike,
    build,
) -> Graph:
    database = find_wordnet(wordnet_dir)
    data, index = _read_files(database, pos)
    fingerprint = _fingerprint(data, index)
    source = f"wordnet:{dataset} (WordNet 3.0 at {database.location})"
    path = None
    if cache:
        folder = cache_dir() if cache is True else Path(cache)
        path = folder / f"wordnet-{dataset}-{fingerprint[:16]}.pt"
        graph = _load_cached(path, dataset, fingerprint, source)
        if graph is not None:
            logger.info("loaded %s from cache %s", dataset, path)
            return graph
    with _collector_paused():
        synsets = _synsets_from_files(database, pos, data, index)
        graph = build(synsets, source)
    if path is not None:
        _store_cached(path, dataset, fingerprint, graph)
    return graph


# ====================================================================== datasets

WordNetDir = str | os.PathLike | WordNetDatabase | None


def noun_closure(
    variant: Literal["full", "script"] = "full",
    *,
    wordnet_dir: WordNetDir = None,
    cache: bool | str | os.PathLike = True,
) -> Graph:
    """Transitive closure of the noun hierarchy: 82,115 synsets.

    Parameters
    ----------
    variant : {"full", "script"}
        "full" (default): every ancestor along any mix of hypernym (``@``) and instance
        hypernym (``@i``) links: 743,241 pairs, the published count. "script": the rule of the
        widely used Poincaré-embeddings closure script (plain-hypernym closure, plus for an
        instance its instance-hypernym chain followed by plain hypernyms): 743,086 pairs; it
        misses ancestors reached through a plain hypernym that is itself an instance
        (``alecto.n.01 -> fury.n.04 -@i-> mythical_monster.n.01``), 155 pairs from 22 synsets.
    wordnet_dir : path-like or None
        WordNet location (see :func:`find_wordnet`).
    cache : bool or path-like
        True: use :func:`cache_dir`; a path: use that folder; False: always rebuild.

    Returns
    -------
    Graph
        Directed, edges (descendant, ancestor); nodes in ``data.noun`` offset order.
    """
    if variant not in ("full", "script"):
        raise ValueError(f"variant must be 'full' or 'script', got {variant!r}")
    logger.info("noun closure, %s variant", variant)

    def build(synsets, source):
        names, ancestors = _closure_ancestors(synsets, variant)
        return _closure_graph(names, ancestors, None, source)

    name = "noun_closure" if variant == "full" else "noun_closure_script"
    return _dataset(name, "n", wordnet_dir, cache, build)


def mammal_closure(
    filtered: bool = True,
    *,
    wordnet_dir: WordNetDir = None,
    cache: bool | str | os.PathLike = True,
) -> Graph:
    """The mammal.n.01 subtree of the noun closure.

    Nodes: mammal.n.01 and every synset that has it as an ancestor (1,182); edges: closure
    pairs between them (6,542; both closure variants agree here). ``filtered=True`` (default)
    drops the rows of :data:`MAMMAL_FILTERED_SYNSETS`, as the Poincaré-embeddings recipe's
    filter list does, leaving the published 1,180 nodes and 6,540 edges.
    """

    def build(synsets, source):
        names, ancestors = _closure_ancestors(synsets, "full")
        root = names.index("mammal.n.01")
        excluded = set(MAMMAL_FILTERED_SYNSETS) if filtered else set()
        keep = [
            i
            for i, above in enumerate(ancestors)
            if (i == root or root in above) and names[i] not in excluded
        ]
        return _closure_graph(names, ancestors, keep, source)

    name = "mammal_closure" if filtered else "mammal_closure_unfiltered"
    return _dataset(name, "n", wordnet_dir, cache, build)


def verb_closure(
    *, wordnet_dir: WordNetDir = None, cache: bool | str | os.PathLike = True
) -> Graph:
    """Transitive closure of the verb hierarchy (``@`` links): 13,542 synsets, 35,079 pairs.

    The 225 verb synsets with neither hypernym nor hyponym are absent (they are in no pair).
    """

    def build(synsets, source):
        names, hypernyms, _ = _indexed(synsets)
        return _closure_graph(names, _ancestor_sets(hypernyms, names), None, source)

    return _dataset("verb_closure", "v", wordnet_dir, cache, build)


def noun_hypernym_graph(
    *, wordnet_dir: WordNetDir = None, cache: bool | str | os.PathLike = True
) -> Graph:
    """Plain noun hypernym links (``@`` only), largest connected component: the edge-MAP graph.

    74,374 synsets and 75,834 edges (of 75,850 plain links; no instance hypernyms). Nodes in
    ``data.noun`` offset order, so node 0 is entity.n.01 and node 17 person.n.01, as in the
    hyperbolics repository's ``wordnet.edges``. Edges (child, parent), sorted.
    """

    def build(synsets, source):
        names, hypernyms, _ = _indexed(synsets)
        pairs = [(child, parent) for child, above in enumerate(hypernyms) for parent in above]
        graph = Graph(tuple(names), torch.tensor(pairs, dtype=torch.int64), None, True, source)
        _, component = connected_components(graph)
        largest = int(torch.bincount(component).argmax())
        keep = torch.nonzero(component == largest).reshape(-1)
        sub = graph.subgraph(keep)
        order = torch.argsort(sub.edges[:, 0] * sub.num_nodes + sub.edges[:, 1])
        return Graph(sub.names, sub.edges[order], None, True, source)

    return _dataset("noun_hypernyms", "n", wordnet_dir, cache, build)


def load_mammals() -> Graph:
    """The built-in mammal closure shipped with the package (no WordNet install needed).

    The same graph as :func:`mammal_closure` (1,180 nodes, 6,540 edges, directed, edges
    (descendant, ancestor)); nodes numbered by first appearance in the shipped CSV, whose rows
    are sorted. Derived from WordNet 3.0: see ``embed/data/WORDNET_LICENSE``.
    """
    resource = resources.files("embed").joinpath("data", _BUILTIN_MAMMALS)
    text = resource.read_text(encoding="utf-8")
    return parse_edgelist(
        text,
        source=f"embed/data/{_BUILTIN_MAMMALS} (built-in)",
        directed=True,
        delimiter=",",
        weighted=False,
        duplicates="error",
        self_loops="error",
    )


#: Dataset names accepted by :func:`load_dataset`.
DATASETS = {
    "mammals": "built-in mammal closure (1,180 nodes, 6,540 edges), no WordNet needed",
    "mammal_closure": "mammal closure built from WordNet (1,180 / 6,540)",
    "mammal_closure_unfiltered": "mammal closure without the recipe's filter (1,182 / 6,542)",
    "noun_closure": "noun closure, hypernyms and instance hypernyms (82,115 / 743,241)",
    "noun_closure_script": "noun closure as the widely used script builds it (82,115 / 743,086)",
    "verb_closure": "verb closure (13,542 / 35,079)",
    "noun_hypernyms": "plain noun hypernym graph, largest component (74,374 / 75,834)",
}


def load_dataset(
    name: str, *, wordnet_dir: WordNetDir = None, cache: bool | str | os.PathLike = True
) -> Graph:
    """Load a dataset by name (see :data:`DATASETS`)."""
    options = {"wordnet_dir": wordnet_dir, "cache": cache}
    if name == "mammals":
        return load_mammals()
    if name == "mammal_closure":
        return mammal_closure(True, **options)
    if name == "mammal_closure_unfiltered":
        return mammal_closure(False, **options)
    if name == "noun_closure":
        return noun_closure("full", **options)
    if name == "noun_closure_script":
        return noun_closure("script", **options)
    if name == "verb_closure":
        return verb_closure(**options)
    if name == "noun_hypernyms":
        return noun_hypernym_graph(**options)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m embed.wordnet DATASET OUTPUT``: write a dataset as a sorted edge list."""
    parser = argparse.ArgumentParser(
        prog="python -m embed.wordnet",
        description="Build a WordNet 3.0 dataset and write it as an edge list "
        "(CSV id1,id2,weight for .csv; rows sorted bytewise).",
    )
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("output", type=Path)
    parser.add_argument("--wordnet-dir", default=None, help="WordNet 3.0 database folder")
    parser.add_argument("--no-cache", action="store_true", help="rebuild, ignore the cache")
    args = parser.parse_args(argv)
    try:
        graph = load_dataset(args.dataset, wordnet_dir=args.wordnet_dir, cache=not args.no_cache)
    except (WordNetNotFoundError, WordNetFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_edgelist(graph, args.output, sort_rows=True)
    print(f"wrote {args.output}: {graph.num_nodes} nodes, {graph.num_edges} edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
