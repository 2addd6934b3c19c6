r"""Loaders for the GNN benchmark datasets of HGCN (``../shared/data/hgcn/``) and their standard splits.

Datasets (counts from ``../shared/notes/frechet.md`` §9):

========== ====================================================== ================================
name       files                                                  contents
========== ====================================================== ================================
disease_lp ``disease_lp.{edges.csv,feats.npz,labels.npy}``         2,665 nodes, 2,664 edges, 11 feats
disease_nc ``disease_nc.{edges.csv,labels.npy}`` (no features)     1,044 nodes, 1,043 edges
airport    ``airport.p`` (pickled networkx graph)                  3,188 nodes, 18,631 edges
cora       Planetoid ``ind.cora.*``                                2,708 nodes, 5,278 edges
pubmed     Planetoid ``ind.pubmed.*`` without ``allx``             19,717 nodes, 44,327 edges
========== ====================================================== ================================

.. warning::

   ``airport.p`` and the Planetoid ``ind.*`` files are **Python pickles**: unpickling runs code chosen by
   whoever wrote the file. These loaders therefore refuse any pickle whose SHA-256 digest is not one
   of the known digests of the trusted HGCN copies in ``../shared/data/hgcn/`` (:data:`TRUSTED_PICKLES`).
   Never point them at files from elsewhere, and never relax the check for user-supplied data.
   ``airport_alldata.p`` (a pickled pandas DataFrame) is not read.

Splits follow HGCN (seed 1234):

* link prediction (:func:`link_split`): 5 % of the undirected edges for validation, 10 % for test, each
  with as many non-edges; training negatives are sampled from the non-edges of the *training* graph
  (which include the held-out positives, as in HGCN);
* node classification (:func:`node_split`): with :math:`m = \min(\#\{y \ne 0\}, \#\{y = 0\})`, take
  ``round(val_prop m)`` and ``round(test_prop m)`` from each group for validation and test, the rest for
  training (Disease 0.10 / 0.60, Airport 0.15 / 0.15); Cora and Pubmed use the Planetoid split.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "GNNData",
    "LinkSplit",
    "TRUSTED_PICKLES",
    "load_disease_lp",
    "load_disease_nc",
    "load_airport",
    "load_planetoid",
    "load_gnn_dataset",
    "link_split",
    "node_split",
    "airport_degree_features",
    "row_normalize",
    "UntrustedPickleError",
]

#: SHA-256 of the pickles this module agrees to unpickle (the HGCN repository copies, commit a526385).
TRUSTED_PICKLES = {
    "airport.p": "ab16b04cea3666e87dbd8a5bff3de68da61330f4604fa21082f7a17e806e64d8",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.pubmed.ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
    "ind.pubmed.graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
    "ind.pubmed.tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
    "ind.pubmed.ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
    "ind.pubmed.x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
    "ind.pubmed.y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
}

SPLIT_SEED = 1234


class UntrustedPickleError(ValueError):
    """A pickle file is not one of the trusted copies (:data:`TRUSTED_PICKLES`)."""


def _trusted_unpickle(path: Path, encoding: str = "ASCII"):
    """Unpickle ``path`` only if its SHA-256 digest is the trusted one for its file name."""
    expected = TRUSTED_PICKLES.get(path.name)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected is None or digest != expected:
        raise UntrustedPickleError(
            f"refusing to unpickle {path}: only the trusted HGCN copies may be loaded "
            f"(sha256 {digest} is not the known digest for {path.name!r})"
        )
    return pickle.loads(data, encoding=encoding)  # noqa: S301 - digest-checked trusted file


@dataclass
class GNNData:
    """A graph with node features, optional labels and an optional node split.

    Attributes
    ----------
    name : str
    edges : torch.Tensor
        ``[E, 2]`` undirected edges, each once with ``u <= v`` (self loops kept, as in the files), sorted.
    features : torch.Tensor
        ``[N, F]`` float32 node features.
    labels : torch.Tensor or None
        ``[N]`` int64 class labels.
    train, val, test : torch.Tensor or None
        Node-classification index sets.
    notes : list of str
        Deviations from the paper setting (missing files and what replaced them).
    """

    name: str
    edges: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor | None = None
    train: torch.Tensor | None = None
    val: torch.Tensor | None = None
    test: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return self.features.shape[0]

    @property
    def num_edges(self) -> int:
        return self.edges.shape[0]

    @property
    def edge_index(self) -> torch.Tensor:
        """``[2, 2E]``: both directions of every edge (PyG convention, source row first)."""
        return torch.cat([self.edges.T, self.edges.T.flip(0)], dim=1)

    def __repr__(self) -> str:
        labels = "" if self.labels is None else f", classes={int(self.labels.max()) + 1}"
        split = "" if self.train is None else f", split={len(self.train)}/{len(self.val)}/{len(self.test)}"
        return (f"GNNData({self.name}: nodes={self.num_nodes}, edges={self.num_edges}, "
                f"features={self.features.shape[1]}{labels}{split})")


@dataclass
class LinkSplit:
    """HGCN's link-prediction split (all arrays ``[k, 2]`` int64 node pairs, ``u <= v``).

    Attributes
    ----------
    train_pos, val_pos, test_pos : torch.Tensor
        Positive edges.
    val_neg, test_neg : torch.Tensor
        As many non-edges as positives.
    train_neg_pool : torch.Tensor
        Non-edges of the training graph to sample training negatives from (includes the held-out
        positives, which the training graph does not contain).
    """

    train_pos: torch.Tensor
    train_neg_pool: torch.Tensor
    val_pos: torch.Tensor
    val_neg: torch.Tensor
    test_pos: torch.Tensor
    test_neg: torch.Tensor

    @property
    def train_edge_index(self) -> torch.Tensor:
        """``[2, 2M]``: both directions of the training edges (the graph the encoder sees)."""
        return torch.cat([self.train_pos.T, self.train_pos.T.flip(0)], dim=1)


def _unique_edges(u: np.ndarray, v: np.ndarray) -> torch.Tensor:
    """Each undirected edge once as ``(min, max)``, sorted; self loops kept (they count as edges in
    HGCN's adjacency and hence in its link split)."""
    pairs = np.unique(np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1), axis=0)
    return torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)


