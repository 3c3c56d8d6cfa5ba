"""The compiled backend (``dlsched_gym.kernel``) against the Python engine and builder.

The compiled decision loop is a second implementation of the env's transitions, so the test is
equivalence: on random workloads, clusters, options and action sequences, both backends give
bit-identical observations, masks, rewards, flags and info at every step, and the compiled
backend's write-back reproduces the Python engine's complete state (every per-job list, the
queue and allocation with their GPU ids, the event heap, the integrals)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlsched_gym.cluster import ClusterSpec, Node
from dlsched_gym.env import DLClusterEnv
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records
from tests.fuzz.budget import fuzz_settings

#: Engine attributes the write-back must reproduce (everything that changes in this configuration).
ENGINE_LISTS = ("state", "first_start", "end_time", "queued_since", "run_since", "t_last",
                "progress_from", "rate", "version", "exec_acc", "attained_acc", "done_work",
                "run_gpus", "preemptions")
ENGINE_SCALARS = ("now", "_next_arrival", "busy_gpu_seconds", "available_gpu_seconds",
                  "jobs_in_system_seconds", "finished_count", "decisions", "stalled", "_acted",
                  "_seq", "free_gpus")


def same_list(a, b) -> bool:
    """Equal element by element, NaN equal to NaN."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b))


def assert_same_engine(py, co) -> None:
    """The Python backend's engine ``py`` and the compiled backend's written-back ``co``."""
    for name in ENGINE_LISTS:
        assert same_list(getattr(py, name), getattr(co, name)), name
    for name in ENGINE_SCALARS:
        assert getattr(py, name) == getattr(co, name), name
    assert list(py.queue) == list(co.queue)
    assert list(py.alloc) == list(co.alloc)  # start order
    for j in py.alloc:
        assert py.alloc[j].tolist() == co.alloc[j].tolist(), f"GPUs of job {j}"
    assert (py.node_free == co.node_free).all() and (py.gpu_load == co.gpu_load).all()
    assert sorted(py.heap) == sorted(co.heap)
    assert py.view.new_jobs == co.view.new_jobs and py.view.finished == co.view.finished


def assert_same_builder(py, co) -> None:
    assert py.slot_list == co.slot_list and py._fit == co._fit
    assert py._largest == co._largest and py._filled == co._filled
    assert py._pred_end == co._pred_end
    assert (py.rest is None) == (co.rest is None)
    if py.rest is not None:
        assert py.rest.tolist() == co.rest.tolist()


def assert_same_step(a, b) -> None:
    """Two ``step``/``reset`` results, observation and info included, bit for bit."""
    obs_a, obs_b = a[0], b[0]
    assert obs_a.keys() == obs_b.keys()
    for key in obs_a:
        assert obs_a[key].dtype == obs_b[key].dtype
        assert obs_a[key].tobytes() == obs_b[key].tobytes(), key
    assert a[1:-1] == b[1:-1]  # reward, terminated, truncated (reset: nothing)
    info_a, info_b = dict(a[-1]), dict(b[-1])
    assert info_a.pop("action_mask").tolist() == info_b.pop("action_mask").tolist()
    assert info_a == info_b


def play(kwargs: dict, actions: list[int], seed: int, check_every: int) -> int:
    """Drive both backends with the same choices (``actions[i] % valid``, or an invalid one when
    negative and ``invalid_action="wait"``; in priority mode, scores drawn from ``actions[i]``,
    rounded so that ties occur); returns the steps played."""
    py = DLClusterEnv(backend="python", **kwargs)
    co = DLClusterEnv(backend="compiled", **kwargs)
    assert py.backend == "python" and co.backend == "compiled"
    assert_same_step(py.reset(seed=seed), co.reset(seed=seed))
    for i, choice in enumerate(actions):
        mask = py.action_masks()
        assert mask.tolist() == co.action_masks().tolist()
        valid = np.flatnonzero(mask)
        invalid = np.flatnonzero(~mask)
        if kwargs.get("action_mode") == "priority":
            action = np.round(np.random.default_rng(choice + 10).uniform(-1, 1, py.K), 1)
        elif choice < 0 and kwargs.get("invalid_action") == "wait" and len(invalid):
            action = int(invalid[-choice % len(invalid)])
        else:
            action = int(valid[choice % len(valid)])
        out_py, out_co = py.step(action), co.step(action)
        assert_same_step(out_py, out_co)
        if i % check_every == 0 or out_py[2] or out_py[3]:
            assert_same_engine(py.engine, co.engine)
            assert_same_builder(py.builder, co.builder)
            assert co.forced_starts == py.forced_starts
        if out_py[2] or out_py[3]:
            assert_same_step(py.reset(), co.reset())
    return len(actions)


