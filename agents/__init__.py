"""Trainable RL agents (stable-baselines3), their feature extractors, and PolicyScheduler.

- :func:`train`: MaskablePPO (default), PPO, A2C or DQN on a DLCluster env, with vectorized envs,
  TensorBoard, checkpoints/resume, held-out evaluation against FIFO, optional behaviour cloning;
- :func:`load_agent`: a ``.zip`` or ``pretrained:philly`` as a :class:`PolicyScheduler` (a
  Scheduler the plain engine can run beside the baselines);
- :class:`DeepSetsExtractor`, :class:`SlotMaskablePolicy`, :class:`SlotActorCriticPolicy`: the
  permutation-invariant networks;
- :class:`SchedulerPolicy`: any baseline acting inside the env through SB3's ``predict``.

SB3 model files are pickles: load only trusted files (bundled agents are checksum-verified).
"""

from dlsched_gym.agents.networks import DeepSetsExtractor, SlotActorCriticPolicy, SlotMaskablePolicy
from dlsched_gym.agents.policies import (
    PRETRAINED,
    PolicyScheduler,
    SchedulerPolicy,
    load_agent,
    load_model,
    rollout,
)
from dlsched_gym.agents.training import behaviour_cloning, evaluate_model, make_vec_env, train

__all__ = ["PRETRAINED", "DeepSetsExtractor", "PolicyScheduler", "SchedulerPolicy", "SlotActorCriticPolicy",
           "SlotMaskablePolicy", "behaviour_cloning", "evaluate_model", "load_agent", "load_model",
           "make_vec_env", "rollout", "train"]
