"""DLCluster-v0: checkers, determinism, masks, rewards computed by hand, error handling."""

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


def three_jobs():
    """J0: t=0, 100 s, 2 GPUs; J1: t=0, 50 s, 4 GPUs; J2: t=10, 20 s, 2 GPUs."""
    return from_records([
        {"submit_time": 0.0, "duration": 100.0, "num_gpus": 2},
        {"submit_time": 0.0, "duration": 50.0, "num_gpus": 4},
        {"submit_time": 10.0, "duration": 20.0, "num_gpus": 2},
    ], name="three")


def tiny_env(**kw):
    opts = {"trace": three_jobs(), "cluster": "1x4", "episode_jobs": 3, "load": 1.0, "window": 4,
            "reward": {"scale": 100.0, "util_weight": 0.5}}
    opts.update(kw)
    return DLClusterEnv(**opts)


def test_reward_sum_is_minus_total_jct_plus_utilization_by_hand():
    # Cluster: one node of 4 GPUs. The agent always takes the first valid slot.
    # t=0   queue [J0, J1], both fit: start J0 (GPUs 0-1). J1 (4 GPUs) no longer fits, nothing
    #       visible fits -> the env advances to t=10 (J2 arrives).
    #       step 1 pays [0,10): 2 jobs in system x 10 s = 20 -> -20/100 = -0.2;
    #       busy 2 GPUs x 10 s = 20 GPU-s -> 0.5 x 20/4 / 100 = 0.025.
    # t=10  queue [J1, J2]; only J2 fits (slot 1): start it (ends t=30). Nothing fits until J0
    #       ends at t=100 (J2's end at t=30 frees 2 GPUs, J1 needs 4).
    #       step 2 pays [10,30): 3 jobs x 20 = 60 and [30,100): 2 jobs x 70 = 140 -> -2.0;
    #       busy 4 x 20 + 2 x 70 = 220 GPU-s -> 0.5 x 220/4/100 = 0.275.
    # t=100 start J1 (ends t=150); episode ends at t=150.
    #       step 3 pays [100,150): 1 job x 50 -> -0.5; busy 4 x 50 = 200 -> 0.25.
    # JCTs: J0 100, J2 20, J1 150: total 270 -> -2.7; utilization term 0.55; return -2.15.
    env = tiny_env()
    obs, info = env.reset(seed=0)
    expected = [(0, -0.2, 0.025), (1, -2.0, 0.275), (0, -0.5, 0.25)]
    total = 0.0
    for i, (action, jct_term, util_term) in enumerate(expected):
        assert env.action_masks()[action]
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["reward_jct"] == pytest.approx(jct_term)
        assert info["reward_util"] == pytest.approx(util_term)
        assert reward == pytest.approx(jct_term + util_term)
        assert terminated == (i == 2) and not truncated
        total += reward
    assert total == pytest.approx(-2.15)
    assert info["avg_jct"] == pytest.approx(90.0)
    assert info["episode_summary"]["jobs_finished"] == 3


def test_first_state_by_hand():
    env = tiny_env()
    obs, _ = env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True, False, False, True]
    q = obs["queue"]
    assert q[:2, 0].tolist() == [1.0, 1.0] and q[2:].sum() == 0.0   # two valid slots, rest zeros
    assert q[0, 2] == pytest.approx(np.log2(3) / np.log2(5))          # 2 of 4 GPUs
    assert obs["cluster"][8] == 1.0                                   # the node has 8/8 of its GPUs free
    assert obs["overflow"][2] == pytest.approx(1 / 3)                # J2 not yet arrived


def test_wait_on_a_stall_forces_a_start():
    env = tiny_env()
    env.reset(seed=0)
    _, reward, *_ = env.step(4)                 # WAIT at t=0: J2 still to come -> clock to t=10
    assert reward == pytest.approx(-2 * 10 / 100 + 0.0)
    _, _, terminated, truncated, info = env.step(4)   # nothing running, nothing to come
    assert info["forced_starts"] == 1 and info["running"] == 1 and not (terminated or truncated)


