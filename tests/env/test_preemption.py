"""DLCluster-v0 with ``preemption=True``: a trace computed by hand, the instant rules, masks,
checkers and determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import dlsched_gym  # noqa: F401  (registers the env ids)
from dlsched_gym.env import DLClusterEnv, FlattenObservation, InvalidActionError
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records


def long_and_short():
    """A: t=0, 1000 s, 1 GPU; B: t=100, 100 s, 1 GPU."""
    return from_records([{"submit_time": 0.0, "duration": 1000.0, "num_gpus": 1},
                         {"submit_time": 100.0, "duration": 100.0, "num_gpus": 1}], name="two")


def one_gpu_env(**kw):
    opts = {"trace": long_and_short(), "cluster": "1x1", "episode_jobs": 2, "load": 1.0, "window": 2,
            "preemption": True, "round_seconds": 300.0, "running_window": 1,
            "reward": {"scale": 100.0, "util_weight": 0.0}}
    opts.update(kw)
    return DLClusterEnv(**opts)


def test_preempting_the_long_job_by_hand():
    # One GPU, K = 2 queue slots, R = 1 running slot: actions 0, 1 start, 2 = WAIT, 3 preempts.
    # t=0    A fits: start it (action 0).
    # t=100  B arrives and cannot fit; A may be preempted: the agent is asked. Preempt A (action 3):
    #        A (100 s done) rejoins the queue behind B and may not restart at this instant.
    #        B fits: start it (action 0). The clock then runs to B's end at t=200.
    # t=200  A fits again: start it (action 0); 900 s left, it ends at t=1100. The rounds at
    #        t=300, 600, 900 find nobody waiting and ask nothing.
    # JCT: A 1100, B 100 -> average 600. Jobs in system: 1 on [0,100), 2 on [100,200), 1 on
    # [200,1100): 100 + 200 + 900 = 1200 job-seconds -> return -1200 / 100 = -12.
    env = one_gpu_env()
    assert env.action_space.n == 4
    obs, _ = env.reset(seed=0)
    assert env.action_masks().tolist() == [True, False, True, False]
    rewards = []
    _, r, term, _, info = env.step(0)
    rewards.append(r)
    assert info["time"] == 100.0 and not term
    assert env.action_masks().tolist() == [False, False, True, True]   # B does not fit; A preemptable
    assert env.builder.run_slot_list == [0]
    _, r, _, _, info = env.step(3)
    rewards.append(r)
    assert info["time"] == 100.0 and info["queued"] == 2 and info["running"] == 0
    assert env.builder.slot_list == [1, 0]
    assert env.action_masks().tolist() == [True, False, True, False]   # A: preempted at this instant
    with pytest.raises(InvalidActionError, match="preempted at this instant"):
        env.step(1)
    _, r, _, _, info = env.step(0)
    rewards.append(r)
    assert info["time"] == 200.0 and env.action_masks().tolist() == [True, False, True, False]
    _, r, term, trunc, info = env.step(0)
    rewards.append(r)
    assert term and not trunc
    assert info["avg_jct"] == 600.0
    assert sum(rewards) == pytest.approx(-12.0)
    res = env.episode_result().jobs_frame()
    assert res["end_time"].tolist() == [1100.0, 200.0]
    assert env.engine.preemptions == [1, 0]


def test_a_job_started_now_cannot_be_preempted_now():
    # Two 1-GPU jobs at t=0 on two GPUs, one running slot: after A starts, its running slot is
    # masked until the clock moves; B still fits and may start.
    trace = from_records([{"submit_time": 0.0, "duration": 50.0, "num_gpus": 1},
                          {"submit_time": 0.0, "duration": 80.0, "num_gpus": 1}], name="pair")
    env = one_gpu_env(trace=trace, cluster="1x2")
    env.reset(seed=0)
    env.step(0)
    assert env.builder.run_slot_list == [0]
    assert env.action_masks().tolist() == [True, False, True, False]
    with pytest.raises(InvalidActionError, match="started at this instant"):
        env.step(3)


def test_preemption_options_are_checked():
    with pytest.raises(ConfigError, match="needs action_mode='discrete'"):
        one_gpu_env(action_mode="priority")
    with pytest.raises(ConfigError, match="round_seconds must be a positive number"):
        one_gpu_env(round_seconds=0)
    with pytest.raises(ConfigError, match="running_window must be an integer >= 1"):
        one_gpu_env(running_window=0)
    with pytest.raises(ConfigError, match="preemption must be True or False"):
        one_gpu_env(preemption="yes")


def test_checkers_and_spaces(philly_env_kwargs):
    kw = dict(philly_env_kwargs, preemption=True, running_window=5, invalid_action="wait")
    env = gym.make("DLCluster-v0", **kw)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env, warn=True)
    assert env.action_space.n == 8 + 1 + 5
    assert env.observation_space["queue"].shape == (8, 9)
    assert env.observation_space["running_jobs"].shape == (5, 8)
    flat = FlattenObservation(gym.make("DLCluster-v0", **kw))
    sb3_check_env(flat, warn=True)
    assert flat.observation_space.shape == (8 * 9 + 11 + 4 + 4 + 5 * 8,)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), window=st.integers(1, 10), running=st.integers(1, 10),
       rounds=st.sampled_from([60.0, 600.0]))
def test_masks_never_admit_invalid_actions(philly_workload, seed, window, running, rounds):
    env = DLClusterEnv(trace=philly_workload, cluster="philly-vc/103959", episode_jobs=30,
                       window=window, load=8.0, preemption=True, running_window=running,
                       round_seconds=rounds)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    done, steps = False, 0
    while not done:
        mask = env.action_masks()
        eng, b = env.engine, env.builder
        assert mask[window]                                          # WAIT
        for i, j in enumerate(b.slot_list):
            n = int(eng.jobs.num_gpus[j])
            fits = n <= eng.free_gpus and eng.placement.place(
                n, eng.node_free, eng.gpu_load, eng.spec, j) is not None
            assert mask[i] == (fits and j not in env._preempted_now)
        assert not mask[len(b.slot_list):window].any()
        # the running slots: the jobs with the most attained service, preemptable unless started now
        ranked = sorted(eng.alloc, key=lambda j: (-eng.attained_service(j), j))[:running]
        assert b.run_slot_list == ranked
        for r, j in enumerate(ranked):
            assert mask[window + 1 + r] == (j not in env._started_now)
        assert not mask[window + 1 + len(ranked):].any()
        obs, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        assert env.observation_space.contains(obs)
        done = term or trunc
        steps += 1
    assert not env._stalled and env.engine.finished_count == 30


def test_reset_seed_determinism(philly_env_kwargs):
    def trajectory(seed):
        env = gym.make("DLCluster-v0", **philly_env_kwargs, preemption=True)
        rng = np.random.default_rng(5)
        obs, _ = env.reset(seed=seed)
        parts = []
        for _ in range(300):
            parts += [obs[k].ravel() for k in sorted(obs)]
            valid = np.flatnonzero(env.unwrapped.action_masks())
            obs, reward, term, trunc, _ = env.step(int(rng.choice(valid)))
            parts.append(np.array([reward]))
            if term or trunc:
                obs, _ = env.reset()
        return np.concatenate(parts)

    assert np.array_equal(trajectory(4), trajectory(4))
    assert not np.array_equal(trajectory(4), trajectory(5))
