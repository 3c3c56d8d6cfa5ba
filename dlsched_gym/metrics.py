"""Metrics of a simulation: per job and summarized, plus the reward terms the environment pays.

Definitions (all times in seconds):

- JCT = end - submit, for finished jobs;
- queueing delay = first start - submit;
- bounded slowdown = max(JCT / max(duration, tau), 1) with tau = 10 s (Feitelson's bounded
  slowdown; the threshold keeps very short jobs from dominating);
- makespan = last end - first submit;
- GPU utilization = busy GPU-seconds / available GPU-seconds over the run, where a GPU is busy
  while at least one job holds it; available GPU-seconds = total GPUs x makespan unless part of
  the cluster is an inference pool that is lent only part of the time;
- cloud cost (clusters with a cloud pool) = GPU-hours run in the cloud x price per GPU-hour;
- deadline metrics (when jobs have deadlines): fraction of jobs with a deadline that finished by it
  (rejected and unfinished jobs miss), and mean lateness of the late finished ones.

- region demand/supply (clusters with several regions): per region, the time-averaged GPUs
  requested by the queued and running jobs counted there, over the makespan, divided by the
  region's GPUs (``demand_supply[<region>]``), and the largest of them
  (``max_region_demand_supply``, MAST's overload measure). A job counts in the region a ``Route``
  op sent it to, or else, from its first start, in the region of its first GPU.
- finish-time fairness (Themis, Mahajan et al., NSDI'20): rho = JCT / T_id per finished job,
  T_id = duration x max(1, gpus x N / total GPUs), N the time-averaged number of jobs in the
  system (queued or running, the job included) over the job's life; summarized as max and mean.
- JCT prediction error (when a scheduler annotated ``predicted_jct``, as PCS does): mean absolute
  percentage error over finished jobs, and the fraction predicted within 10 %.

``steady_window=(lo, hi)`` restricts the JCT statistics to jobs with row index in ``[lo, hi)``
(Gavel's practice of measuring a steady-state window, excluding warm-up and drain).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlsched_gym.engine import FINISHED, REJECTED, SimResult

#: Bounded-slowdown threshold (s).
SLOWDOWN_TAU = 10.0


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else math.nan


def finish_time_fairness(result: SimResult) -> np.ndarray:
    """Per job, Themis's finish-time fairness ``rho = JCT / T_id`` (see the module docstring); NaN
    for jobs that did not finish."""
    n = len(result.submit_time)
    fin = result.state == FINISHED
    submit = result.submit_time
    end = np.maximum(np.where(np.isfinite(result.end_time), result.end_time, result.now), submit)
    # Jobs in the system over time: +1 at each submit, -1 at each end; its integral by prefix sums.
    times = np.concatenate([submit, end])
    order = np.argsort(times, kind="stable")
    t = times[order]
    level = np.cumsum(np.concatenate([np.ones(n), -np.ones(n)])[order])
    area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(t))])

    def integral(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(t, x, side="right") - 1
        return area[k] + level[k] * (x - t[k])

    life = np.maximum(end - submit, 1e-9)
    contention = (integral(end) - integral(submit)) / life
    t_id = result.duration * np.maximum(1.0, result.num_gpus_req * contention / result.num_gpus)
    return np.where(fin, (end - submit) / t_id, np.nan)


def summarize(result: SimResult, steady_window: tuple[int, int] | None = None) -> dict[str, Any]:
    """Summary metrics of a :class:`~dlsched_gym.engine.SimResult` as a flat dict."""
    finished = result.state == FINISHED
    sel = np.ones(len(finished), dtype=bool)
    if steady_window is not None:
        lo, hi = steady_window
        sel[:] = False
        sel[lo:hi] = True
    fin = finished & sel
    jct = (result.end_time - result.submit_time)[fin]
    qd = (result.start_time - result.submit_time)[fin]
    slow = np.maximum(jct / np.maximum(result.duration[fin], SLOWDOWN_TAU), 1.0)
    ends = result.end_time[finished | (result.state == REJECTED)]
    first = float(result.submit_time.min()) if len(result.submit_time) else 0.0
    last = float(np.nanmax(ends)) if len(ends) else first
    if not (finished.all() or result.state.size == 0):
        last = max(last, result.now)
    makespan = last - first
    out: dict[str, Any] = {
        "jobs": int(len(finished)),
        "jobs_finished": int(finished.sum()),
        "jobs_rejected": int((result.state == REJECTED).sum()),
        "jobs_unfinished": int((~finished & (result.state != REJECTED)).sum()),
        "avg_jct": float(jct.mean()) if len(jct) else math.nan,
        "p50_jct": _pct(jct, 50),
        "p95_jct": _pct(jct, 95),
        "p99_jct": _pct(jct, 99),
        "avg_queueing_delay": float(qd.mean()) if len(qd) else math.nan,
        "p99_queueing_delay": _pct(qd, 99),
        "avg_bounded_slowdown": float(slow.mean()) if len(slow) else math.nan,
        "makespan": makespan,
        "gpu_utilization": (float(result.busy_gpu_seconds / result.available_gpu_seconds)
                            if result.available_gpu_seconds > 0 else 0.0),
        "preemptions": int(result.preemptions.sum()),
        "stalled": bool(result.stalled),
        "truncated": bool(result.truncated),
    }
    rho = finish_time_fairness(result)[fin]
    if len(rho):
        out["max_finish_time_fairness"] = float(rho.max())
        out["avg_finish_time_fairness"] = float(rho.mean())
    if result.forced_preemptions:
        out["forced_preemptions"] = int(result.forced_preemptions)
    if result.cloud_price is not None:
        out["cloud_gpu_hours"] = result.cloud_gpu_seconds / 3600.0
        out["cloud_cost"] = out["cloud_gpu_hours"] * result.cloud_price
    predicted = result.annotations.get("predicted_jct")
    if predicted is not None:
        ok = fin & np.isfinite(predicted)
        if ok.any():
            actual = (result.end_time - result.submit_time)[ok]
            err = np.abs(predicted[ok] - actual) / np.maximum(actual, 1.0)
            out["jct_prediction_mape"] = float(err.mean())
            out["jct_prediction_within_10pct"] = float((err <= 0.10).mean())
    if result.region_demand and makespan > 0:
        ratios = {name: seconds / (gpus * makespan) if gpus else math.inf
                  for name, (seconds, gpus) in result.region_demand.items()}
        out.update({f"demand_supply[{name}]": r for name, r in ratios.items()})
        out["max_region_demand_supply"] = max(ratios.values())
    has_deadline = np.isfinite(result.deadline) & sel
    if has_deadline.any():
        met = has_deadline & finished & (result.end_time <= result.deadline + 1e-9)
        late = has_deadline & finished & (result.end_time > result.deadline + 1e-9)
        out["deadline_jobs"] = int(has_deadline.sum())
        out["deadlines_met"] = float(met.sum() / has_deadline.sum())
        out["avg_lateness"] = float((result.end_time - result.deadline)[late].mean()) if late.any() else 0.0
    return out


def reward_terms(jobs_in_system_seconds: float, busy_gpu_seconds: float, num_gpus: int,
                 scale: float, util_weight: float) -> tuple[float, float]:
    """The environment's two reward terms for an interval, from the engine's integrals over it.

    Returns ``(jct_term, util_term)``: ``-(jobs in system) x dt / scale`` integrated, and
    ``util_weight x (busy GPUs / total GPUs) x dt / scale`` integrated.
    """
    return (-jobs_in_system_seconds / scale,
            util_weight * busy_gpu_seconds / num_gpus / scale)
