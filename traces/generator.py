"""Synthetic workloads: seeded, vectorized, optionally fitted to a real trace.

:func:`generate` draws ``num_jobs`` jobs with

- arrivals: a Poisson process, or a *diurnal* non-homogeneous Poisson process whose rate follows a
  24-hour profile (sampled exactly by inverting the integrated rate, no thinning);
- GPU counts from a discrete mix;
- durations from a lognormal per GPU count (heavy-tailed; larger jobs may run longer), optionally
  capped;
- an optional status mix.

Parameters not given are fitted from ``like`` (a :class:`~dlsched_gym.workload.Workload`) by
:func:`fit`; every parameter used, fitted or given, is recorded in ``attrs["generator"]``. With
``target_utilization`` and ``cluster_gpus`` the arrival rate is set so that the offered load
(GPU-seconds submitted per second / GPUs) equals the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import Workload, normalize

#: GPU counts with fewer jobs than this share the pooled lognormal fit.
MIN_JOBS_PER_FIT = 30
DAY = 86400.0


def fit(workload: Workload) -> dict[str, Any]:
    """Fit the generator's parameters to ``workload``.

    Returns a JSON-able dict: ``rate_per_hour`` (jobs / span), ``gpu_mix`` ({GPUs: share}),
    ``duration_lognormal`` ({GPUs: [mu, sigma]} of log seconds, maximum-likelihood; counts with fewer
    than ``MIN_JOBS_PER_FIT`` jobs get the pooled fit, under key ``"pooled"`` too), ``hourly_profile``
    (24 relative rates of submissions by hour since the trace's start, mean 1), ``max_duration`` and
    ``status_mix`` (where the trace has statuses).
    """
    t = workload.table
    if len(t) < 2:
        raise ConfigError(f"cannot fit a generator to {workload.name!r}: it has {len(t)} job(s), need >= 2")
    span = max(workload.span_seconds, 1.0)
    gpus = t["num_gpus"].to_numpy()
    logd = np.log(t["duration"].to_numpy(dtype=float))
    pooled = [float(logd.mean()), float(logd.std())]
    counts = pd.Series(gpus).value_counts().sort_index()
    by_gpus: dict[str, list[float]] = {"pooled": pooled}
    for g, c in counts.items():
        sel = logd[gpus == g]
        by_gpus[str(int(g))] = [float(sel.mean()), float(sel.std())] if c >= MIN_JOBS_PER_FIT else pooled
    hours = ((t["submit_time"].to_numpy() % DAY) // 3600).astype(int)
    hist = np.bincount(hours, minlength=24).astype(float) + 1.0  # +1: no hour gets rate 0
    params: dict[str, Any] = {
        "fitted_to": workload.name,
        "rate_per_hour": float((len(t) - 1) / span * 3600),
        "gpu_mix": {str(int(g)): float(c / len(t)) for g, c in counts.items()},
        "duration_lognormal": by_gpus,
        "hourly_profile": (hist / hist.mean()).tolist(),
        "max_duration": float(t["duration"].max()),
    }
    status = t["status"][t["status"] != ""]
    if len(status) == len(t):
        params["status_mix"] = {str(k): float(v) for k, v in status.value_counts(normalize=True).items()}
    return params


def diurnal_arrivals(
    rng: np.random.Generator, n: int, rate_per_s: float, hourly_profile: Sequence[float] | None
) -> np.ndarray:
    """``n`` sorted arrival times (s) of a Poisson process with mean rate ``rate_per_s``.

    With ``hourly_profile`` (24 positive weights; hour 0 starts at t=0) the rate in hour h of every
    day is ``rate_per_s * w[h] / mean(w)``; times are drawn by mapping unit-rate event times through
    the inverse of the integrated rate.
    """
    events = np.cumsum(rng.exponential(1.0, size=n))  # unit-rate process
    if hourly_profile is None:
        return events / rate_per_s
    w = np.asarray(hourly_profile, dtype=float)
    if w.shape != (24,) or not np.all(w > 0):
        raise ConfigError(f"hourly_profile: expected 24 positive weights, got {hourly_profile!r}")
    hour_mass = rate_per_s * 3600 * w / w.mean()  # expected events per hour of the day
    bounds = np.concatenate([[0.0], np.cumsum(hour_mass)])
    per_day = bounds[-1]
    day, rest = np.divmod(events, per_day)
    hour = np.clip(np.searchsorted(bounds, rest, side="right") - 1, 0, 23)
    return day * DAY + hour * 3600.0 + (rest - bounds[hour]) / (hour_mass[hour] / 3600.0)


def _mix(name: str, mix: Mapping[Any, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = list(mix)
    probs = np.array([mix[k] for k in keys], dtype=float)
    if not len(keys) or np.any(probs < 0) or not probs.sum() > 0:
        raise ConfigError(f"{name}: expected a mapping value -> non-negative share, got {dict(mix)!r}")
    return np.array(keys), probs / probs.sum()


def generate(
    num_jobs: int,
    *,
    like: Workload | None = None,
    arrivals: str = "poisson",
    rate_per_hour: float | None = None,
    gpu_mix: Mapping[int, float] | None = None,
    duration_lognormal: Mapping[Any, Sequence[float]] | None = None,
    max_duration: float | None = None,
    hourly_profile: Sequence[float] | None = None,
    status_mix: Mapping[str, float] | None = None,
    target_utilization: float | None = None,
    cluster_gpus: int | None = None,
    seed: int = 0,
    name: str = "generated",
) -> Workload:
    """Draw a synthetic workload (see the module docstring).

    Args:
        num_jobs: jobs to draw (>= 1).
        like: a workload to fit every parameter not given explicitly (see :func:`fit`).
        arrivals: ``"poisson"`` (constant rate) or ``"diurnal"`` (rate follows ``hourly_profile``).
        rate_per_hour: mean arrival rate; exclusive with ``target_utilization``.
        gpu_mix: {GPUs: share}.
        duration_lognormal: {GPUs: (mu, sigma)} of natural-log seconds; key ``"pooled"`` (or a single
            entry under it) serves GPU counts without their own entry.
        max_duration: cap on durations (s), None for none. Fitted: the longest job of ``like``.
        hourly_profile: 24 relative rates for ``"diurnal"``.
        status_mix: {status: share}; omitted -> status "".
        target_utilization: offered load to aim for, as a fraction of ``cluster_gpus``.
        cluster_gpus: GPUs of the cluster the load is scaled to.
        seed: the random seed; the same arguments and seed give the identical table.
        name: the workload's name.

    Raises:
        ConfigError: a missing or inconsistent parameter.
    """
    if not isinstance(num_jobs, (int, np.integer)) or num_jobs < 1:
        raise ConfigError(f"num_jobs: expected an integer >= 1, got {num_jobs!r}")
    if arrivals not in ("poisson", "diurnal"):
        raise ConfigError(f"arrivals: expected 'poisson' or 'diurnal', got {arrivals!r}")
    if (target_utilization is None) != (cluster_gpus is None):
        raise ConfigError("target_utilization and cluster_gpus go together: give both or neither")
    if target_utilization is not None and rate_per_hour is not None:
        raise ConfigError("give rate_per_hour or target_utilization (with cluster_gpus), not both")
    fitted = fit(like) if like is not None else {}
    params: dict[str, Any] = {
        "seed": seed,
        "num_jobs": int(num_jobs),
        "arrivals": arrivals,
        "gpu_mix": {str(k): v for k, v in (gpu_mix or fitted.get("gpu_mix", {})).items()},
        "duration_lognormal": {
            str(k): list(v) for k, v in (duration_lognormal or fitted.get("duration_lognormal", {})).items()
        },
        "max_duration": max_duration if max_duration is not None else fitted.get("max_duration"),
    }
    if like is not None:
        params["fitted_to"] = like.name
    for key in ("gpu_mix", "duration_lognormal"):
        if not params[key]:
            raise ConfigError(f"{key}: not given and no workload to fit it from (pass like=)")
    if arrivals == "diurnal":
        profile = hourly_profile if hourly_profile is not None else fitted.get("hourly_profile")
        if profile is None:
            raise ConfigError("arrivals='diurnal' needs hourly_profile= or like=")
        params["hourly_profile"] = [float(x) for x in profile]
    smix = status_mix if status_mix is not None else fitted.get("status_mix")
    rng = np.random.default_rng(seed)

    values, probs = _mix("gpu_mix", {int(k): v for k, v in params["gpu_mix"].items()})
    gpus = rng.choice(values.astype(np.int64), p=probs, size=num_jobs)
    mu = np.empty(num_jobs)
    sigma = np.empty(num_jobs)
    table = params["duration_lognormal"]
    for g in np.unique(gpus):
        key = str(int(g)) if str(int(g)) in table else "pooled"
        if key not in table:
            raise ConfigError(f"duration_lognormal: no entry for {int(g)} GPUs and no 'pooled' entry")
        m, s = table[key]
        sel = gpus == g
        mu[sel], sigma[sel] = m, s
    duration = np.exp(mu + sigma * rng.standard_normal(num_jobs))
    if params["max_duration"] is not None:
        duration = np.minimum(duration, float(params["max_duration"]))
    status = ""
    if smix:
        skeys, sprobs = _mix("status_mix", smix)
        status = rng.choice(skeys.astype(str), p=sprobs, size=num_jobs)
        params["status_mix"] = {str(k): float(p) for k, p in zip(skeys, sprobs, strict=True)}

    if target_utilization is not None:
        if not (target_utilization > 0 and cluster_gpus > 0):
            raise ConfigError(
                f"target_utilization and cluster_gpus must be > 0, got "
                f"{target_utilization!r}, {cluster_gpus!r}"
            )
        rate_per_s = target_utilization * cluster_gpus / float(np.mean(gpus * duration))
        params.update(target_utilization=target_utilization, cluster_gpus=cluster_gpus)
    else:
        rate = rate_per_hour if rate_per_hour is not None else fitted.get("rate_per_hour")
        if rate is None or not rate > 0:
            raise ConfigError(
                "rate_per_hour: give a positive rate, target_utilization with cluster_gpus, or like="
            )
        rate_per_s = rate / 3600.0
    params["rate_per_hour"] = rate_per_s * 3600.0
    submit = diurnal_arrivals(rng, num_jobs, rate_per_s, params.get("hourly_profile"))
    submit -= submit[0]
    frame = pd.DataFrame(
        {
            "job_id": np.arange(num_jobs).astype(str),
            "submit_time": submit,
            "duration": duration,
            "num_gpus": gpus,
            "status": status,
        }
    )
    attrs = {
        "generated": True,
        "generator": params,
        "augmented": {
            c: "drawn by dlsched_gym.traces.generate (see attrs['generator'])"
            for c in ("submit_time", "duration", "num_gpus", "status")
        },
    }
    return normalize(frame, name=name, source="synthetic (dlsched_gym.traces.generate)", attrs=attrs)
