r"""Node-classification datasets of the HyLa / HGCN benchmarks: Cora, Citeseer, Airport, Disease.

The files live outside the project (``../shared/data/HyLa/nc/datasets/<name>/`` or
``../shared/data/hgcn/<name>/``; each folder has a SOURCE.md); loaders take the folder as a path.

.. warning::

   Cora and Citeseer (Planetoid ``ind.*``) and Airport (``airport.p``) exist only as **Python pickles**,
   and unpickling runs code chosen by whoever wrote the file. These loaders therefore unpickle only
   files whose SHA-256 digest is one of the trusted copies listed in :data:`TRUSTED_PICKLES` (the
   shared-data copies of the HyLa and HGCN repositories), and even then only through an unpickler that
   admits the few classes those files contain. Never point them at pickles from elsewhere. Where a
   non-pickle file holds the same data it is preferred: the Cora citation graph is read from
   ``cora_pub.csv``, Disease entirely from ``disease_nc.edges.csv`` and ``disease_nc.labels.npy``.

Splits:

* Cora / Citeseer: the Planetoid split (train = the first 140 / 120 nodes, validation the next 500,
  test the 1,000 listed in ``ind.<name>.test.index``). Citeseer's 15 isolated test-range nodes are
  padded with zero features (Kipf & Welling's loader).
* Airport / Disease: HGCN's per-group rule with seed 1234. With ``pos`` the nodes of label != 0 and
  ``neg`` those of label 0, each shuffled by ``numpy.random.RandomState(1234)`` (``pos`` first) and
  :math:`m = \min(|pos|, |neg|)`, validation takes the first ``round(v m)`` of each group, test the next
  ``round(t m)``, training the rest, with (v, t) = (0.15, 0.15) for Airport and (0.10, 0.60) for Disease.

Disease has no node features here (``disease_nc.feats.npz`` is missing upstream), so it is a
node-level (feature-free) task.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .gnn_data import node_split

__all__ = [
    "NodeDataset",
    "TRUSTED_PICKLES",
    "UntrustedDataError",
    "DATASETS",
    "load_node_dataset",
    "load_cora",
    "load_citeseer",
    "load_airport",
    "load_disease",
    "split_by_groups",
    "SPLITS",
]

#: SHA-256 digests of the only pickles these loaders will open (shared-data copies, see SOURCE.md).
TRUSTED_PICKLES: dict[str, str] = {
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "airport.p": "ab16b04cea3666e87dbd8a5bff3de68da61330f4604fa21082f7a17e806e64d8",
}

# The classes the trusted pickles contain; nothing else may be constructed while unpickling.
_ALLOWED_CLASSES = {
    ("__builtin__", "list"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("collections", "defaultdict"),
    ("networkx.classes.graph", "Graph"),
    ("networkx.classes.reportviews", "NodeView"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("scipy.sparse.csr", "csr_matrix"),
    ("scipy.sparse._csr", "csr_matrix"),
}

DATASETS = ("cora", "citeseer", "airport", "disease")


class UntrustedDataError(ValueError):
    """A pickle is not one of the trusted copies, or asks for a class outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_CLASSES:
            raise UntrustedDataError(f"pickle asks for {module}.{name}, which is not on the allow-list")
        if module == "scipy.sparse.csr":
            module = "scipy.sparse"
        return super().find_class(module, name)


def _load_trusted_pickle(path: Path):
    """Unpickle ``path`` only if its SHA-256 matches :data:`TRUSTED_PICKLES`, with the restricted unpickler."""
    expected = TRUSTED_PICKLES.get(path.name)
    if expected is None:
        raise UntrustedDataError(f"{path} is not a known trusted pickle; refusing to unpickle it")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise UntrustedDataError(
            f"{path} has SHA-256 {digest}, not the trusted copy's {expected}; refusing to unpickle it "
            "(use the copies under ../shared/data, see SOURCE.md there)"
        )
    return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