def _read_edges_csv(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """HGCN's ``load_synthetic_data``: string ids relabelled 0..n-1 in order of first appearance."""
    ids: dict[str, int] = {}
    us, vs = [], []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 2:
            raise ValueError(f"{path}:{line_no}: expected 'u,v', got {line!r}")
        a, b = (ids.setdefault(p, len(ids)) for p in parts)
        us.append(a)
        vs.append(b)
    return np.asarray(us), np.asarray(vs), len(ids)


def _folder(path, name: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: dataset folder {path} not found")
    return path


def load_disease_lp(path) -> GNNData:
    """Disease link-prediction tree from the folder ``path`` (``disease_lp.*``): 11 features, 2 labels."""
    import scipy.sparse as sp

    path = _folder(path, "disease_lp")
    u, v, n = _read_edges_csv(path / "disease_lp.edges.csv")
    features = torch.as_tensor(sp.load_npz(path / "disease_lp.feats.npz").toarray(), dtype=torch.float32)
    labels = torch.as_tensor(np.load(path / "disease_lp.labels.npy"), dtype=torch.long)
    if features.shape[0] != n or labels.shape[0] != n:
        raise ValueError(f"disease_lp: {n} nodes in the edges but {features.shape[0]} feature rows")
    return GNNData("disease_lp", _unique_edges(u, v), features, labels)


def load_disease_nc(path, seed: int = SPLIT_SEED) -> GNNData:
    """Disease node-classification tree; identity features (``disease_nc.feats.npz`` is missing upstream)."""
    path = _folder(path, "disease_nc")
    u, v, n = _read_edges_csv(path / "disease_nc.edges.csv")
    labels = torch.as_tensor(np.load(path / "disease_nc.labels.npy"), dtype=torch.long)
    train, val, test = node_split(labels, 0.10, 0.60, seed)
    data = GNNData("disease_nc", _unique_edges(u, v), torch.eye(n), labels, train, val, test)
    data.notes.append("identity features: disease_nc.feats.npz is missing upstream (not the paper setting)")
    return data


def load_airport(path, seed: int = SPLIT_SEED) -> GNNData:
    r"""Airport graph from ``airport.p`` (trusted pickle, see the module warning).

    Features: the 4 NC feature columns; labels: column 4 binned at :math:`[7/7, 8/7, 9/7]` (4 classes);
    the node split uses 0.15 / 0.15. HGCN's link prediction keeps all 5 columns: see
    :attr:`GNNData.notes` and :func:`airport_degree_features` for its degree augmentation.
    """
    path = _folder(path, "airport")
    graph = _trusted_unpickle(path / "airport.p")
    nodes = list(graph.nodes())
    position = {node: i for i, node in enumerate(nodes)}
    raw = np.array([graph.nodes[node]["feat"] for node in nodes], dtype=np.float64)
    edges = np.array([(position[a], position[b]) for a, b in graph.edges()], dtype=np.int64).reshape(-1, 2)
    labels = torch.as_tensor(np.digitize(raw[:, 4], [7.0 / 7, 8.0 / 7, 9.0 / 7]), dtype=torch.long)
    train, val, test = node_split(labels, 0.15, 0.15, seed)
    data = GNNData("airport", _unique_edges(edges[:, 0], edges[:, 1]), torch.as_tensor(raw[:, :4], dtype=torch.float32),
                   labels, train, val, test)
    data.lp_features = torch.as_tensor(raw, dtype=torch.float32)  # all 5 columns, HGCN's LP input
    return data


def load_planetoid(path, name: str) -> GNNData:
    """Cora or Pubmed from the Planetoid pickles in ``path`` (trusted copies only; module warning).

    Standard split: the ``y`` nodes train, the next 500 validate, ``test.index`` tests. Pubmed has no
    ``ind.pubmed.allx`` upstream: only its 60 ``x`` and 1,000 ``tx`` nodes get features (zeros elsewhere,
    noted in :attr:`GNNData.notes`).
    """
    import scipy.sparse as sp

    if name not in ("cora", "pubmed"):
        raise ValueError(f"Planetoid dataset must be 'cora' or 'pubmed', got {name!r}")
    path = _folder(path, name)

    def part(suffix):
        return _trusted_unpickle(path / f"ind.{name}.{suffix}", encoding="latin1")

    x, y, tx, ty, ally, graph = (part(s) for s in ("x", "y", "tx", "ty", "ally", "graph"))
    notes = []
    if (path / f"ind.{name}.allx").exists():
        allx = part("allx")
    else:
        allx = sp.vstack([x, sp.csr_matrix((ally.shape[0] - x.shape[0], x.shape[1]))])
        notes.append(f"ind.{name}.allx missing upstream: features only for the {x.shape[0]} x and "
                     f"{tx.shape[0]} tx nodes, zeros elsewhere")
    test_index = np.array([int(line) for line in (path / f"ind.{name}.test.index").read_text().split()])
    test_sorted = np.sort(test_index)
    features = sp.vstack([allx, tx]).tolil()
    features[test_index, :] = features[test_sorted, :]
    labels = np.vstack([ally, ty])
    labels[test_index, :] = labels[test_sorted, :]
    n = labels.shape[0]
    us, vs = [], []
    for node, neighbours in graph.items():
        for other in neighbours:
            us.append(node)
            vs.append(other)
    edges = _unique_edges(np.asarray(us), np.asarray(vs))
    if int(edges.max()) >= n:
        raise ValueError(f"{name}: graph names node {int(edges.max())} beyond the {n} labelled nodes")
    data = GNNData(
        name,
        edges,
        torch.as_tensor(features.toarray(), dtype=torch.float32),
        torch.as_tensor(labels.argmax(1), dtype=torch.long),
        torch.arange(y.shape[0]),
        torch.arange(y.shape[0], y.shape[0] + 500),
        torch.as_tensor(test_sorted, dtype=torch.long),
    )
    data.notes.extend(notes)
    return data


def load_gnn_dataset(name: str, root) -> GNNData:
    """Load ``name`` from ``root/name`` (``root`` = the ``hgcn`` data folder)."""
    root = Path(root)
    if name == "disease_lp":
        return load_disease_lp(root / name)
    if name == "disease_nc":
        return load_disease_nc(root / name)
    if name == "airport":
        return load_airport(root / name)
    if name in ("cora", "pubmed"):
        return load_planetoid(root / name, name)
    raise ValueError(f"unknown GNN dataset {name!r}; known: disease_lp, disease_nc, airport, cora, pubmed")


def node_split(labels: torch.Tensor, val_prop: float, test_prop: float, seed: int = SPLIT_SEED, *,
               literal: bool = False):
    """HGCN's ``split_data`` with the groups ``label != 0`` and ``label == 0`` (see the module docstring).

    ``literal=True`` takes the second group as HGCN's code writes it, ``(1 - labels).nonzero()``, i.e.
    ``label != 1``: the same for binary labels, overlapping groups for more classes.
    Returns ``(train, val, test)`` int64 index tensors.
    """
    y = np.asarray(labels)
    rng = np.random.RandomState(seed)
    pos = np.nonzero(y != 0)[0]
    neg = np.nonzero(y != 1)[0] if literal else np.nonzero(y == 0)[0]
    rng.shuffle(pos)
    rng.shuffle(neg)
    m = min(len(pos), len(neg))
    n_val, n_test = round(val_prop * m), round(test_prop * m)
    val = np.concatenate([pos[:n_val], neg[:n_val]])
    test = np.concatenate([pos[n_val : n_val + n_test], neg[n_val : n_val + n_test]])
    train = np.concatenate([pos[n_val + n_test :], neg[n_val + n_test :]])
    return tuple(torch.as_tensor(a, dtype=torch.long) for a in (train, val, test))


def link_split(edges: torch.Tensor, num_nodes: int, val_prop: float = 0.05, test_prop: float = 0.10,
               seed: int = SPLIT_SEED) -> LinkSplit:
    """HGCN's ``mask_edges``: shuffle the upper-triangle edges and non-edges with ``RandomState(seed)``.

    Non-edges are all pairs ``u <= v`` that are not edges (the diagonal included, as in HGCN), so the
    shuffle, and hence the split, is HGCN's for the same graph and seed.
    """
    adj = np.zeros((num_nodes, num_nodes), dtype=bool)
    e = np.asarray(edges)
    adj[e[:, 0], e[:, 1]] = True
    adj[e[:, 1], e[:, 0]] = True
    rng = np.random.RandomState(seed)

    def shuffled(pairs):
        # Shuffling an index vector draws the same permutation as shuffling the rows, much faster.
        order = np.arange(len(pairs))
        rng.shuffle(order)
        return pairs[order]

    pos = shuffled(np.stack(np.nonzero(np.triu(adj)), axis=1))
    neg = shuffled(np.stack(np.nonzero(np.triu(~adj)), axis=1))
    m = len(pos)
    n_val, n_test = int(m * val_prop), int(m * test_prop)
    val_pos, test_pos, train_pos = pos[:n_val], pos[n_val : n_val + n_test], pos[n_val + n_test :]
    val_neg, test_neg = neg[:n_val], neg[n_val : n_val + n_test]
    pool = np.concatenate([neg, val_pos, test_pos], axis=0)

    def t(a):
        return torch.as_tensor(a, dtype=torch.long).reshape(-1, 2)

    return LinkSplit(t(train_pos), t(pool), t(val_pos), t(val_neg), t(test_pos), t(test_neg))


def airport_degree_features(features: torch.Tensor, train_edges: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """HGCN's airport augmentation: append a one-hot degree (capped at 5, 6 columns) and a constant 1.

    Degrees are counted in the graph given by ``train_edges [M, 2]`` (the training graph for LP).
    """
    ends = train_edges.reshape(-1).to(features.device)
    degree = torch.zeros(num_nodes, dtype=torch.long, device=features.device)
    degree.index_add_(0, ends, torch.ones_like(ends))
    onehot = torch.nn.functional.one_hot(degree.clamp_max(5), 6).to(features.dtype)
    return torch.cat([features, onehot, features.new_ones(num_nodes, 1)], dim=1)


def row_normalize(features: torch.Tensor) -> torch.Tensor:
    r"""HGCN's feature normalisation (its ``normalize_feats``): each row divided by its sum.

    :math:`x_i \mapsto x_i / \sum_k x_{ik}`; a row summing to zero stays zero (HGCN sets the infinite
    inverse to 0). The sum is signed, as in HGCN: on real-valued features such as Disease-LP's a row with
    a negative sum changes sign and one summing to nearly zero grows large.
    """
    total = features.sum(-1, keepdim=True)
    nonzero = total != 0
    return torch.where(nonzero, features / torch.where(nonzero, total, torch.ones_like(total)), torch.zeros_like(features))
