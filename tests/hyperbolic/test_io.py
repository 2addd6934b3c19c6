"""Embedding files and exports."""

import pytest
import torch

from hyperbolic import HalfSpace, Lorentz, io


def test_tsv_round_trips_float64_exactly(tmp_path):
    manifold = Lorentz(3)
    x = manifold.random(6, std=4.0, generator=torch.Generator().manual_seed(0))
    io.export_tsv(tmp_path / "e.tsv", x, [f"n{i}" for i in range(6)])
    lines = (tmp_path / "e.tsv").read_text().splitlines()
    assert len(lines) == 6 and lines[0].split("\t")[0] == "n0"
    values = torch.tensor([[float(v) for v in line.split("\t")[1:]] for line in lines], dtype=torch.float64)
    assert torch.equal(values, x)


def test_config_and_learnable_curvature_survive_a_round_trip(tmp_path):
    manifold = HalfSpace(2, curvature=-0.5, learnable=True)
    x = manifold.random(3, generator=torch.Generator().manual_seed(1))
    io.save_embedding(tmp_path / "e.pt", x, manifold, config={"lr": 0.3, "epochs": 10})
    names, points, loaded = io.load_embedding(tmp_path / "e.pt")
    assert names == ["0", "1", "2"]
    assert io.load_config(tmp_path / "e.pt") == {"epochs": 10, "lr": 0.3}
    assert loaded.learnable and float(loaded.curvature.detach()) == -0.5


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.bin"

    def failing(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        io.atomic_write(target, failing)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_write_refuses_a_directory(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="folder' is a directory; give a file name"):
        io.atomic_write(folder, lambda temporary: open(temporary, "w").close())
    assert list(folder.iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["folder"]
