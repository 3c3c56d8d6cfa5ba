"""GENERATED Helios-like workloads, calibrated to published Helios statistics.

The per-job Helios logs (HeliosData ``data.zip``) are not bundled, so ``helios-<cluster>-synth``
(venus, earth, saturn, uranus) are **synthetic**: drawn with a fixed seed from distributions that
reproduce the published per-cluster statistics. They are not the Helios trace; use
``download("helios")`` and the ``helios`` reader for the real one.

Calibration targets (every one is recorded in ``attrs["calibration"]``):

- job count and window: ``gpu_job_num`` GPU jobs over the 181 days of 2020-04-01..2020-09-28
  (``helios_cluster_summary.csv``), scaled by ``fraction`` (default 0.05): the workload keeps the
  real arrival rate over ``fraction x 181`` days, so the load on the ``helios-<cluster>`` cluster
  preset stays realistic;
- arrivals: a diurnal Poisson process following the hourly GPU-job submission profile (Helios paper
  Fig. 2b, trace-statistics.md section 1.7, grade F), starting at 2020-04-01 00:00 local time; as in
  every workload, ``submit_time`` counts from the first submission, which falls
  ``attrs["time_offset_s"]`` seconds after that midnight;
- GPUs: the published CDF of GPUs per GPU job at 1, 2, 4, ..., 64 GPUs (Fig. 6, section 1.4, grade
  F; the mass between two grid points is put on the upper one), with the share above 64 GPUs placed
  on the one size that makes the mean equal ``avg_gpu_num`` of the summary;
- durations: the published duration CDF at 2^0..2^21 s (Fig. 5a, section 1.3, grade F), sampled by
  log-linear interpolation (jobs in the <= 1 s bucket get 1 s); its median and mean approximate
  ``med_run_time_gpu`` and ``avg_run_time_gpu``;
- status: COMPLETED / CANCELLED / FAILED with the summary's ``*_rate_gpu`` shares;
- VC (Venus and Earth only): each job's VC is drawn in proportion to the VCs' GPU quotas on the day it
  is submitted (``<cluster>_cluster_gpu_number.csv``); Saturn and Uranus have no public per-VC data,
  their ``vc`` is "".

GPU count, duration and status are drawn independently, so correlations between them (large jobs
run longer, are cancelled more often) are not reproduced, nor are the weekly cycle and the batch
submissions that make real arrivals burstier than Poisson.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from dlsched_gym.errors import ConfigError
from dlsched_gym.traces.generator import diurnal_arrivals
from dlsched_gym.workload import Workload, normalize

CLUSTERS = ("venus", "earth", "saturn", "uranus")
WINDOW_DAYS = 181
STATS_SOURCE = (
    "/work/shared/specs/trace-statistics.md, compiled from S-Lab-System-Group/HeliosArtifact"
    "@bdaae109c21f8038a2331e6a23a582d5ae78ab5b figure PDFs (grade F)"
)
#: % of GPU jobs with duration <= 2^k s, k = 0..21 (trace-statistics.md section 1.3).
DURATION_CDF = {
    "venus": [
        1.9,
        2.8,
        4.1,
        6.4,
        9.6,
        14.8,
        23.2,
        37.6,
        55.1,
        65.1,
        72.9,
        78.5,
        83.7,
        86.9,
        89.6,
        92.3,
        95.4,
        97.5,
        98.9,
        99.6,
        99.9,
        100,
    ],
    "earth": [
        0.9,
        1.3,
        1.6,
        2.1,
        2.8,
        4.1,
        9.1,
        17.8,
        55.1,
        71.6,
        76.5,
        87.6,
        88.7,
        90.2,
        95.7,
        97.8,
        98.6,
        99.3,
        99.7,
        99.9,
        100,
        100,
    ],
    "saturn": [
        7.2,
        8.5,
        10.9,
        12.7,
        17.3,
        25.1,
        35.9,
        50.8,
        61.6,
        69.6,
        76.3,
        84.9,
        88.7,
        92.7,
        95.6,
        96.9,
        98.1,
        99.1,
        99.7,
        99.9,
        100,
        100,
    ],
    "uranus": [
        2.0,
        2.9,
        3.8,
        4.9,
        7.6,
        13.4,
        22.6,
        36.3,
        48.3,
        59.0,
        72.3,
        80.0,
        85.0,
        88.8,
        91.7,
        94.4,
        96.8,
        98.5,
        99.4,
        99.8,
        99.9,
        100,
    ],
}
#: GPU counts of the GPU-count CDF grid (trace-statistics.md section 1.4).
GPU_GRID = (1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 56, 64)
#: % of GPU jobs with <= g GPUs at ``GPU_GRID``.
GPU_CDF = {
    "venus": [51.8, 57.4, 64.8, 90.0, 90.0, 94.1, 95.0, 97.8, 98.0, 98.3, 98.5, 98.7],
    "earth": [89.2, 90.0, 92.1, 97.5, 97.5, 99.1, 99.3, 99.7, 99.8, 99.8, 99.8, 99.9],
    "saturn": [68.3, 71.0, 79.4, 94.9, 94.9, 97.5, 97.9, 99.3, 99.4, 99.5, 99.6, 99.7],
    "uranus": [66.3, 69.4, 73.7, 92.3, 92.3, 97.9, 98.1, 99.6, 99.6, 99.7, 99.7, 100.0],
}
#: Mean GPU jobs submitted per hour of the day, hours 0..23 (trace-statistics.md section 1.7).
HOURLY_SUBMISSIONS = {
    "venus": [26, 19, 17, 11, 8, 6, 5, 6, 11, 23, 37, 42, 34, 37, 45, 48, 50, 50, 37, 38, 39, 39, 33, 30],
    "earth": [
        108,
        96,
        88,
        84,
        82,
        79,
        74,
        74,
        73,
        81,
        102,
        112,
        109,
        113,
        106,
        116,
        113,
        102,
        94,
        108,
        123,
        116,
        106,
        102,
    ],
    "saturn": [
        140,
        143,
        114,
        105,
        98,
        91,
        86,
        85,
        95,
        138,
        184,
        199,
        174,
        185,
        206,
        235,
        242,
        219,
        180,
        186,
        204,
        196,
        175,
        180,
    ],
    "uranus": [
        56,
        49,
        28,
        17,
        18,
        26,
        34,
        20,
        25,
        54,
        85,
        97,
        119,
        109,
        125,
        121,
        138,
        112,
        88,
        104,
        111,
        95,
        100,
        86,
    ],
}
STATUSES = {"COMPLETED": "complete_rate_gpu", "CANCELLED": "cancel_rate_gpu", "FAILED": "fail_rate_gpu"}
SUMMARY_COLUMNS = (
    "gpu_num",
    "gpu_job_num",
    "avg_run_time_gpu",
    "med_run_time_gpu",
    "avg_gpu_num",
    *STATUSES.values(),
)
META = {
    "source": "GENERATED by dlsched_gym.traces.helios_synth, calibrated to HeliosArtifact "
    "helios_cluster_summary.csv, HeliosData/HeliosArtifact <cluster>_cluster_gpu_number.csv and "
    "the published Helios distributions (trace-statistics.md)",
    "license": "CC BY 4.0 (calibration data: Helios; HeliosArtifact MIT)",
    "citation": "Hu et al., Characterization and Prediction of Deep Learning Workloads in Large-Scale "
    "GPU Datacenters, SC 2021 (calibration targets)",
}


def _data(filename: str) -> pd.DataFrame:
    with resources.as_file(resources.files("dlsched_gym.traces").joinpath("data", filename)) as p:
        return pd.read_parquet(p)


@cache
def _summary() -> pd.DataFrame:
    return _data("helios_cluster_summary.parquet").set_index("id")


@cache
def _vc_quotas() -> pd.DataFrame:
    return _data("helios_vc_gpus.parquet")


def gpu_sizes(cluster: str, avg_gpu_num: float) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(sizes, probabilities, tail size) of the GPU-count distribution of ``cluster``."""
    cdf = np.array(GPU_CDF[cluster]) / 100
    probs = np.diff(np.concatenate([[0.0], cdf]))
    sizes = np.array(GPU_GRID, dtype=float)
    tail = 1.0 - cdf[-1]
    if tail <= 1e-9:
        return sizes[probs > 0], probs[probs > 0] / probs.sum(), None
    tail_size = float(round((avg_gpu_num - float(sizes @ probs)) / tail))
    if tail_size <= GPU_GRID[-1]:
        raise ConfigError(f"helios {cluster}: calibration gives a tail size {tail_size} <= {GPU_GRID[-1]}")
    sizes, probs = np.append(sizes, tail_size), np.append(probs, tail)
    keep = probs > 0
    return sizes[keep], probs[keep] / probs[keep].sum(), tail_size


