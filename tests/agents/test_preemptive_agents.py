"""Agents in the env with ``preemption=True``: the extractor's running slots, PolicyScheduler
against the env rollout, a preemptive baseline as a teacher, training and loading."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import MaskablePPO

import dlsched_gym  # noqa: F401  (registers the env ids)
from dlsched_gym import baselines
from dlsched_gym.agents import (
    PolicyScheduler,
    SchedulerPolicy,
    SlotMaskablePolicy,
    load_agent,
    rollout,
    train,
)
from dlsched_gym.agents.training import collect_demonstrations
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize
from dlsched_gym.workload import from_records
from tests.agents.observations import extractor_and_observation

PREEMPTIVE = {"episode_jobs": 40, "window": 8, "preemption": True, "running_window": 6,
              "round_seconds": 600.0}


@pytest.fixture(scope="module")
def env_kwargs(philly_workload):
    return {"trace": philly_workload, **PREEMPTIVE}


def test_running_scores_follow_their_jobs(env_kwargs):
    ext, obs = extractor_and_observation(env_kwargs, "running_jobs", 5)   # one empty running slot
    perm = th.tensor([2, 0, 4, 1, 3, 5])
    shuffled = dict(obs, running_jobs=obs["running_jobs"][:, perm])
    with th.no_grad():
        a, b = ext(obs), ext(shuffled)
    k, r = 8, 6
    assert a.shape == (1, k + r + 64)
    assert th.allclose(a[:, k + r:], b[:, k + r:], atol=1e-6)                 # context: invariant
    assert th.allclose(a[:, k:k + r][:, perm], b[:, k:k + r], atol=1e-6)      # equivariant
    assert a[0, k + 5] == 0                                                   # empty slot


def test_policy_logits_follow_the_env_action_order(env_kwargs):
    env = gym.make("DLCluster-v0", **env_kwargs)
    model = MaskablePPO(SlotMaskablePolicy, env, seed=0, device="cpu")
    obs, _ = env.reset(seed=0)
    tensor, _ = model.policy.obs_to_tensor(obs)
    with th.no_grad():
        features = model.policy.extract_features(tensor)
        logits = model.policy.action_net(model.policy.mlp_extractor.forward_actor(features))
    assert logits.shape == (1, 8 + 1 + 6)
    assert th.equal(logits[0, :8], features[0, :8])                 # start slots
    assert th.equal(logits[0, 9:], features[0, 8:14])               # then WAIT, then preemptions


@pytest.mark.parametrize("start", [700])
def test_policy_scheduler_matches_env_rollout(env_kwargs, start):
    env = gym.make("DLCluster-v0", **dict(env_kwargs, episode_jobs=15))
    model = MaskablePPO(SlotMaskablePolicy, env, seed=3, device="cpu")
    in_env = rollout(model, env, seed=0, start=start)
    preempted = sum(env.unwrapped.engine.preemptions)
    assert preempted > 0
    sched = PolicyScheduler(model, round_seconds=600.0)
    plain_engine = Engine(env.unwrapped.engine.workload, env.unwrapped.cluster_spec)
    plain = summarize(plain_engine.run(sched))
    for key in ("avg_jct", "makespan", "gpu_utilization", "jobs_finished", "p99_jct"):
        assert plain[key] == pytest.approx(in_env[key], rel=1e-12), key
    assert sum(plain_engine.preemptions) == preempted
    assert sched.forced_starts == in_env["forced_starts"]


def test_las_as_a_teacher_reproduces_las():
    # 1-GPU jobs on 1-GPU nodes: where a job goes cannot matter, and K = R = 16 show every job,
    # so LAS acting through the env's actions (preempt, start, wait) at the env's 120 s rounds
    # makes exactly the decisions of LAS with 120 s rounds in the plain engine.
    rng = np.random.default_rng(0)
    trace = from_records([{"submit_time": float(t), "duration": float(d), "num_gpus": 1}
                          for t, d in zip(np.sort(rng.uniform(0, 3000, 30)).round(),
                                          rng.lognormal(6, 1.2, 30).round() + 1)], name="las")
    env = gym.make("DLCluster-v0", trace=trace, cluster="4x1", episode_jobs=30, load=1.0, window=16,
                   preemption=True, running_window=16, round_seconds=120.0)
    in_env = rollout(SchedulerPolicy(baselines.make("las", round_seconds=120.0), env), env, seed=0)
    assert sum(env.unwrapped.engine.preemptions) > 0
    plain = summarize(Engine(env.unwrapped.engine.workload, env.unwrapped.cluster_spec)
                      .run(baselines.make("las", round_seconds=120.0)))
    assert in_env["avg_jct"] == pytest.approx(plain["avg_jct"], rel=1e-12)


def test_train_with_a_preemptive_teacher_and_dagger_then_load(env_kwargs, tmp_path):
    kw = dict(env_kwargs, predictor="history")
    out = train("maskable_ppo", env_kwargs=kw, timesteps=128, n_envs=1, seed=0, out_dir=tmp_path,
                progress=False, eval_freq=0, bc_teacher=baselines.make("las", round_seconds=600.0),
                bc_steps=128, bc_epochs=1, bc_dagger_rounds=1,
                algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1})
    sched = load_agent(out / "model.zip")
    assert sched.R == 6 and sched.round_seconds == 600.0
    assert sched.predictor == "history"   # evaluations with predictor "auto" give it what it saw
    with pytest.raises(ConfigError, match="round_seconds applies only"):
        PolicyScheduler(MaskablePPO(SlotMaskablePolicy, gym.make("DLCluster-v0", episode_jobs=40),
                                    device="cpu"), round_seconds=60.0)


def test_dagger_labels_the_states_the_learner_reaches(env_kwargs):
    env = gym.make("DLCluster-v0", **env_kwargs)
    learner = MaskablePPO(SlotMaskablePolicy, env, seed=0, device="cpu")
    obs, actions, masks = collect_demonstrations(baselines.make("las", round_seconds=600.0), "DLCluster-v0",
                                                 env_kwargs, 200, seed=0, learner=learner)
    assert len(actions) == 200 and masks[np.arange(200), actions].all()   # labels the mask allows
    teacher_only = collect_demonstrations(baselines.make("las", round_seconds=600.0), "DLCluster-v0",
                                          env_kwargs, 200, seed=0)
    assert not np.array_equal(obs["queue"], teacher_only[0]["queue"])     # other states visited
    with pytest.raises(ConfigError, match="DAgger needs a teacher with sync"):
        collect_demonstrations("fifo", "DLCluster-v0", env_kwargs, 10, learner=learner)