def test_job_that_can_never_fit_truncates_with_stalled_flag():
    wl = from_records([{"submit_time": 0.0, "duration": 10.0, "num_gpus": 1, "min_gpus": 1, "max_gpus": 1},
                       {"submit_time": 0.0, "duration": 10.0, "num_gpus": 8, "min_gpus": 2, "max_gpus": 8}])
    env = DLClusterEnv(trace=wl, cluster="1x4", episode_jobs=2, load=1.0, window=4)
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, False, False, False, True]
    _, _, terminated, truncated, info = env.step(0)
    assert truncated and not terminated and info["stalled"]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(4)


def test_invalid_actions():
    env = tiny_env()
    env.reset(seed=0)
    env.step(0)                                  # J0 runs; at t=10 slot 0 holds J1 (does not fit)
    with pytest.raises(InvalidActionError, match="slot 0 holds job 1 .4 GPUs., which does not fit"):
        env.step(0)
    with pytest.raises(InvalidActionError, match="slot 3 is empty"):
        env.step(3)
    with pytest.raises(InvalidActionError, match="outside"):
        env.step(9)
    env = tiny_env(invalid_action="wait")
    env.reset(seed=0)
    env.step(0)
    _, _, _, _, info = env.step(3)
    assert info["invalid_actions"] == 1


def test_priority_mode_orders_by_score():
    env = tiny_env(action_mode="priority")
    env.reset(seed=0)
    scores = np.array([-1.0, 1.0, 0.0, 0.0], dtype=np.float32)   # J1 first: it takes all 4 GPUs
    _, _, terminated, _, info = env.step(scores)
    # J1 ran 0-50 alone (J0 did not fit beside it, nor J2 at t=10); the next choice is at t=50.
    assert info["time"] == 50.0 and info["jobs_finished"] == 1 and not terminated
    # Queue [J0, J2]: both start at t=50; J2 ends at 70, J0 at 150.
    _, _, terminated, truncated, info = env.step(scores)
    assert terminated and not truncated
    assert info["avg_jct"] == pytest.approx((50 + 150 + 60) / 3)


def test_unknown_options_are_rejected():
    with pytest.raises(ConfigError, match="unknown option.*bogus.*valid options: trace, cluster"):
        gym.make("DLCluster-v0", bogus=1)
    with pytest.raises(ConfigError, match="reward: unknown key"):
        tiny_env(reward={"scale": 1.0, "jct": 2})
    with pytest.raises(ConfigError, match="action_mode"):
        tiny_env(action_mode="multi")
    with pytest.raises(ConfigError, match="not both"):
        tiny_env(episode_jobs=3, episode_seconds=10.0)
    with pytest.raises(ConfigError, match="unknown option"):
        tiny_env().reset(options={"begin": 0})


def test_registration_and_module_prefix(philly_env_kwargs):
    env = gym.make("dlsched_gym:DLCluster-v0", **philly_env_kwargs)
    assert isinstance(env.unwrapped, DLClusterEnv)
    for env_id in ("DLCluster-v0", "DLCluster-Philly-v0", "DLCluster-Helios-v0", "DLCluster-ElasticFlow-v0"):
        assert env_id in gym.registry
    pinned = gym.make("DLCluster-Philly-v0")
    pinned.reset(seed=0)
    assert pinned.unwrapped.window_start in pinned.unwrapped.starts.tolist()
    assert pinned.unwrapped.starts.tolist() == [1560, 1580, 1600, 1620, 1640, 1660]


def test_default_env_queues_form():
    env = gym.make("DLCluster-v0")
    env.reset(seed=3)
    assert env.unwrapped.cluster_spec.name == "philly-vc/103959"
    assert env.action_space.n == 33
    longest = 0
    done = False
    while not done:
        mask = env.unwrapped.action_masks()
        _, _, term, trunc, info = env.step(int(np.flatnonzero(mask)[0]))
        longest = max(longest, info["queued"])
        done = term or trunc
    assert longest > 10


@pytest.mark.parametrize("mode", ["discrete", "priority"])
def test_checkers(philly_env_kwargs, mode):
    env = gym.make("DLCluster-v0", **philly_env_kwargs, action_mode=mode, invalid_action="wait")
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env, warn=True)
    flat = FlattenObservation(gym.make("DLCluster-v0", **philly_env_kwargs, invalid_action="wait"))
    sb3_check_env(flat, warn=True)
    assert flat.observation_space.shape == (8 * 8 + 11 + 4 + 4,)
    assert flat.action_masks().shape == (9,)