@dataclass
class NodeDataset:
    """A graph with node labels and a train / validation / test split.

    Attributes
    ----------
    name : str
    edge_index : LongTensor ``(2, E)``
        Undirected edges, each listed once as ``(u, v)`` with ``u <= v`` (self loops of the source data
        kept as ``(u, u)``).
    num_nodes : int
    features : Tensor ``(N, F)`` float64 or None
        Raw node features (``None`` where the dataset has none).
    labels : LongTensor ``(N,)``
    train_idx, val_idx, test_idx : LongTensor
    """

    name: str
    edge_index: torch.Tensor
    num_nodes: int
    features: torch.Tensor | None
    labels: torch.Tensor
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def __repr__(self) -> str:
        features = "none" if self.features is None else f"{self.features.shape[1]}"
        return (
            f"NodeDataset({self.name}: {self.num_nodes} nodes, {self.edge_index.shape[1]} edges, "
            f"features={features}, classes={self.num_classes}, split={len(self.train_idx)}/"
            f"{len(self.val_idx)}/{len(self.test_idx)})"
        )


def _undirected(pairs: np.ndarray, num_nodes: int) -> torch.Tensor:
    """Deduplicated undirected edges ``(2, E)`` with ``u <= v``."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= num_nodes):
        raise ValueError(f"edge endpoints outside 0..{num_nodes - 1}")
    low, high = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    unique = np.unique(np.stack([low, high], axis=1), axis=0)
    return torch.from_numpy(unique.T.copy())


def _folder(path, name: str, required: str) -> Path:
    """The folder holding ``required``: ``path`` itself or ``path/<name>`` (or ``path/<name>_nc``)."""
    path = Path(path)
    for candidate in (path, path / name, path / f"{name}_nc"):
        if (candidate / required).is_file():
            return candidate
    raise FileNotFoundError(f"no {required} under {path} (give the folder of the {name} dataset)")


SPLITS = ("disjoint", "hgcn")


def split_by_groups(labels: np.ndarray, val_prop: float, test_prop: float, seed: int = 1234, split: str = "disjoint"):
    """HGCN's node split (module docstring): ``(train, val, test)`` index arrays.

    ``split="disjoint"``: the groups are label != 0 and label == 0. ``split="hgcn"``: HGCN's code
    literally, whose second group is ``(1 - labels).nonzero()``, i.e. label != 1; for binary labels the
    two agree, but for more classes (Airport) nodes of label >= 2 are in both groups, so the same node
    can be drawn for test and for training (Airport: 524 test entries, 225 of them also in training).
    The published Airport figures were obtained on that split (95.8 % = 502/524).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    parts = node_split(torch.as_tensor(np.asarray(labels)), val_prop, test_prop, seed, literal=split == "hgcn")
    return tuple(part.numpy() for part in parts)


def _tensor_split(*parts) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(p, dtype=np.int64)) for p in parts]


def _planetoid(path, name: str) -> NodeDataset:
    folder = _folder(path, name, f"ind.{name}.test.index")
    objects = {key: _load_trusted_pickle(folder / f"ind.{name}.{key}") for key in ("x", "y", "tx", "ty", "allx", "ally")}
    test_order = np.loadtxt(folder / f"ind.{name}.test.index", dtype=np.int64).reshape(-1)
    test_range = np.sort(test_order)
    tx, ty = objects["tx"].toarray(), np.asarray(objects["ty"])
    if name == "citeseer":
        # Isolated nodes in the test range are missing from tx/ty: pad them with zero rows.
        full = np.arange(test_range.min(), test_range.max() + 1)
        tx_full = np.zeros((len(full), tx.shape[1]))
        ty_full = np.zeros((len(full), ty.shape[1]))
        tx_full[test_range - test_range.min()] = tx
        ty_full[test_range - test_range.min()] = ty
        tx, ty = tx_full, ty_full
    features = np.vstack([objects["allx"].toarray(), tx])
    onehot = np.vstack([np.asarray(objects["ally"]), ty])
    features[test_order] = features[test_range]
    onehot[test_order] = onehot[test_range]
    num_nodes = features.shape[0]
    csv = folder / f"{name}_pub.csv"
    if csv.is_file():
        pairs = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.int64)[:, :2]
    else:
        graph = _load_trusted_pickle(folder / f"ind.{name}.graph")
        pairs = np.array([(u, v) for u, neighbours in graph.items() for v in neighbours], dtype=np.int64)
    n_train = len(objects["y"])
    train, val = np.arange(n_train), np.arange(n_train, n_train + 500)
    return NodeDataset(
        name=name,
        edge_index=_undirected(pairs, num_nodes),
        num_nodes=num_nodes,
        features=torch.from_numpy(features.astype(np.float64)),
        labels=torch.from_numpy(onehot.argmax(1).astype(np.int64)),
        train_idx=torch.from_numpy(train),
        val_idx=torch.from_numpy(val),
        test_idx=torch.from_numpy(test_range.astype(np.int64)),
    )


