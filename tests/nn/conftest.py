"""Fixtures shared by the tests of hyperbolic.nn."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors: thread start-up costs more than it saves on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