def _trajectory(kwargs, seed, n_steps=400):
    env = gym.make("DLCluster-v0", **kwargs)
    rng = np.random.default_rng(123)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(n_steps):
        valid = np.flatnonzero(env.unwrapped.action_masks())
        obs, reward, term, trunc, _ = env.step(int(rng.choice(valid)))
        out.append((obs, reward))
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs)
    return out


def test_reset_seed_determinism(philly_env_kwargs):
    a = _trajectory(philly_env_kwargs, 7)
    b = _trajectory(philly_env_kwargs, 7)
    c = _trajectory(philly_env_kwargs, 8)

    def flat(traj):
        parts = []
        for item in traj:
            obs = item[0] if isinstance(item, tuple) else item
            parts += [obs[k].ravel() for k in sorted(obs)]
            if isinstance(item, tuple):
                parts.append(np.array([item[1]]))
        return np.concatenate(parts)

    assert np.array_equal(flat(a), flat(b))
    assert not np.array_equal(flat(a), flat(c))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), placement=st.sampled_from(["consolidated", "first-fit", "spread"]),
       window=st.integers(1, 12), order=st.sampled_from(["arrival", "duration"]))
def test_masks_never_admit_invalid_actions(philly_workload, seed, placement, window, order):
    env = DLClusterEnv(trace=philly_workload, cluster="philly-vc/103959", episode_jobs=40, window=window,
                       placement=placement, load=8.0, window_order=order)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    done = False
    while not done:
        mask = env.action_masks()
        eng = env.engine
        slots = env.builder.slots.tolist()
        assert mask[-1]
        for i in range(window):
            if i >= len(slots):
                assert not mask[i]
                continue
            n = int(eng.jobs.num_gpus[slots[i]])
            fits = n <= eng.free_gpus and eng.placement.place(
                n, eng.node_free, eng.gpu_load, eng.spec, slots[i]) is not None
            assert mask[i] == fits
        assert mask[:-1].any() or eng.done       # the agent is only asked when it has a choice
        _, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        done = term or trunc


def test_episode_reward_matches_episode_metrics(philly_env_kwargs):
    env = gym.make("DLCluster-v0", **philly_env_kwargs, reward={"scale": 3600.0, "util_weight": 0.3})
    rng = np.random.default_rng(0)
    env.reset(seed=11)
    total, jct_total, done = 0.0, 0.0, False
    while not done:
        _, r, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(env.unwrapped.action_masks()))))
        total += r
        jct_total += info["reward_jct"]
        done = term or trunc
    s = info["episode_summary"]
    assert jct_total == pytest.approx(-s["avg_jct"] * s["jobs"] / 3600.0, rel=1e-9)
    util = 0.3 * s["gpu_utilization"] * s["makespan"] / 3600.0
    assert total == pytest.approx(jct_total + util, rel=1e-9)


def test_split_windows_are_disjoint(philly_workload):
    train = DLClusterEnv(trace=philly_workload, episode_jobs=100, split="train")
    test = DLClusterEnv(trace=philly_workload, episode_jobs=100, split="test")
    assert train.starts.max() + 100 <= test.starts.min()
    env = DLClusterEnv(trace=philly_workload, episode_jobs=100, windows=[5, 9])
    env.reset(seed=0)
    assert env.window_start in (5, 9)


def test_episode_seconds(philly_workload):
    env = DLClusterEnv(trace=philly_workload, episode_seconds=6 * 3600.0)
    env.reset(seed=1, options={"start": 100})
    sub = env.engine.jobs.submit_time
    assert sub.max() < 6 * 3600.0 and len(sub) >= 1


def test_duration_window_shows_the_shortest_jobs(philly_workload):
    env = DLClusterEnv(trace=philly_workload, episode_jobs=120, window=4, window_order="duration", load=8.0)
    env.reset(seed=0)
    seen_long_queue = False
    done = False
    while not done:
        eng = env.engine
        queued = list(eng.queue)
        if len(queued) > 4:
            seen_long_queue = True
            work = np.asarray(eng.work)
            shortest = sorted(queued, key=lambda j: (work[j], queued.index(j)))[:4]
            assert env.builder.slots.tolist() == shortest
        _, _, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        done = term or trunc
    assert seen_long_queue
