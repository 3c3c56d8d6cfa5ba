"""Reusable placement strategies: which free GPUs a gang of ``n`` GPUs gets.

Every strategy answers ``place(n, node_free, gpu_load, spec, job) -> gpu ids | None`` on a given
free-GPU state (the engine's or a :class:`~dlsched_gym.scheduler.Plan`'s) without changing it.
When the job may use only some nodes (its GPU type, its region, a scheduler's choice), callers zero
``node_free`` elsewhere and also pass that node mask as ``allowed=``, so that a strategy can tell a
disallowed node from a full one.
Registered by name in ``PLACEMENTS``; :func:`make_placement` builds one.

- ``consolidated`` (default): best fit. A gang that fits in one node goes to the node with the
  fewest free GPUs that can hold it; a larger gang takes nodes with the most free GPUs first, so it
  spans as few nodes as possible. A gang that fits in one node the job may use is never split
  across nodes (it waits for one to free up); a gang larger than every node it may use spans.
- ``first-fit``: free GPUs in node order, spanning nodes freely.
- ``spread``: one GPU per node round-robin, nodes with most free GPUs first.
- ``random``: uniformly random free GPUs (seeded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dlsched_gym.errors import ConfigError

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec


class Placement(Protocol):
    """A placement strategy."""

    name: str

    def place(self, n: int, node_free: np.ndarray, gpu_load: np.ndarray, spec: ClusterSpec,
              job: int, allowed: np.ndarray | None = None) -> np.ndarray | None:
        """GPU ids for a gang of ``n``, or None if it does not fit. ``allowed`` (bool per node,
        None = every node) names the nodes the job may use; ``node_free`` is already zero on the
        others."""


def free_gpus_on(node: int, k: int, gpu_load: np.ndarray, spec: ClusterSpec) -> np.ndarray:
    """The first ``k`` free GPU ids of ``node``."""
    lo = int(spec.node_first_gpu[node])
    out = []
    # Nodes hold a handful of GPUs: a Python scan beats numpy's per-call overhead several-fold.
    for i, load in enumerate(gpu_load[lo:spec.node_first_gpu[node + 1]].tolist()):
        if load == 0:
            out.append(lo + i)
            if len(out) == k:
                break
    return np.array(out, dtype=np.int64)


def take_from_nodes(order: np.ndarray, n: int, node_free: np.ndarray, gpu_load: np.ndarray,
                    spec: ClusterSpec) -> np.ndarray | None:
    """Take free GPUs from nodes in ``order`` until ``n`` are collected (None if too few)."""
    parts, need = [], n
    for node in order:
        k = min(int(node_free[node]), need)
        if k <= 0:
            continue
        parts.append(free_gpus_on(int(node), k, gpu_load, spec))
        need -= k
        if need == 0:
            return np.concatenate(parts)
    return None


class Consolidated:
    """Best-fit consolidation (see module docstring)."""

    name = "consolidated"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        largest = spec.max_node_gpus if allowed is None else int(spec.node_gpus[allowed].max(initial=0))
        if n <= largest:
            slack = node_free - n
            if slack.dtype == np.int64:
                # Hot path (every start): read as unsigned, the negative slack of a node too small
                # for the gang wraps to a huge value, so one argmin finds the first node with the
                # least non-negative slack without building a mask and a masked copy.
                node = int(slack.view(np.uint64).argmin())
            else:  # a caller's array of another dtype: mask the too-small nodes explicitly
                node = int(np.where(slack >= 0, slack, np.inf).argmin())
            if node_free[node] < n:
                return None
            return free_gpus_on(node, n, gpu_load, spec)
        order = np.argsort(-node_free, kind="stable")
        return take_from_nodes(order, n, node_free, gpu_load, spec)


class FirstFit:
    """Free GPUs in node order."""

    name = "first-fit"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        order = np.flatnonzero(node_free > 0)
        return take_from_nodes(order, n, node_free, gpu_load, spec)


class Spread:
    """One GPU per node, round-robin over the nodes with the most free GPUs."""

    name = "spread"

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        if int(node_free.sum()) < n:
            return None
        remaining = node_free.astype(np.int64).copy()
        take = np.zeros_like(remaining)
        order = np.argsort(-remaining, kind="stable")
        need = n
        while need:
            for node in order:
                if remaining[node] > 0:
                    take[node] += 1
                    remaining[node] -= 1
                    need -= 1
                    if need == 0:
                        break
        return np.concatenate([free_gpus_on(int(v), int(take[v]), gpu_load, spec)
                               for v in np.flatnonzero(take)])


class RandomPlacement:
    """Uniformly random free GPUs, from a seeded generator."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def place(self, n, node_free, gpu_load, spec, job, allowed=None):
        free = np.flatnonzero((gpu_load == 0) & (node_free[spec.gpu_node] > 0))
        if len(free) < n:
            return None
        return np.sort(self.rng.choice(free, size=n, replace=False))


#: Registry: name -> factory taking ``seed``.
PLACEMENTS: dict[str, Callable[[int], Placement]] = {
    "consolidated": lambda seed: Consolidated(),
    "first-fit": lambda seed: FirstFit(),
    "spread": lambda seed: Spread(),
    "random": lambda seed: RandomPlacement(seed),
}


def make_placement(name: str | Placement, seed: int = 0) -> Placement:
    """A placement strategy by name (or pass one through)."""
    if not isinstance(name, str):
        return name
    try:
        return PLACEMENTS[name](seed)
    except KeyError:
        raise ConfigError(
            f"unknown placement {name!r}; expected one of {sorted(PLACEMENTS)}"
        ) from None
