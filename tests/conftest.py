"""Test-wide set-up: register every representation, and locate the shared data folder."""

import os
from pathlib import Path

import pytest

from embed.cli import load_representations

load_representations()

SHARED_DATA = Path(os.environ.get("HYPERBOLIC_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it fail clearly when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED_DATA.resolve()} (set HYPERBOLIC_SHARED_DATA)")
    return SHARED_DATA
