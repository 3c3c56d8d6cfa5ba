"""The generator: determinism, fitted parameters, load scaling, and the calibrated Helios workloads."""

from __future__ import annotations

import numpy as np
import pytest

from dlsched_gym import traces
from dlsched_gym.errors import ConfigError
from dlsched_gym.traces import helios_synth
from dlsched_gym.workload import from_records

MIX = {1: 0.7, 2: 0.1, 8: 0.2}
LOGN = {"pooled": (6.0, 1.5)}


def test_same_seed_same_table_other_seed_other_table():
    a = traces.generate(2000, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=60, seed=7)
    b = traces.generate(2000, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=60, seed=7)
    c = traces.generate(2000, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=60, seed=8)
    assert a.table.equals(b.table)
    assert not a.table.equals(c.table)
    assert a.attrs["generator"]["seed"] == 7 and a.attrs["generated"] is True


def test_poisson_rate_mix_and_lognormal():
    n = 200_000
    wl = traces.generate(n, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=60, seed=1)
    t = wl.table
    gaps = np.diff(t["submit_time"].to_numpy())
    assert gaps.mean() == pytest.approx(60.0, rel=0.01)  # 60 jobs/h -> 60 s mean gap
    assert gaps.std() == pytest.approx(60.0, rel=0.02)  # exponential: std = mean
    shares = t["num_gpus"].value_counts(normalize=True)
    for g, p in MIX.items():
        assert shares[g] == pytest.approx(p, abs=0.005)
    logd = np.log(t["duration"].to_numpy())
    assert logd.mean() == pytest.approx(6.0, abs=0.02) and logd.std() == pytest.approx(1.5, abs=0.02)


def test_target_utilization_on_a_cluster():
    wl = traces.generate(
        100_000, gpu_mix=MIX, duration_lognormal=LOGN, target_utilization=0.8, cluster_gpus=512, seed=3
    )
    t = wl.table
    offered = (t["duration"] * t["num_gpus"]).sum() / (512 * wl.span_seconds)
    assert offered == pytest.approx(0.8, rel=0.02)
    assert wl.attrs["generator"]["target_utilization"] == 0.8


def test_diurnal_profile_is_followed():
    profile = [1.0] * 12 + [3.0] * 12  # afternoons three times as busy
    wl = traces.generate(
        100_000,
        gpu_mix=MIX,
        duration_lognormal=LOGN,
        rate_per_hour=100,
        arrivals="diurnal",
        hourly_profile=profile,
        seed=2,
    )
    hours = (wl.table["submit_time"].to_numpy() + wl.attrs.get("time_offset_s", 0)) % 86400 // 3600
    share_pm = (hours >= 12).mean()
    assert share_pm == pytest.approx(0.75, abs=0.01)  # 3 / (1 + 3)


def test_fit_records_parameters_and_reproduces_the_trace_shape():
    rng = np.random.default_rng(0)
    n = 5000
    gpus = rng.choice([1, 4], p=[0.8, 0.2], size=n)
    dur = np.exp(np.where(gpus == 1, rng.normal(5.0, 1.0, n), rng.normal(8.0, 0.5, n)))
    source = from_records(
        [
            {"submit_time": i * 30.0, "duration": d, "num_gpus": int(g)}
            for i, (d, g) in enumerate(zip(dur, gpus, strict=True))
        ],
        name="src",
    )
    params = traces.fit(source)
    assert params["rate_per_hour"] == pytest.approx(120.0)  # one job every 30 s
    assert params["gpu_mix"]["1"] == pytest.approx(0.8, abs=0.02)
    mu1, s1 = params["duration_lognormal"]["1"]
    mu4, s4 = params["duration_lognormal"]["4"]
    assert (mu1, s1) == pytest.approx((5.0, 1.0), abs=0.05) and (mu4, s4) == pytest.approx(
        (8.0, 0.5), abs=0.05
    )
    wl = traces.generate(20_000, like=source, seed=4)
    assert wl.attrs["generator"]["fitted_to"] == "src"
    big = wl.table[wl.table["num_gpus"] == 4]["duration"]
    assert np.log(big).mean() == pytest.approx(8.0, abs=0.05)
    assert wl.table["duration"].max() <= source.table["duration"].max()


def test_bad_parameters():
    with pytest.raises(ConfigError, match="gpu_mix: not given"):
        traces.generate(10, duration_lognormal=LOGN, rate_per_hour=1)
    with pytest.raises(ConfigError, match="not both"):
        traces.generate(
            10, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=1, target_utilization=0.5, cluster_gpus=8
        )
    with pytest.raises(ConfigError, match="24 positive weights"):
        traces.generate(
            10,
            gpu_mix=MIX,
            duration_lognormal=LOGN,
            rate_per_hour=1,
            arrivals="diurnal",
            hourly_profile=[1.0] * 23,
        )
    with pytest.raises(ConfigError, match="num_jobs"):
        traces.generate(0, gpu_mix=MIX, duration_lognormal=LOGN, rate_per_hour=1)


# --- Helios synthetic workloads: statistics against their calibration targets ---------------------


