"""Fixtures for the environment tests."""

from __future__ import annotations

import pytest

from dlsched_gym import traces
from dlsched_gym.workload import Workload


@pytest.fixture(scope="session")
def philly_workload() -> Workload:
    """Philly VC 103959 (the env's default trace)."""
    return traces.load("philly-vc/103959")


@pytest.fixture
def philly_env_kwargs(philly_workload) -> dict:
    """Small, fast episodes on the default trace and cluster."""
    return {"trace": philly_workload, "cluster": "philly-vc/103959", "episode_jobs": 48, "window": 8}