def sample_durations(rng: np.random.Generator, cluster: str, n: int) -> np.ndarray:
    """``n`` durations (s) from the published CDF of ``cluster``, log-linear between grid points."""
    cdf = np.array(DURATION_CDF[cluster]) / 100
    logx = np.arange(len(cdf)) * np.log(2.0)
    rising = np.concatenate([[True], np.diff(cdf) > 0])  # np.interp needs increasing points
    u = rng.random(n) * cdf[-1]
    return np.where(u <= cdf[0], 1.0, np.exp(np.interp(u, cdf[rising], logx[rising])))


def _vcs(rng: np.random.Generator, cluster: str, submit: np.ndarray) -> np.ndarray | str:
    quotas = _vc_quotas()
    quotas = quotas[quotas["cluster"] == cluster]
    if quotas.empty:
        return ""
    wide = quotas.pivot(index="date", columns="vc", values="gpus").sort_index()
    names = wide.columns.to_numpy(dtype=str)
    cum = np.cumsum(wide.to_numpy(dtype=float), axis=1)
    day = np.minimum((submit // 86400).astype(int), len(wide) - 1)
    u = rng.random(len(submit)) * cum[day, -1]
    return names[(cum[day] < u[:, None]).sum(axis=1)]


def targets(cluster: str) -> dict[str, Any]:
    """The calibration targets of ``cluster`` (summary row plus the published distributions)."""
    if cluster not in CLUSTERS:
        raise ConfigError(f"unknown Helios cluster {cluster!r}; expected one of {list(CLUSTERS)}")
    row = _summary().loc[cluster.capitalize()]
    out: dict[str, Any] = {c: float(row[c]) for c in SUMMARY_COLUMNS}
    out.update(
        window_days=WINDOW_DAYS,
        duration_cdf_pct=DURATION_CDF[cluster],
        gpu_cdf_grid=list(GPU_GRID),
        gpu_cdf_pct=GPU_CDF[cluster],
        hourly_submissions=HOURLY_SUBMISSIONS[cluster],
        sources={
            "summary": "helios_cluster_summary.csv (HeliosArtifact, grade D)",
            "distributions": STATS_SOURCE,
            "vc_quotas": f"{cluster.capitalize()}_cluster_gpu_number.csv"
            if cluster in ("venus", "earth")
            else "none public",
        },
    )
    return out


def generate_helios(cluster: str, *, seed: int = 0, fraction: float = 0.05) -> Workload:
    """The GENERATED ``helios-<cluster>-synth`` workload (see the module docstring)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ConfigError(f"fraction: expected a number in (0, 1], got {fraction!r}")
    goal = targets(cluster)
    n = int(round(goal["gpu_job_num"] * fraction))
    rng = np.random.default_rng([seed, CLUSTERS.index(cluster)])
    rate_per_s = goal["gpu_job_num"] / (WINDOW_DAYS * 86400.0)
    submit = diurnal_arrivals(rng, n, rate_per_s, HOURLY_SUBMISSIONS[cluster])
    sizes, probs, tail = gpu_sizes(cluster, goal["avg_gpu_num"])
    gpus = rng.choice(sizes.astype(np.int64), p=probs, size=n)
    duration = sample_durations(rng, cluster, n)
    shares = np.array([goal[c] for c in STATUSES.values()])
    status = rng.choice(np.array(list(STATUSES)), p=shares / shares.sum(), size=n)
    vc = _vcs(rng, cluster, submit)
    frame = pd.DataFrame(
        {
            "job_id": [f"{cluster}-{i}" for i in range(n)],
            "submit_time": submit - submit[0],
            "duration": duration,
            "num_gpus": gpus,
            "status": status,
            "vc": vc,
        }
    )
    attrs = {
        "generated": True,
        "time_offset_s": float(submit[0]),  # the first submission, in seconds after 2020-04-01 00:00
        "generator": {"module": __name__, "seed": seed, "fraction": fraction, "gpu_tail_size": tail},
        "calibration": goal,
        "augmented": {
            c: "GENERATED (helios_synth): every column is synthetic"
            for c in ("submit_time", "duration", "num_gpus", "status", "vc")
        },
    }
    return normalize(frame, name=f"helios-{cluster}-synth", attrs=attrs, **META)
