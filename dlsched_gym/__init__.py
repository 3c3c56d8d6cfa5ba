"""dlsched-gym: a trace-driven GPU-cluster simulator for deep-learning training jobs, with
published schedulers as baselines and a Gymnasium environment (``DLCluster-v0``) for RL agents."""

__version__ = "0.1.0"

from dlsched_gym.env import register_envs as _register_envs

_register_envs()
