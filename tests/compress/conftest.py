"""Fixtures shared by the ``tests/compress`` test modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture
def single_thread():
    """The CI box is shared: one intra-op thread avoids oversubscription (restored afterwards).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("single_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def linear_model() -> nn.Module:
    """A 16 -> 4 linear classifier (flattening its input), initialised under ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