@st.composite
def configurations(draw):
    """A random workload, cluster and env options the compiled backend supports."""
    n = draw(st.integers(1, 14))
    node_sizes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4).filter(lambda s: sum(s) > 0))
    total = sum(node_sizes)
    rows, t = [], 0.0
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 0.0, 1.0, 5.0, 30.0, 120.0]))  # simultaneous arrivals too
        rows.append({"submit_time": t,
                     "duration": draw(st.sampled_from([1.0, 10.0, 30.0, 60.0, 500.0])),
                     # at most the cluster (the engine refuses larger rigid jobs); often several nodes
                     "num_gpus": draw(st.integers(1, total))})
    kwargs = {
        "trace": from_records(rows, name="random"),
        "cluster": ClusterSpec(nodes=tuple(Node(gpus=g) for g in node_sizes), name="random"),
        "episode_jobs": draw(st.integers(1, n)),
        "load": draw(st.sampled_from([1.0, 3.0])),
        "window": draw(st.integers(1, 5)),
        "placement": draw(st.sampled_from(["consolidated", "first-fit"])),
        "action_mode": draw(st.sampled_from(["discrete", "discrete", "priority"])),
        "window_order": draw(st.sampled_from(["arrival", "duration"])),
        "predictor": draw(st.sampled_from(["oracle", "noisy"])),
        "invalid_action": draw(st.sampled_from(["raise", "wait"])),
        "reward": {"scale": 100.0, "util_weight": draw(st.sampled_from([0.0, 0.7]))},
    }
    actions = draw(st.lists(st.integers(-3, 6), min_size=1, max_size=60))
    return kwargs, actions, draw(st.integers(0, 2**16))


@given(configurations())
@fuzz_settings(ci_examples=150)
def test_compiled_backend_is_bit_identical_to_python(config):
    kwargs, actions, seed = config
    play(kwargs, actions, seed, check_every=3)


@pytest.mark.parametrize("kwargs", [
    {},  # DLCluster-v0: Philly VC 103959 at 4x load, K = 32
    {"window_order": "duration", "window": 8, "predictor": "noisy"},
    {"placement": "first-fit", "load": 8.0, "reward": {"scale": 3600.0, "util_weight": 1.0}},
    {"action_mode": "priority", "window_order": "duration"},
])
def test_compiled_backend_matches_on_the_default_trace(philly_workload, kwargs, seed=3):
    rng = np.random.default_rng(seed)
    play({"trace": philly_workload, **kwargs}, rng.integers(0, 40, size=1500).tolist(), seed,
         check_every=97)


def test_large_cluster_histogram_matches():
    # Over 64 nodes the builder computes the free-GPU histogram in numpy (float32 products).
    rng = np.random.default_rng(0)
    rows = [{"submit_time": float(i * 7), "duration": float(rng.integers(50, 900)),
             "num_gpus": int(rng.choice([1, 1, 2, 3, 8]))} for i in range(120)]
    cluster = ClusterSpec(nodes=tuple(Node(gpus=g) for g in [1, 2, 3] * 27), name="81 nodes")
    play({"trace": from_records(rows, name="many"), "cluster": cluster, "episode_jobs": 120,
          "load": 5.0, "window": 6}, rng.integers(0, 7, size=600).tolist(), 1, check_every=50)


