"""Fixtures for the agent tests."""

from __future__ import annotations

import pytest
import torch

from dlsched_gym import traces
from dlsched_gym.workload import Workload


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Small networks run fastest (and steadiest on shared machines) on one thread."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def philly_workload() -> Workload:
    """Philly VC 103959 (the env's default trace)."""
    return traces.load("philly-vc/103959")

