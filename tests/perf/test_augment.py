"""Workload augmentation: seeded, recorded, never overwrites trace columns unless asked."""

from __future__ import annotations

import numpy as np
import pytest

from dlsched_gym import perf
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import augment, default_model_pool, from_records


@pytest.fixture
def plain():
    rng = np.random.default_rng(0)
    n = 200
    return from_records([
        {"job_id": f"j{i}", "submit_time": float(i * 7), "duration": float(rng.integers(10, 5000)),
         "num_gpus": int(rng.choice([1, 2, 4, 8])), "user": f"u{i % 5}" if i % 3 else ""}
        for i in range(n)
    ], name="plain")


def test_deterministic_under_seed(plain):
    a = augment(plain, seed=3, elastic=(0.5, 2.0), regions=4, datasets=6)
    b = plain.augment(seed=3, elastic=(0.5, 2.0), regions=4, datasets=6)
    c = augment(plain, seed=4, elastic=(0.5, 2.0), regions=4, datasets=6)
    assert a.table.equals(b.table)
    assert not a.table["model"].equals(c.table["model"])
    assert a.attrs["augmented"] == b.attrs["augmented"]


def test_rules_and_values(plain):
    a = augment(plain, seed=1, elastic=(0.5, 2.0), regions=["us", "eu"], datasets=3)
    t = a.table
    rec = a.attrs["augmented"]
    assert {"model", "batch_size", "iterations", "deadline", "min_gpus", "max_gpus", "gpu_mem_gb", "region",
            "dataset"} <= set(rec)
    assert all(r["seed"] == 1 and r["rule"] for r in rec.values())
    pool = {f"{m}@{b}" for m, b in default_model_pool()}
    assert set(t["model"] + "@" + t["batch_size"].astype(str)) <= pool
    # iterations = duration x iterations/s at the requested allocation of the reference type
    row = t.iloc[17]
    ips = perf.iterations_per_second(row["model"], int(row["batch_size"]), int(row["num_gpus"]))
    assert row["iterations"] == pytest.approx(row["duration"] * ips)
    # ElasticFlow's deadline rule
    rel = (t["deadline"] - t["submit_time"]) / t["duration"]
    assert rel.between(0.5, 1.5).all()
    assert (t["min_gpus"] == np.maximum(1, t["num_gpus"] // 2)).all()
    assert (t["max_gpus"] == 2 * t["num_gpus"]).all()
    assert set(t["region"]) <= {"us", "eu"} and set(t["dataset"]) <= {"dataset0", "dataset1", "dataset2"}
    for _, jobs in t[t["user"] != ""].groupby("user"):
        assert jobs["region"].nunique() == 1  # home region per user


def test_trace_columns_are_kept_unless_overwrite(plain):
    a = augment(plain, seed=1)
    b = augment(a, seed=2)
    assert b.table["model"].equals(a.table["model"])
    assert b.table["deadline"].equals(a.table["deadline"])
    assert set(b.attrs["augment_kept"]) >= {"model", "batch_size", "iterations", "deadline"}
    c = augment(a, seed=2, overwrite=True)
    assert not c.table["model"].equals(a.table["model"])


def test_trace_model_without_batch_gets_iterations(plain):
    t = plain.table.copy()
    t["model"] = "vgg16"
    w = plain.replace(t)
    a = augment(w, seed=0, deadlines=None)
    assert (a.table["model"] == "vgg16").all()
    assert a.table["iterations"].notna().all()
    assert "deadline" not in a.attrs["augmented"]


def test_trace_weights_follow_gavel_mix(plain):
    a = augment(plain, seed=5, weights="trace")
    mix = perf.load_tables()["gavel_trace_mix"]
    assert set(a.table["model"] + "@" + a.table["batch_size"].astype(str)) <= set(mix)


def test_bad_options(plain):
    with pytest.raises(ConfigError, match="no throughput curve"):
        augment(plain, seed=0, model_pool=[("made-up", 32)])
    with pytest.raises(ConfigError, match="weights"):
        augment(plain, seed=0, weights="zipf")
    with pytest.raises(ConfigError, match="trace"):
        augment(plain, seed=0, model_pool=["bert@64"], weights="trace")
    with pytest.raises(ConfigError, match="deadlines"):
        augment(plain, seed=0, deadlines=(2.0, 1.0))
    with pytest.raises(ConfigError, match="elastic"):
        augment(plain, seed=0, elastic=(1.5, 2.0))
    with pytest.raises(ConfigError, match="seed"):
        augment(plain, seed=None)