def test_stalled_episode_and_forced_starts_match():
    # Always WAIT. J1 (8 GPUs, elastic) never fits on 4 GPUs, so the episode ends truncated;
    # WAITs with nothing running and nothing left to arrive force J0 (t=50) and J2 (t=60).
    one = {"min_gpus": 1, "max_gpus": 1}
    trace = from_records([{"submit_time": 0.0, "duration": 10.0, "num_gpus": 1, **one},
                          {"submit_time": 0.0, "duration": 10.0, "num_gpus": 8, "min_gpus": 2,
                           "max_gpus": 8},
                          {"submit_time": 50.0, "duration": 20.0, "num_gpus": 2, "min_gpus": 2,
                           "max_gpus": 2}], name="stall")
    kwargs = {"trace": trace, "cluster": "1x4", "episode_jobs": 3, "load": 1.0, "window": 3}
    py = DLClusterEnv(backend="python", **kwargs)
    co = DLClusterEnv(backend="compiled", **kwargs)
    assert_same_step(py.reset(seed=0), co.reset(seed=0))
    wait = 3
    while True:
        a, b = py.step(wait), co.step(wait)
        assert_same_step(a, b)
        if a[2] or a[3]:
            break
    assert a[3] and a[-1]["stalled"] and a[-1]["forced_starts"] == 2 and a[-1]["time"] == 80.0
    assert_same_engine(py.engine, co.engine)


def test_auto_picks_compiled_when_supported_and_python_otherwise(philly_env_kwargs):
    assert DLClusterEnv(**philly_env_kwargs).backend == "compiled"
    assert DLClusterEnv(**philly_env_kwargs, action_mode="priority").backend == "compiled"
    for extra in ({"preemption": True}, {"placement": "spread"},
                  {"predictor": "history"}, {"perf": "throughput"}):
        assert DLClusterEnv(**philly_env_kwargs, **extra).backend == "python", extra


def test_compiled_backend_names_what_the_configuration_lacks(philly_env_kwargs):
    with pytest.raises(ConfigError, match=r"preemption=True.*backend='python'"):
        DLClusterEnv(**philly_env_kwargs, backend="compiled", preemption=True)
    with pytest.raises(ConfigError, match=r"placement='spread'"):
        DLClusterEnv(**philly_env_kwargs, backend="compiled", placement="spread")
    with pytest.raises(ConfigError, match=r"backend must be one of .*'numba'"):
        DLClusterEnv(**philly_env_kwargs, backend="numba")


def test_engine_read_mid_episode_is_current(philly_env_kwargs):
    # Reading env.engine brings it up to the kernel's state; later steps keep it moving.
    env = DLClusterEnv(**philly_env_kwargs)
    env.reset(seed=0)
    seen = []
    for _ in range(30):
        env.step(int(np.flatnonzero(env.action_masks())[0]))
        seen.append(env.engine.now)
        assert env.engine.jobs_in_system == len(env.engine.queue) + len(env.engine.alloc)
    assert seen == sorted(seen) and seen[-1] > 0 and not math.isnan(seen[-1])


def test_without_numba_auto_warns_and_compiled_fails(philly_env_kwargs, monkeypatch):
    import sys

    import dlsched_gym

    monkeypatch.delattr(dlsched_gym, "kernel", raising=False)
    monkeypatch.setitem(sys.modules, "dlsched_gym.kernel", None)  # the import now fails
    with pytest.warns(RuntimeWarning, match="compiled backend is unavailable"):
        assert DLClusterEnv(**philly_env_kwargs).backend == "python"
    with pytest.raises(ConfigError, match="backend='compiled' is unavailable here"):
        DLClusterEnv(**philly_env_kwargs, backend="compiled")


def test_compile_notice_only_when_the_cache_is_stale(monkeypatch, tmp_path):
    from dlsched_gym import kernel

    DLClusterEnv(trace=from_records([{"submit_time": 0.0, "duration": 1.0, "num_gpus": 1}]),
                 cluster="1x1", episode_jobs=1, load=1.0).reset(seed=0)  # compiled (and cached)
    assert not kernel.cache_is_stale()
    cache_file = kernel._episode._cache._cache_file
    monkeypatch.setattr(cache_file, "_index_path", str(tmp_path / "missing.nbi"))
    assert kernel.cache_is_stale()


@pytest.mark.parametrize("env_id", ["DLCluster-Philly-v0", "DLCluster-Helios-v0",
                                    "DLCluster-ElasticFlow-v0"])
def test_compiled_backend_matches_on_the_pinned_benchmarks(env_id):
    from dlsched_gym.env import ENVIRONMENTS

    rng = np.random.default_rng(7)
    play(dict(ENVIRONMENTS[env_id]), rng.integers(0, 40, size=400).tolist(), 7, check_every=101)
