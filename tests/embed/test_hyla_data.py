"""Loaders of the HyLa / HGCN node-classification datasets (shared data, never committed)."""

import pickle

import numpy as np
import pytest
import torch

from embed.hyla_data import (
    DATASETS,
    TRUSTED_PICKLES,
    UntrustedDataError,
    _load_trusted_pickle,
    load_airport,
    load_node_dataset,
    split_by_groups,
)


@pytest.fixture(scope="module")
def hyla_root(shared_data):
    return shared_data / "HyLa" / "nc" / "datasets"


@pytest.mark.parametrize(
    "name, nodes, edges, features, classes, split, counts",
    [
        ("cora", 2708, 5278, 1433, 7, (140, 500, 1000), [351, 217, 418, 818, 426, 298, 180]),
        ("citeseer", 3327, 4552, 3703, 6, (120, 500, 1000), None),
        ("airport", 3188, 18630, 4, 4, (2876, 156, 156), [521, 1443, 999, 225]),
        ("disease", 1044, 1043, None, 2, (748, 42, 254), [833, 211]),
    ],
)
def test_counts_and_splits(hyla_root, name, nodes, edges, features, classes, split, counts):
    data = load_node_dataset(name, hyla_root)
    assert data.num_nodes == nodes
    loops = int((data.edge_index[0] == data.edge_index[1]).sum())
    assert data.edge_index.shape[1] - loops == edges
    assert bool((data.edge_index[0] <= data.edge_index[1]).all())
    assert (data.features is None) == (features is None)
    if features is not None:
        assert data.features.shape == (nodes, features) and data.features.dtype == torch.float64
    assert data.num_classes == classes
    assert (len(data.train_idx), len(data.val_idx), len(data.test_idx)) == split
    parts = [set(i.tolist()) for i in (data.train_idx, data.val_idx, data.test_idx)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    if counts is not None:
        assert torch.bincount(data.labels).tolist() == counts
    assert name in repr(data)


def test_cora_graph_from_csv_equals_the_pickled_graph(hyla_root, shared_data):
    from_csv = load_node_dataset("cora", hyla_root / "cora")
    from_pickle = load_node_dataset("cora", shared_data / "hgcn" / "cora")  # no cora_pub.csv there
    assert torch.equal(from_csv.edge_index, from_pickle.edge_index)
    assert torch.equal(from_csv.labels, from_pickle.labels)
    assert torch.equal(from_csv.features, from_pickle.features)


def test_citeseer_isolated_test_nodes_are_padded(hyla_root):
    # Citeseer's ind.citeseer.test.index skips 15 ids of its range [min, max]: isolated nodes with no row in
    # tx/ty, padded with zero features as in Kipf & Welling's loader (embed/hyla_data.py docstring). Exactly
    # those rows are zero: every other node has at least one word.
    data = load_node_dataset("citeseer", hyla_root)
    listed = np.loadtxt(hyla_root / "citeseer" / "ind.citeseer.test.index", dtype=np.int64)
    missing = sorted(set(range(int(listed.min()), int(listed.max()) + 1)) - set(listed.tolist()))
    assert len(missing) == 15
    zero_rows = (data.features.abs().sum(1) == 0).nonzero().flatten().tolist()
    assert zero_rows == missing
    assert int(data.test_idx.max()) < data.num_nodes


def test_hgcn_literal_split_reproduces_the_published_airport_protocol(hyla_root):
    """HGCN's code takes (1 - labels).nonzero() as the second group: label != 1 for Airport's four
    classes, so 225 of the 524 test entries are also training entries (95.8 % = 502/524)."""
    data = load_airport(hyla_root, split="hgcn")
    assert (len(data.train_idx), len(data.val_idx), len(data.test_idx)) == (3364, 524, 524)
    overlap = set(data.test_idx.tolist()) & set(data.train_idx.tolist())
    assert len(overlap) == 225
    binary = np.array([0, 1] * 50 + [1] * 30)
    for a, b in zip(split_by_groups(binary, 0.1, 0.6, split="hgcn"), split_by_groups(binary, 0.1, 0.6)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="split"):
        split_by_groups(binary, 0.1, 0.6, split="random")


def test_untrusted_pickles_are_refused(tmp_path, hyla_root):
    # a file named like a trusted pickle but with other bytes
    forged = tmp_path / "airport.p"
    forged.write_bytes(pickle.dumps({"feat": [1, 2, 3]}))
    with pytest.raises(UntrustedDataError, match="SHA-256"):
        _load_trusted_pickle(forged)
    with pytest.raises(UntrustedDataError, match="not a known trusted pickle"):
        _load_trusted_pickle(tmp_path / "other.p")
    with pytest.raises(UntrustedDataError, match="SHA-256"):
        load_airport(tmp_path)
    assert set(TRUSTED_PICKLES) >= {"ind.cora.x", "ind.citeseer.graph", "airport.p"}


def test_restricted_unpickler_refuses_other_classes():
    from embed.hyla_data import _RestrictedUnpickler

    class Evil:
        def __reduce__(self):
            return (print, ("never runs",))

    import io

    with pytest.raises(UntrustedDataError, match="allow-list"):
        _RestrictedUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()


def test_bad_names_and_paths(tmp_path, hyla_root):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_node_dataset("pubmed", hyla_root)
    with pytest.raises(FileNotFoundError, match="disease"):
        load_node_dataset("disease", tmp_path)
    with pytest.raises(ValueError, match="Planetoid"):
        load_node_dataset("cora", hyla_root, split="hgcn")
    assert set(DATASETS) == {"cora", "citeseer", "airport", "disease"}
