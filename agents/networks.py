"""Networks for DLCluster agents: a Deep Sets feature extractor over the queue slots, and policies
whose action logits are per-slot scores.

:class:`DeepSetsExtractor` embeds every visible job with one shared MLP (``phi``), pools the
embeddings of the valid slots (mean and max: invariant to the order of the slots), and mixes the pool
with the cluster, running and overflow features into a context vector. Each slot then gets a score
from a second shared MLP on ``[phi(job), context]``. The output is ``[scores (K), context (C)]``:
the context is permutation-invariant, the scores permutation-equivariant. With preemption
(a ``running_jobs`` observation) the running slots get the same treatment with their own MLPs:
their embeddings are pooled into the context too, and the output is
``[scores (K), running scores (R), context (C)]``.

:class:`SlotMaskablePolicy`, :class:`SlotActorCriticPolicy` use the scores directly as the logits of
the K slots (and a learned function of the context as the WAIT logit), so a job's preference does
not depend on which slot it sits in; the value head reads the whole feature vector. In
``priority`` mode the scores are the means of the Gaussian over the K priorities.
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class DeepSetsExtractor(BaseFeaturesExtractor):
    """Permutation-invariant (context) and -equivariant (slot scores) features of a DLCluster
    ``Dict`` observation.

    Args:
        observation_space: the env's ``Dict`` space (``queue`` K x F, ``cluster``, ``running``,
            ``overflow``).
        embed_dim: size of each job's embedding.
        context_dim: size of the pooled context vector.
    """

    def __init__(self, observation_space: gym.spaces.Dict, embed_dim: int = 32, context_dim: int = 64):
        k, f = observation_space["queue"].shape
        glob = sum(int(observation_space[key].shape[0]) for key in ("cluster", "running", "overflow"))
        run = observation_space.spaces.get("running_jobs")
        r = int(run.shape[0]) if run is not None else 0
        super().__init__(observation_space, features_dim=k + r + context_dim)
        self.window = k
        #: R, the running slots (0 without preemption)
        self.running_window = r
        self.phi = _mlp([f, embed_dim, embed_dim])
        pools = 2 * embed_dim * (2 if run is not None else 1)
        self.context = _mlp([pools + glob, context_dim, context_dim])
        self.score = nn.Sequential(_mlp([embed_dim + context_dim, embed_dim]), nn.Linear(embed_dim, 1))
        if run is not None:
            self.phi_run = _mlp([int(run.shape[1]), embed_dim, embed_dim])
            self.score_run = nn.Sequential(_mlp([embed_dim + context_dim, embed_dim]),
                                           nn.Linear(embed_dim, 1))

    @staticmethod
    def _embed(phi: nn.Module, rows: th.Tensor) -> tuple[th.Tensor, th.Tensor, list[th.Tensor]]:
        """Embeddings of the valid rows (first feature = valid bit), the valid bits, and the
        mean and max pools over the valid rows."""
        valid = rows[..., :1]                                    # (B, N, 1)
        emb = phi(rows) * valid
        count = valid.sum(dim=1)
        mean = emb.sum(dim=1) / count.clamp(min=1.0)
        peak = (emb - (1.0 - valid) * 1e4).max(dim=1).values * (count > 0).float()
        return emb, valid, [mean, peak]

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """``[scores (K), running scores (R, with preemption), context (C)]`` for a batch."""
        emb, valid, pools = self._embed(self.phi, obs["queue"])
        if self.running_window:
            emb_r, valid_r, pools_r = self._embed(self.phi_run, obs["running_jobs"])
            pools += pools_r
        ctx = self.context(th.cat([*pools, obs["cluster"], obs["running"], obs["overflow"]], dim=1))
        pair = th.cat([emb, ctx.unsqueeze(1).expand(-1, self.window, -1)], dim=2)
        out = [self.score(pair).squeeze(-1) * valid.squeeze(-1)]
        if self.running_window:
            pair_r = th.cat([emb_r, ctx.unsqueeze(1).expand(-1, self.running_window, -1)], dim=2)
            out.append(self.score_run(pair_r).squeeze(-1) * valid_r.squeeze(-1))
        return th.cat([*out, ctx], dim=1)


class SlotHead(nn.Module):
    """Action head over ``[scores (K), running scores (R), context]`` features: the K scores are
    the slot logits (or Gaussian means), then a WAIT logit from the context when ``wait`` is True,
    then the R running-slot (preemption) logits: the env's action order."""

    def __init__(self, window: int, context_dim: int, wait: bool, running_window: int = 0) -> None:
        super().__init__()
        self.window = window
        self.running_window = running_window
        self.wait = nn.Linear(context_dim, 1) if wait else None

    def forward(self, latent: th.Tensor) -> th.Tensor:
        """The logits (or means)."""
        k, r = self.window, self.running_window
        scores = latent[:, :k]
        if self.wait is None:
            return scores
        return th.cat([scores, self.wait(latent[:, k + r:]), latent[:, k:k + r]], dim=1)


class _SlotHeadMixin:
    """Replaces the action net by :class:`SlotHead` (the policy MLP must be empty: ``pi=[]``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("features_extractor_class", DeepSetsExtractor)
        kwargs.setdefault("net_arch", {"pi": [], "vf": [64, 64]})
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        ext = self.features_extractor
        if not isinstance(ext, DeepSetsExtractor) or self.mlp_extractor.latent_dim_pi != ext.features_dim:
            raise ValueError("slot policies need DeepSetsExtractor features and net_arch pi=[]")
        wait = isinstance(self.action_space, gym.spaces.Discrete)
        run = getattr(ext, "running_window", 0)  # (models saved before preemption lack it)
        self.action_net = SlotHead(ext.window, ext.features_dim - ext.window - run, wait, run)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


class SlotMaskablePolicy(_SlotHeadMixin, MaskableActorCriticPolicy):
    """MaskablePPO policy with per-slot logits from :class:`DeepSetsExtractor`."""


class SlotActorCriticPolicy(_SlotHeadMixin, ActorCriticPolicy):
    """PPO/A2C policy with per-slot logits (Discrete) or per-slot priority means (Box)."""