# trace-statistics.md: section 1.2 (GPU jobs, mean/median run time, mean GPUs; grade D) and section 1.5
# (completed / cancelled / failed % of GPU jobs; grade D)
PUBLISHED = {
    "venus": (125303, 13041, 204, 6.74, (52.6, 27.2, 20.2)),
    "earth": (427148, 5131, 234, 2.10, (73.5, 13.6, 12.9)),
    "saturn": (698896, 5253, 124, 4.01, (58.2, 27.2, 14.5)),
    "uranus": (329117, 9164, 280, 4.04, (60.7, 20.1, 19.2)),
}


@pytest.mark.parametrize("cluster", helios_synth.CLUSTERS)
def test_helios_calibration_targets_are_the_published_ones(cluster):
    goal = traces.load(f"helios-{cluster}-synth", fraction=0.001).attrs["calibration"]
    jobs, mean, median, gpus, status = PUBLISHED[cluster]
    assert goal["gpu_job_num"] == jobs
    assert goal["avg_run_time_gpu"] == pytest.approx(mean, abs=0.5)
    assert goal["med_run_time_gpu"] == median
    assert goal["avg_gpu_num"] == pytest.approx(gpus, abs=0.005)
    shares = [goal[c] * 100 for c in helios_synth.STATUSES.values()]
    assert shares == pytest.approx(list(status), abs=0.05)


@pytest.mark.parametrize("cluster", helios_synth.CLUSTERS)
def test_helios_synth_matches_calibration_targets(cluster):
    wl = traces.load(f"helios-{cluster}-synth")
    t = wl.table
    goal = wl.attrs["calibration"]
    assert wl.attrs["generated"] is True and wl.attrs["generator"]["seed"] == 0
    # job count: the cluster's GPU jobs x 5 % (exact); window: 5 % of 181 days (+- 5 %)
    assert len(t) == round(goal["gpu_job_num"] * 0.05)
    assert wl.span_seconds == pytest.approx(0.05 * 181 * 86400, rel=0.05)
    # durations: median within 5 %, mean within 20 % (heavy tail; CDF interpolation)
    assert t["duration"].median() == pytest.approx(goal["med_run_time_gpu"], rel=0.05)
    assert t["duration"].mean() == pytest.approx(goal["avg_run_time_gpu"], rel=0.20)
    # share of jobs <= 2^k s, every k: within 1.5 points of the published CDF
    for k, pct in enumerate(goal["duration_cdf_pct"]):
        assert (t["duration"] <= 2.0**k).mean() * 100 == pytest.approx(pct, abs=1.5)
    # GPUs: mean within 10 %, CDF at every grid point within 1.5 points
    assert t["num_gpus"].mean() == pytest.approx(goal["avg_gpu_num"], rel=0.10)
    for g, pct in zip(goal["gpu_cdf_grid"], goal["gpu_cdf_pct"], strict=True):
        assert (t["num_gpus"] <= g).mean() * 100 == pytest.approx(pct, abs=1.5)
    # status shares within 2 points
    shares = t["status"].value_counts(normalize=True)
    for status, column in helios_synth.STATUSES.items():
        assert shares[status] == pytest.approx(goal[column], abs=0.02)
    # submissions per hour of day: each hour's share within 1 point of the published profile
    hours = (t["submit_time"] + wl.attrs["time_offset_s"]) % 86400 // 3600
    observed = np.bincount(hours.astype(int), minlength=24) / len(t)
    target = np.array(goal["hourly_submissions"]) / sum(goal["hourly_submissions"])
    assert np.abs(observed - target).max() < 0.01


def test_helios_synth_vcs_follow_daily_quotas():
    wl = traces.load("helios-venus-synth")
    t = wl.table
    day = (t["submit_time"] + wl.attrs["time_offset_s"]) // 86400
    # Venus_cluster_gpu_number.csv: of 968 GPUs, vc6YE holds 88 on 2020-04-01..06 and 8 from 04-07;
    # vcKeu, vcYVn, vchA3, vcJsw, vcIya, vcEhP, vcbIW hold 0 throughout the first ten days
    early, late = t[day < 6], t[(day >= 6) & (day < 10)]
    assert (early["vc"] == "vc6YE").mean() == pytest.approx(88 / 968, abs=0.02)
    assert (late["vc"] == "vc6YE").mean() == pytest.approx(8 / 968, abs=0.01)
    assert not set(t["vc"]) & {"vcKeu", "vcYVn", "vchA3", "vcJsw", "vcIya", "vcEhP", "vcbIW"}
    assert (traces.load("helios-saturn-synth").table["vc"] == "").all()  # no public per-VC data


def test_helios_synth_seed_and_fraction():
    a = traces.load("helios-venus-synth", seed=1, fraction=0.01)
    b = traces.load("helios-venus-synth", seed=1, fraction=0.01)
    assert a.table.equals(b.table) and len(a) == round(125303 * 0.01)
    assert not a.table.equals(traces.load("helios-venus-synth", seed=2, fraction=0.01).table)
    with pytest.raises(ConfigError, match="fraction"):
        traces.load("helios-venus-synth", fraction=2)
