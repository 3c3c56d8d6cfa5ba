"""The lendable inference pool for Lyra: a generated diurnal load series and a cluster builder.

Lyra (Li, Xu, Zhu, Liu, Guo and Wang, "Lyra: Elastic Scheduling for Deep Learning Clusters",
EuroSys'23; arXiv 2202.07896 as "Aryl") loans idle servers of an inference cluster to training.
Its abstract states the premise: "inference clusters have low utilization when the traffic load is
low"; the paper drives its simulation with ByteDance's inference-cluster usage, which is not
public. No public inference-occupancy series exists in the bundled data, so this module
*generates* one (a reconstruction, not the paper's data):

Shape (all parameters are choices of this simulator, not numbers from the paper)::

    demand(t) = trough + (peak - trough) * (1 + cos(2 pi (hour(t) - peak_hour) / 24)) / 2
                + N(0, noise)                              (fraction of the pool serving traffic)
    serving(t)  = ceil(clip(demand(t), 0, 1) * num_nodes)   (whole servers)
    lendable(t) = clip(num_nodes - serving(t) - headroom_nodes, 0, num_nodes)

sampled every ``step_seconds`` from t = 0 (hour 0 = midnight) for ``days`` days: one daily
peak at ``peak_hour`` (user-facing traffic in the afternoon) and one trough twelve hours later,
the diurnal pattern the spec suggests (``published-schedulers-b.md`` section 4.6). The series
lists only the times where the lendable count changes (and t = 0); the last value persists after
the horizon (no final reclaim, so the series' end does not preempt anything by itself).
"""

from __future__ import annotations

import math

import numpy as np

from dlsched_gym.cluster import ClusterSpec, Node, make_cluster
from dlsched_gym.errors import ConfigError

DAY = 86400.0


def _check(cond: bool, param: str, want: str, value) -> None:
    if not cond:
        raise ConfigError(f"diurnal_inference_schedule: {param} must be {want}, got {value!r}")


def diurnal_inference_schedule(
    num_nodes: int,
    days: float,
    *,
    trough_demand: float = 0.35,
    peak_demand: float = 0.95,
    peak_hour: float = 15.0,
    step_seconds: float = 3600.0,
    headroom_nodes: int = 1,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[tuple[float, int], ...]:
    """A generated diurnal series of lendable inference servers, ``((time, lendable_nodes), ...)``,
    for ``ClusterSpec(inference_schedule=...)`` (see the module docstring for the formula).

    Args:
        num_nodes: servers in the inference pool (>= 1).
        days: length of the series in days (> 0).
        trough_demand: fraction of the pool serving traffic at the daily trough, in [0, 1].
        peak_demand: fraction at the daily peak, in [trough_demand, 1].
        peak_hour: hour of the day (0-24) of the peak; the trough is 12 hours later.
        step_seconds: sampling period of the series (> 0), e.g. hourly.
        headroom_nodes: servers kept back for bursts (the spec's "headroom", >= 0).
        noise: standard deviation of Gaussian noise added to the demand fraction per step (>= 0).
        seed: seeds the noise.

    Raises:
        ConfigError: a parameter out of range (named).
    """
    _check(isinstance(num_nodes, (int, np.integer)) and num_nodes >= 1, "num_nodes", "an integer >= 1",
           num_nodes)
    _check(days > 0 and math.isfinite(days), "days", "a finite number > 0", days)
    _check(0.0 <= trough_demand <= 1.0, "trough_demand", "in [0, 1]", trough_demand)
    _check(trough_demand <= peak_demand <= 1.0, "peak_demand", "in [trough_demand, 1]", peak_demand)
    _check(0.0 <= peak_hour <= 24.0, "peak_hour", "in [0, 24]", peak_hour)
    _check(step_seconds > 0 and math.isfinite(step_seconds), "step_seconds", "a finite number > 0",
           step_seconds)
    _check(isinstance(headroom_nodes, (int, np.integer)) and headroom_nodes >= 0, "headroom_nodes",
           "an integer >= 0", headroom_nodes)
    _check(noise >= 0 and math.isfinite(noise), "noise", "a finite number >= 0", noise)
    times = np.arange(0.0, days * DAY, step_seconds)
    hours = (times / 3600.0) % 24.0
    demand = trough_demand + (peak_demand - trough_demand) * (
        1.0 + np.cos(2.0 * np.pi * (hours - peak_hour) / 24.0)) / 2.0
    if noise > 0:
        demand = demand + np.random.default_rng(seed).normal(0.0, noise, size=len(times))
    # round before ceil so that 0.35 * 20 = 7.000000000000001 counts as 7 servers, not 8
    serving = np.ceil(np.round(np.clip(demand, 0.0, 1.0) * num_nodes, 9)).astype(np.int64)
    lendable = np.clip(num_nodes - serving - headroom_nodes, 0, num_nodes)
    out = []
    for t, n in zip(times.tolist(), lendable.tolist()):
        if not out or out[-1][1] != n:
            out.append((float(t), int(n)))
    return tuple(out)


def cluster_with_inference_pool(
    training: ClusterSpec | str,
    inference_nodes: int,
    *,
    gpus_per_node: int = 8,
    gpu_type: str | None = None,
    schedule: tuple[tuple[float, int], ...] = (),
    name: str | None = None,
) -> ClusterSpec:
    """A cluster of a training part plus a lendable inference pool (Lyra's two clusters in one
    spec).

    Args:
        training: the training cluster (a spec or a preset/``NxG`` string); its nodes keep
            their pool (normally ``"training"``).
        inference_nodes: servers in the inference pool (>= 1), each of ``gpus_per_node`` GPUs of
            ``gpu_type`` (default: the training part's first GPU type; the spec leaves open whether
            Lyra's inference servers differ in type), on their own rack ``"inference"``.
        schedule: ``((time, lendable_nodes), ...)``, e.g. from
            :func:`diurnal_inference_schedule`; empty means the pool is never lent (Lyra's
            baseline without capacity loaning).
        name: the spec's name (default ``"<training>+inference<N>"``).

    Raises:
        ConfigError: a bad node count or GPU count.
    """
    base = make_cluster(training)
    if not (isinstance(inference_nodes, (int, np.integer)) and inference_nodes >= 1):
        raise ConfigError(f"cluster_with_inference_pool: inference_nodes must be an integer >= 1, "
                          f"got {inference_nodes!r}")
    if not (isinstance(gpus_per_node, (int, np.integer)) and gpus_per_node >= 1):
        raise ConfigError(f"cluster_with_inference_pool: gpus_per_node must be an integer >= 1, "
                          f"got {gpus_per_node!r}")
    kind = gpu_type or base.gpu_types[0]
    pool = tuple(Node(gpus=int(gpus_per_node), gpu_type=kind, rack="inference", pool="inference")
                 for _ in range(int(inference_nodes)))
    return ClusterSpec(nodes=base.nodes + pool, name=name or f"{base.name}+inference{inference_nodes}",
                       gpu_share_limit=base.gpu_share_limit, cloud=base.cloud,
                       inference_schedule=tuple(schedule))
