"""A random observation for the Deep Sets extractor tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch


def extractor_and_observation(env_kwargs: dict, rows: str, valid: int):
    """A Deep Sets extractor for the env's spaces and one random batch-of-one observation whose
    ``rows`` key (``"queue"`` or ``"running_jobs"``) has its first ``valid`` slots valid and the
    rest empty (all zeros)."""
    from dlsched_gym.agents import DeepSetsExtractor

    space = gym.make("DLCluster-v0", **env_kwargs).observation_space
    rng = np.random.default_rng(0)
    obs = {k: torch.as_tensor(rng.random((1, *s.shape), dtype=np.float32)) for k, s in space.items()}
    obs[rows][0, :, 0] = 1.0
    obs[rows][0, valid:, :] = 0.0
    return DeepSetsExtractor(space), obs
