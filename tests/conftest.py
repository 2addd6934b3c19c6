"""Test-wide set-up: register every representation, locate the shared data folder, load benchmark scripts."""

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from embed.cli import load_representations

load_representations()

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SHARED_DATA = Path(os.environ.get("HYPERBOLIC_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it fail clearly when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA.resolve()} (set HYPERBOLIC_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for modules of small tensors (OpenMP workers only add synchronisation and spin on a
    shared 2-core machine). Opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("hgcn")``: the script ``benchmarks/hgcn.py`` loaded as a module (the scripts are not a
    package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