def load_cora(path) -> NodeDataset:
    """Planetoid Cora: 2,708 nodes, 5,278 edges, 1,433 binary features, 7 classes, split 140/500/1,000.

    Features and labels come from the trusted ``ind.cora.*`` pickles (see the module warning); the graph
    from ``cora_pub.csv`` when present.
    """
    return _planetoid(path, "cora")


def load_citeseer(path) -> NodeDataset:
    """Planetoid Citeseer: 3,327 nodes, 3,703 features, 6 classes, split 120/500/1,000 (trusted pickles
    only, see the module warning)."""
    return _planetoid(path, "citeseer")


def load_airport(path, seed: int = 1234, split: str = "disjoint") -> NodeDataset:
    """HGCN Airport: 3,188 nodes, 18,631 edges, 4 classes from column 4 of the node attribute ``feat``
    binned at [7/7, 8/7, 9/7], features = columns 0-3; split 15 % / 15 % of m per group.

    ``split="disjoint"`` (default): 2,876 / 156 / 156 nodes. ``split="hgcn"``: HGCN's code literally
    (see :func:`split_by_groups`): 3,364 / 524 / 524 entries with repeats, 225 test entries also trained
    on; use it only to compare with published figures. Read from the trusted ``airport.p`` networkx
    pickle only (see the module warning).
    """
    folder = _folder(path, "airport", "airport.p")
    graph = _load_trusted_pickle(folder / "airport.p")
    nodes = list(graph.nodes)
    index = {u: i for i, u in enumerate(nodes)}
    feat = np.array([graph.nodes[u]["feat"] for u in nodes], dtype=np.float64)
    labels = np.digitize(feat[:, 4], [7 / 7, 8 / 7, 9 / 7]).astype(np.int64)
    pairs = np.array([(index[u], index[v]) for u, v in graph.edges], dtype=np.int64)
    train, val, test = split_by_groups(labels, 0.15, 0.15, seed, split)
    return NodeDataset(
        "airport",
        _undirected(pairs, len(nodes)),
        len(nodes),
        torch.from_numpy(feat[:, :4].copy()),
        torch.from_numpy(labels),
        *_tensor_split(train, val, test),
    )


def load_disease(path, seed: int = 1234, split: str = "disjoint") -> NodeDataset:
    """HGCN Disease (node classification): 1,044 nodes, 1,043 edges (a tree), 2 classes; split 10 % / 60 %
    of m per group; **no node features** (missing upstream). No pickle involved. The labels are binary,
    so both ``split`` rules give the same 748 / 42 / 254 split.

    Node ids of ``disease_nc.edges.csv`` are numbered in order of first appearance, as HGCN does.
    """
    folder = _folder(path, "disease", "disease_nc.edges.csv")
    ids: dict[str, int] = {}
    pairs = []
    for line in (folder / "disease_nc.edges.csv").read_text().splitlines():
        if not line.strip():
            continue
        u, v = line.strip().split(",")[:2]
        pairs.append((ids.setdefault(u, len(ids)), ids.setdefault(v, len(ids))))
    labels = np.load(folder / "disease_nc.labels.npy", allow_pickle=False).astype(np.int64)
    if len(labels) != len(ids):
        raise ValueError(f"{len(labels)} labels for {len(ids)} nodes in {folder}")
    train, val, test = split_by_groups(labels, 0.10, 0.60, seed, split)
    return NodeDataset(
        "disease",
        _undirected(np.array(pairs), len(ids)),
        len(ids),
        None,
        torch.from_numpy(labels),
        *_tensor_split(train, val, test),
    )


_LOADERS = {"cora": load_cora, "citeseer": load_citeseer, "airport": load_airport, "disease": load_disease}


def load_node_dataset(name: str, path, **options) -> NodeDataset:
    """Load ``name`` (one of :data:`DATASETS`; ``"disease_nc"`` is accepted) from the folder ``path`` or
    from ``path/<name>``; ``options`` (``seed``, ``split``) go to the Airport and Disease loaders."""
    key = {"disease_nc": "disease"}.get(name, name)
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if options and key in ("cora", "citeseer"):
        raise ValueError(f"{name} has the fixed Planetoid split; options {sorted(options)} do not apply")
    return _LOADERS[key](path, **options)
