"""Baseline schedulers: the published cluster schedulers and the classics, one module each.

Use :func:`make` (``make("tiresias", thresholds=(3250,))``) and :func:`available`.
"""

from dlsched_gym.baselines import fifo  # noqa: F401  (registers)
from dlsched_gym.baselines.registry import accepted_params, available, get, make, register

__all__ = ["accepted_params", "available", "get", "make", "register"]
