"""GNN dataset loaders: counts and splits of ../shared/notes/frechet.md §9, trusted pickles only."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from embed.gnn_data import (
    UntrustedPickleError,
    airport_degree_features,
    link_split,
    load_airport,
    load_gnn_dataset,
    node_split,
    row_normalize,
)


@pytest.fixture(scope="module")
def hgcn(shared_data):
    return shared_data / "hgcn"


COUNTS = {
    # name: nodes, edges, feature columns, class counts, (train, val, test)
    "disease_lp": (2665, 2664, 11, [1605, 1060], None),
    "disease_nc": (1044, 1043, 1044, [833, 211], (748, 42, 254)),
    "airport": (3188, 18631, 4, [521, 1443, 999, 225], (2876, 156, 156)),
    "cora": (2708, 5278, 1433, None, (140, 500, 1000)),
    "pubmed": (19717, 44327, 500, None, (60, 500, 1000)),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_and_splits(hgcn, name):
    nodes, edges, feats, classes, split = COUNTS[name]
    data = load_gnn_dataset(name, hgcn)
    assert (data.num_nodes, data.num_edges, data.features.shape[1]) == (nodes, edges, feats)
    assert data.features.dtype == torch.float32 and data.edge_index.shape == (2, 2 * edges)
    assert bool((data.edges[:, 0] <= data.edges[:, 1]).all())
    if classes is not None:
        assert torch.bincount(data.labels).tolist() == classes
    if split is not None:
        assert (len(data.train), len(data.val), len(data.test)) == split
        union = torch.cat([data.train, data.val, data.test])
        assert union.unique().numel() == union.numel()
    if name == "pubmed":
        assert data.notes and int((data.features.abs().sum(1) > 0).sum()) == 1060
    assert name in repr(data)


def test_node_split_is_hgcn_rule():
    labels = torch.tensor([0, 1, 2, 0, 1, 1, 3, 0, 2, 1, 0, 1] * 10)
    train, val, test = node_split(labels, 0.15, 0.15, seed=3)
    y = labels.numpy()
    np.random.seed(3)
    pos, neg = np.nonzero(y != 0)[0], np.nonzero(y == 0)[0]
    np.random.shuffle(pos)
    np.random.shuffle(neg)
    m = min(len(pos), len(neg))
    k = round(0.15 * m)
    assert val.tolist() == pos[:k].tolist() + neg[:k].tolist()
    assert test.tolist() == pos[k : 2 * k].tolist() + neg[k : 2 * k].tolist()
    assert len(train) + len(val) + len(test) == len(y)


def test_link_split_is_hgcn_mask_edges(hgcn):
    data = load_gnn_dataset("disease_lp", hgcn)
    split = link_split(data.edges, data.num_nodes)
    assert (len(split.train_pos), len(split.val_pos), len(split.test_pos)) == (2265, 133, 266)
    assert len(split.val_neg) == 133 and len(split.test_neg) == 266
    # the literal HGCN procedure: global seed, row shuffles of the upper-triangle (non-)edges
    n = data.num_nodes
    adj = np.zeros((n, n))
    adj[data.edges[:, 0], data.edges[:, 1]] = 1
    adj[data.edges[:, 1], data.edges[:, 0]] = 1
    np.random.seed(1234)
    pos = np.stack(np.triu(adj).nonzero(), axis=1)
    np.random.shuffle(pos)
    neg_head = np.stack(np.triu(1.0 - adj).nonzero(), axis=1)
    np.random.shuffle(neg_head)
    assert split.val_pos.tolist() == pos[:133].tolist()
    assert split.test_pos.tolist() == pos[133:399].tolist()
    assert split.test_neg.tolist() == neg_head[133:399].tolist()
    edges = {tuple(e) for e in data.edges.tolist()}
    assert not any(tuple(e) in edges for e in split.val_neg.tolist() + split.test_neg.tolist())
    assert split.train_edge_index.shape == (2, 2 * 2265)


def test_airport_degree_features(hgcn):
    data = load_airport(hgcn / "airport")
    feats = airport_degree_features(data.lp_features, data.edges, data.num_nodes)
    assert feats.shape == (3188, 5 + 6 + 1)
    assert torch.equal(feats[:, 5:11].sum(1), torch.ones(3188)) and torch.equal(feats[:, -1], torch.ones(3188))


def test_airport_degree_features_follow_the_features():
    edges = torch.tensor([[0, 1], [1, 2], [1, 3]])
    feats = airport_degree_features(torch.zeros(5, 2, dtype=torch.float64), edges, 5)
    assert feats.dtype == torch.float64
    assert feats[:, 2:8].argmax(1).tolist() == [1, 3, 1, 1, 0]
    assert torch.equal(feats[:, -1], torch.ones(5, dtype=torch.float64))
    # On the meta device (standing in for a GPU) the degree count and the constant column are made there too.
    out = airport_degree_features(torch.zeros(5, 2, device="meta"), edges.to("meta"), 5)
    assert out.device.type == "meta" and out.shape == (5, 9) and out.dtype == torch.float32


def test_row_normalize_is_hgcn_normalize():
    x = torch.tensor([[1.0, 3.0, 0.0], [2.0, -4.0, 1.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.25, 0.75, 0.0], [-2.0, 4.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                            dtype=torch.float64)
    out = row_normalize(x)
    assert out.dtype == torch.float64 and torch.equal(out, expected)  # signed sums; zero-sum rows stay zero
    assert torch.equal(row_normalize(x.float()), expected.float())


def test_refuses_untrusted_pickles(hgcn, tmp_path):
    folder = tmp_path / "airport"
    folder.mkdir()
    shutil.copy(hgcn / "airport" / "airport.p", folder / "airport.p")
    with open(folder / "airport.p", "ab") as f:
        f.write(b"\0")
    with pytest.raises(UntrustedPickleError):
        load_airport(folder)
    with pytest.raises(FileNotFoundError):
        load_gnn_dataset("cora", tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        load_gnn_dataset("reddit", tmp_path)
