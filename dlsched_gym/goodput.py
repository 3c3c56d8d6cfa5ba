"""Pollux's goodput model: system throughput x statistical efficiency (a perf-model feature).

Qiao, Choe, Subramanya, Neiswanger, Ho, Zhang, Ganger and Xing, "Pollux: Co-adaptive Cluster
Scheduling for Goodput-Optimized Deep Learning", OSDI 2021 (the model forms; the numbers
below are fitted by :func:`fit_profiles` to the Pollux artifact's measured profiles,
``petuum/adaptdl@c793c7089bd307462686339d29707925c461f9a9`` (branch ``osdi21-artifact``)
``simulator/traces/<app>/{placements,scalability,validation-*}.csv``, bundled in the shared traces
folder as ``pollux/pollux_app_profiles.tar.gz``; measured on AWS g4dn, 4 x T4 per node).

For a job of application ``app`` on ``K`` GPUs spread over ``N`` nodes, with per-GPU batch ``m``
and ``s`` gradient-accumulation steps (total batch ``M = K m (s + 1)``):

- compute time per micro-step ``T_grad(m) = alpha_grad + beta_grad m``;
- synchronisation ``T_sync = 0`` for ``K = 1``, ``alpha_local + beta_local (K - 2)`` on one node,
  ``alpha_node + beta_node (K - 2)`` across nodes;
- iteration time ``T_iter = s T_grad + (T_grad^gamma + T_sync^gamma)^(1/gamma)`` (``gamma >= 1``
  models the overlap of back-propagation and synchronisation);
- throughput ``M / T_iter`` samples per second;
- statistical efficiency ``E(M) = (phi + M0) / (phi + M)``, ``phi`` the gradient noise scale and
  ``M0`` the application's initial (smallest) batch size: a sample at batch ``M`` makes
  ``E(M)`` times the progress of a sample at ``M0``;
- goodput ``= throughput x E(M)``, in ``M0``-equivalent samples per second.

A *co-adaptive* job (Pollux/AdaptDL) picks the ``(M, s)`` that maximises goodput for whatever
allocation it gets (:func:`best_goodput`); a *fixed* job keeps its user-given batch and uses the
fewest accumulation steps that fit GPU memory (:func:`fixed_goodput`).

Simplification (documented deviation): the paper re-measures ``phi_t`` as training proceeds
(it grows, so later phases use larger batches and more GPUs). The engine asks its perf model for a
rate only when a job's allocation changes, so a rate cannot drift with progress; ``phi`` here is
one number per application, the median over training of ``M0 * grad_var / grad_sqr`` from the
artifact's validation curve at ``M0`` (``grad_var`` is the variance of the gradient at batch
``M0``, so ``M0 * grad_var`` estimates the per-sample noise trace of the paper's ``phi``).

:class:`GoodputModel` plugs this model into the engine as a perf model (pass the object to
``Engine(perf=...)``): the work unit stays "seconds on the requested allocation", the requested
allocation being the job's ``num_gpus`` packed on as few nodes as possible with its trace
``batch_size`` (fixed), and a job's rate is its goodput on the GPUs it holds over that. To give
a workload Pollux's own amounts of work, set each job's duration to
``params(app).target_samples / fixed_goodput(app, num_gpus, packed_nodes(...), batch_size)`` (as
``benchmarks/reproduce/pollux.py`` does). It is not (yet) in ``perf.PERF_MODELS``, so it is passed
as an object rather than by name.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlsched_gym.errors import ConfigError

if TYPE_CHECKING:
    from dlsched_gym.cluster import ClusterSpec
    from dlsched_gym.engine import JobTable


@dataclasses.dataclass(frozen=True)
class AppParams:
    """Fitted goodput parameters of one Pollux application (see the module docstring).

    Attributes:
        alpha_grad, beta_grad: ``T_grad(m) = alpha_grad + beta_grad m`` seconds.
        alpha_local, beta_local: synchronisation within one node, ``K >= 2``.
        alpha_node, beta_node: synchronisation across nodes.
        gamma: overlap exponent (>= 1).
        phi: gradient noise scale (samples), median over training.
        init_batch: ``M0``, the smallest batch of the artifact's validation runs.
        max_batch: largest total batch the artifact validated.
        max_local_batch: largest per-GPU batch profiled (GPU memory limit).
        target_samples: ``M0``-equivalent samples to converge (``progress x M0`` at the end of the
            artifact's validation run at ``M0``).
    """

    alpha_grad: float
    beta_grad: float
    alpha_local: float
    beta_local: float
    alpha_node: float
    beta_node: float
    gamma: float
    phi: float
    init_batch: int
    max_batch: int
    max_local_batch: int
    target_samples: float


#: Parameters fitted by :func:`fit_profiles` to the Pollux artifact profiles (commit above).
APPS: dict[str, AppParams] = {
    "bert": AppParams(alpha_grad=0.226731, beta_grad=0.057832, alpha_local=0.055499,
                      beta_local=0.022009, alpha_node=0.929827, beta_node=0.007233, gamma=1.1,
                      phi=773.631705, init_batch=12, max_batch=384, max_local_batch=12,
                      target_samples=177288.0),
    "cifar10": AppParams(alpha_grad=0.017747, beta_grad=0.000664, alpha_local=0.00534,
                         beta_local=0.011834, alpha_node=0.053006, beta_node=0.002304, gamma=1.0,
                         phi=4890.248575, init_batch=128, max_batch=4096, max_local_batch=1024,
                         target_samples=5000064.0),
    "deepspeech2": AppParams(alpha_grad=0.092809, beta_grad=0.029052, alpha_local=0.056448,
                             beta_local=0.019299, alpha_node=0.275166, beta_node=0.006011,
                             gamma=1.0, phi=21039.883851, init_batch=20, max_batch=640,
                             max_local_batch=80, target_samples=570720.0),
    "imagenet": AppParams(alpha_grad=0.079651, beta_grad=0.004208, alpha_local=0.004346,
                          beta_local=0.000627, alpha_node=0.086727, beta_node=0.004026, gamma=1.0,
                          phi=11388.224901, init_batch=200, max_batch=12800, max_local_batch=200,
                          target_samples=115305200.0),
    "ncf": AppParams(alpha_grad=0.007649, beta_grad=0.0, alpha_local=0.003519, beta_local=0.000671,
                     alpha_node=0.014461, beta_node=0.00059, gamma=1.0, phi=12988628.126723,
                     init_batch=256, max_batch=32768, max_local_batch=32768,
                     target_samples=49708544.0),
    "yolov3": AppParams(alpha_grad=0.218869, beta_grad=0.024304, alpha_local=0.019723,
                        beta_local=0.031987, alpha_node=0.703666, beta_node=0.00817, gamma=1.0,
                        phi=553.958578, init_batch=8, max_batch=512, max_local_batch=16,
                        target_samples=827552.0),
}

#: Our canonical model names (:func:`dlsched_gym.perf.canonical_model`) of Pollux applications.
_APP_ALIASES = {"resnet18": "cifar10", "resnet50": "imagenet"}


App = str | AppParams


def app_name(model: str) -> str | None:
    """The Pollux application for a model name (``cifar10``, ``imagenet`` or their canonical
    names ``resnet18``/``resnet50``, ``bert``, ``deepspeech2``, ``ncf``, ``yolov3``; any case),
    or None when the model has no Pollux profile."""
    key = str(model).strip().lower()
    key = _APP_ALIASES.get(key, key)
    return key if key in APPS else None


def params(app: App) -> AppParams:
    """The parameters of ``app``: an :class:`AppParams` is returned as is, a name is looked up in
    :data:`APPS` (through :func:`app_name`).

    Raises:
        ConfigError: the model has no Pollux profile.
    """
    if isinstance(app, AppParams):
        return app
    name = app_name(app)
    if name is None:
        raise ConfigError(f"goodput: no Pollux profile for model {app!r}; expected one of "
                          f"{sorted(APPS)} (or {sorted(_APP_ALIASES)}), or AppParams")
    return APPS[name]


def sync_time(p: AppParams, gpus: int, nodes: int) -> float:
    """Seconds of gradient synchronisation per iteration on ``gpus`` GPUs over ``nodes`` nodes."""
    if gpus <= 1:
        return 0.0
    if nodes <= 1:
        return p.alpha_local + p.beta_local * (gpus - 2)
    return p.alpha_node + p.beta_node * (gpus - 2)


def iteration_time(p: AppParams, local_batch, accum_steps, gpus: int, nodes: int):
    """Seconds per iteration (``accum_steps`` extra micro-steps, then one synchronised step);
    broadcasts over numpy arrays of ``local_batch`` and ``accum_steps``."""
    t_grad = p.alpha_grad + p.beta_grad * np.asarray(local_batch, dtype=float)
    t_sync = sync_time(p, gpus, nodes)
    g = p.gamma
    return accum_steps * t_grad + (t_grad ** g + t_sync ** g) ** (1.0 / g)


def efficiency(p: AppParams, batch, phi: float | None = None):
    """Statistical efficiency ``(phi + M0) / (phi + M)`` of total batch ``batch`` (numpy-aware)."""
    f = p.phi if phi is None else phi
    return (f + p.init_batch) / (f + np.asarray(batch, dtype=float))


def _check_shape(gpus: int, nodes: int) -> None:
    if not (int(gpus) >= 1 and 1 <= int(nodes) <= int(gpus)):
        raise ConfigError(f"goodput: need gpus >= 1 and 1 <= nodes <= gpus, got gpus={gpus!r}, "
                          f"nodes={nodes!r}")


def fixed_goodput(app: App, gpus: int, nodes: int, batch: int) -> float:
    """Goodput (``M0``-equivalent samples/s) of a job that keeps total batch ``batch`` on ``gpus``
    GPUs over ``nodes`` nodes, with the fewest accumulation steps that fit GPU memory."""
    _check_shape(gpus, nodes)
    if not batch >= 1:
        raise ConfigError(f"goodput: batch must be >= 1, got {batch!r}")
    p = params(app)
    steps = max(math.ceil(batch / (gpus * p.max_local_batch)), 1)
    local = batch / (gpus * steps)
    t = float(iteration_time(p, local, steps - 1, gpus, nodes))
    return batch / t * float(efficiency(p, batch))


#: Per-GPU batches per decade searched by :func:`best_goodput` (plus ``max_local_batch``).
_GRID_PER_DECADE = 24
#: Most gradient-accumulation steps :func:`best_goodput` considers.
_MAX_ACCUM = 16


def best_goodput(app: App, gpus: int, nodes: int, phi: float | None = None) -> tuple[float, float]:
    """The largest goodput of a co-adaptive job on ``gpus`` GPUs over ``nodes`` nodes and the
    total batch that achieves it: ``(goodput, batch)``.

    Candidates: per-GPU batches ``m`` on a log grid over ``[1, max_local_batch]`` (24 per decade,
    ``max_local_batch`` included) with ``0 .. 15`` accumulation steps ``s``, keeping the total
    ``M = gpus m (s + 1)`` within ``[M0, max_batch]``, plus ``M = M0`` and ``M = max_batch`` for
    every ``s`` where they fit ``1 <= m <= max_local_batch``. ``phi`` overrides the gradient noise
    scale. Returns ``(0.0, 0.0)`` when no candidate fits (more GPUs than ``max_batch`` samples).
    """
    _check_shape(gpus, nodes)
    p = params(app)
    return _best(p, int(gpus), int(nodes), float(p.phi if phi is None else phi))


@functools.lru_cache(maxsize=65536)
def _best(p: AppParams, gpus: int, nodes: int, phi: float) -> tuple[float, float]:
    points = max(int(math.log10(max(p.max_local_batch, 1)) * _GRID_PER_DECADE), 1) + 1
    local = np.unique(np.append(np.geomspace(1.0, p.max_local_batch, points), p.max_local_batch))
    steps = np.arange(_MAX_ACCUM, dtype=float)[:, None]
    total = gpus * local[None, :] * (steps + 1)
    edges = np.array([p.init_batch, p.max_batch], dtype=float)[None, :]
    total = np.concatenate([total, np.broadcast_to(edges, (len(steps), 2))], axis=1)
    local = total / (gpus * (steps + 1))
    ok = ((local >= 1.0) & (local <= p.max_local_batch * (1 + 1e-12))
          & (total >= p.init_batch * (1 - 1e-12)) & (total <= p.max_batch * (1 + 1e-12)))
    if not ok.any():
        return 0.0, 0.0
    good = total / iteration_time(p, local, steps, gpus, nodes) * efficiency(p, total, phi)
    good = np.where(ok, good, -np.inf)
    i, k = np.unravel_index(int(np.argmax(good)), good.shape)
    return float(good[i, k]), float(total[i, k])


def packed_nodes(gpus: int, node_size: int) -> int:
    """Nodes a gang of ``gpus`` GPUs spans when packed on nodes of ``node_size`` GPUs."""
    return max(math.ceil(gpus / max(node_size, 1)), 1)


class GoodputModel:
    """Perf model where a job's rate is its goodput (Pollux's model) relative to its requested
    configuration.

    Rate of job ``j`` on ``gpus`` = goodput on ``(len(gpus), nodes spanned)`` over
    :func:`fixed_goodput` at its ``num_gpus`` packed on the fewest nodes with its ``batch_size``.
    With ``adaptive=True`` the numerator is :func:`best_goodput` (the job tunes its batch to the
    allocation, as under AdaptDL); with ``adaptive=False`` it is :func:`fixed_goodput` with the
    trace batch (a job of a non-adaptive scheduler). GPU types are ignored (the profiles are T4
    measurements). A shared GPU divides the rate by the number of jobs on it (time slicing; no
    measurement).

    Args:
        adaptive: jobs pick the goodput-optimal batch for each allocation.
        profiles: extra or replacement profiles, model name -> :class:`AppParams` (names not
            given here are looked up in :data:`APPS`).
    """

    name = "goodput"

    def __init__(self, *, adaptive: bool = True,
                 profiles: Mapping[str, AppParams] | None = None) -> None:
        self.adaptive = bool(adaptive)
        self.profiles = dict(profiles or {})
        bad = sorted(k for k, v in self.profiles.items() if not isinstance(v, AppParams))
        if bad:
            raise ConfigError(f"perf model 'goodput': profiles {bad} must be AppParams")

    def reset(self, spec: ClusterSpec, jobs: JobTable, rng: np.random.Generator) -> None:
        """Check every job's model has a profile; compute each job's requested goodput."""
        names = [jobs.names["model"][c] for c in np.asarray(jobs.model).tolist()]
        unknown = sorted({m for m in names if m not in self.profiles and app_name(m) is None})
        if unknown:
            raise ConfigError(f"perf model 'goodput': model(s) {unknown} have no Pollux profile; "
                              f"expected one of {sorted(APPS)} or a name in profiles")
        self._app = [self.profiles.get(m) or params(m) for m in names]
        node_size = spec.max_node_gpus
        self._batch = [int(b) for b in np.asarray(jobs.batch_size).tolist()]
        self._base = [fixed_goodput(a, int(n), packed_nodes(int(n), node_size), b)
                      for a, n, b in zip(self._app, np.asarray(jobs.num_gpus).tolist(), self._batch)]
        self._gpu_node = spec.gpu_node_list

    def rate(self, job: int, gpus: np.ndarray, sharers: int) -> float:
        """Goodput on ``gpus`` over the requested goodput, divided by ``sharers``."""
        g = gpus.tolist()
        nodes = len({self._gpu_node[x] for x in g})
        if self.adaptive:
            good = best_goodput(self._app[job], len(g), nodes)[0]
        else:
            good = fixed_goodput(self._app[job], len(g), nodes, self._batch[job])
        return good / self._base[job] / max(int(sharers), 1)


def _placement_shape(code: str) -> tuple[int, int]:
    digits = [int(c) for c in str(code)]
    return sum(digits), len(digits)


def _lstsq(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    a = np.stack([np.ones_like(x), x], axis=1)
    (c0, c1), *_ = np.linalg.lstsq(a, y, rcond=None)
    return max(float(c0), 0.0), max(float(c1), 0.0)


def fit_profiles(path: str | Path) -> dict[str, AppParams]:
    """Fit :class:`AppParams` for every application in the Pollux artifact's profile bundle
    (``pollux/pollux_app_profiles.tar.gz`` of the shared traces folder).

    - ``alpha_grad, beta_grad``: least squares of ``step_time`` on ``local_bsz`` over the
      single-GPU rows of ``placements.csv``;
    - ``alpha/beta_local`` and ``alpha/beta_node``: least squares of ``sync_time`` on ``K - 2`` over
      the multi-GPU rows of ``placements.csv`` and ``scalability.csv`` on one node / across nodes;
    - ``gamma``: the value in ``1.0, 1.1, ..., 10.0`` with the least squared relative error of
      ``step_time`` over the multi-GPU rows, given the measured ``sync_time``;
    - ``phi``, ``init_batch``, ``max_batch``, ``target_samples``: from the ``validation-<M>.csv``
      files (smallest and largest ``M``; median of ``M0 grad_var / grad_sqr``; final progress).
    """
    import pandas as pd  # only for reading the raw csv files

    bundle = tarfile.open(Path(path), "r:gz")
    files: dict[str, dict[str, pd.DataFrame]] = {}
    for member in bundle.getmembers():
        if not member.isfile() or not member.name.endswith(".csv"):
            continue
        parts = member.name.split("/")
        files.setdefault(parts[-2], {})[parts[-1]] = pd.read_csv(bundle.extractfile(member))
    out: dict[str, AppParams] = {}
    for app, by_name in sorted(files.items()):
        place = by_name["placements.csv"]
        shape = [_placement_shape(c) for c in place["placement"]]
        rows = pd.DataFrame({"k": [s[0] for s in shape], "n": [s[1] for s in shape],
                             "m": place["local_bsz"], "step": place["step_time"],
                             "sync": place["sync_time"]})
        scal = by_name["scalability.csv"]
        rows = pd.concat([rows, pd.DataFrame({"k": scal["num_replicas"], "n": scal["num_nodes"],
                                              "m": scal["local_bsz"], "step": scal["step_time"],
                                              "sync": scal["sync_time"]})], ignore_index=True)
        single = rows[rows.k == 1]
        a_g, b_g = _lstsq(single.m.to_numpy(float), single.step.to_numpy(float))
        local = rows[(rows.k > 1) & (rows.n == 1)]
        cross = rows[rows.n > 1]
        a_l, b_l = _lstsq(local.k.to_numpy(float) - 2, local.sync.to_numpy(float))
        a_n, b_n = _lstsq(cross.k.to_numpy(float) - 2, cross.sync.to_numpy(float))
        multi = rows[rows.k > 1]
        t_grad = a_g + b_g * multi.m.to_numpy(float)
        t_sync = multi.sync.to_numpy(float)
        step = multi.step.to_numpy(float)
        gammas = np.round(np.arange(1.0, 10.05, 0.1), 1)
        errs = [float(np.mean(((t_grad ** g + t_sync ** g) ** (1 / g) / step - 1.0) ** 2))
                for g in gammas]
        gamma = float(gammas[int(np.argmin(errs))])
        vals = {int(name[len("validation-"):-4]): f for name, f in by_name.items()
                if name.startswith("validation-")}
        m0 = min(vals)
        v = vals[m0]
        ratio = (v["grad_var"] / v["grad_sqr"]).replace([np.inf, -np.inf], np.nan).dropna()
        out[app] = AppParams(
            alpha_grad=a_g, beta_grad=b_g, alpha_local=a_l, beta_local=b_l, alpha_node=a_n,
            beta_node=b_n, gamma=gamma, phi=float(m0 * ratio.median()), init_batch=m0,
            max_batch=max(vals), max_local_batch=int(place["local_bsz"].max()),
            target_samples=float(v["progress"].max() * m0))
    return out
