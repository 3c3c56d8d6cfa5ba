"""Agents: the Deep Sets extractor, training (smoke), PolicyScheduler, the baseline adapter,
load_agent."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import MaskablePPO

import dlsched_gym  # noqa: F401  (registers the env ids)
from dlsched_gym import agents, baselines
from dlsched_gym.agents import (
    PolicyScheduler,
    SchedulerPolicy,
    SlotMaskablePolicy,
    load_agent,
    rollout,
    train,
)
from dlsched_gym.agents.policies import sha256_of
from dlsched_gym.agents.training import _best_recorded
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize
from tests.agents.observations import extractor_and_observation

SMALL = {"episode_jobs": 40, "window": 8}


@pytest.fixture(scope="module")
def env_kwargs(philly_workload):
    return {"trace": philly_workload, **SMALL}


def test_deep_sets_scores_follow_their_jobs(env_kwargs):
    ext, obs = extractor_and_observation(env_kwargs, "queue", 6)     # two empty slots
    perm = th.tensor([3, 1, 4, 0, 5, 2, 6, 7])
    shuffled = dict(obs, queue=obs["queue"][:, perm])
    with th.no_grad():
        a, b = ext(obs), ext(shuffled)
    k = 8
    assert th.allclose(a[:, k:], b[:, k:], atol=1e-6)          # context: invariant
    assert th.allclose(a[:, :k][:, perm], b[:, :k], atol=1e-6)  # scores: equivariant
    assert th.all(a[:, 6:k] == 0)                               # empty slots score 0


@pytest.mark.parametrize("order", ["arrival", "duration"])
def test_policy_scheduler_matches_env_rollout(env_kwargs, order):
    env = gym.make("DLCluster-v0", **env_kwargs, window_order=order)
    model = MaskablePPO(SlotMaskablePolicy, env, seed=3, device="cpu")
    in_env = rollout(model, env, seed=0, start=700)
    workload = env.unwrapped.engine.workload
    sched = PolicyScheduler(model, window_order=order)
    plain = summarize(Engine(workload, env.unwrapped.cluster_spec).run(sched))
    for key in ("avg_jct", "makespan", "gpu_utilization", "jobs_finished", "p99_jct"):
        assert plain[key] == pytest.approx(in_env[key], rel=1e-12), key
    assert sched.forced_starts == in_env["forced_starts"]


@pytest.mark.parametrize("name", ["fifo", "fifo-backfill", "sjf"])
@pytest.mark.parametrize("backend", ["python", "compiled"])
def test_scheduler_policy_reproduces_the_baseline(env_kwargs, name, backend):
    # On the compiled backend the policy reads the engine through the kernel's write-back.
    env = gym.make("DLCluster-v0", **env_kwargs, backend=backend)
    in_env = rollout(SchedulerPolicy(name, env), env, seed=0, start=300)
    plain = summarize(Engine(env.unwrapped.engine.workload, env.unwrapped.cluster_spec)
                      .run(baselines.make(name)))
    assert in_env["avg_jct"] == pytest.approx(plain["avg_jct"], rel=1e-12)


def test_train_smoke_resume_and_load(env_kwargs, tmp_path):
    kw = {**env_kwargs}
    out = train("maskable_ppo", env_kwargs=kw, timesteps=128, n_envs=1, seed=0, out_dir=tmp_path,
                progress=False, eval_freq=64, eval_windows=1, checkpoint_freq=64, bc_teacher="fifo",
                bc_steps=64, algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1})
    for name in ("model.zip", "best_model.zip", "config.json", "evaluations.csv", "monitor.csv"):
        assert (out / name).is_file(), name
    assert list((out / "checkpoints").glob("model_*_steps.zip"))
    assert list((out / "tb").iterdir())
    assert json.loads((out / "config.json").read_text())["algo"] == "maskable_ppo"
    train("maskable_ppo", env_kwargs=kw, timesteps=192, n_envs=1, seed=0, out_dir=tmp_path, progress=False,
          eval_freq=0, resume=True, algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1})
    model = MaskablePPO.load(str(out / "model.zip"))
    assert model.num_timesteps == 192
    sched = load_agent(out / "model.zip")
    assert isinstance(sched, PolicyScheduler) and sched.window == 8


def test_train_priority_mode_with_ppo(env_kwargs, tmp_path):
    out = train("ppo", env_kwargs={**env_kwargs, "action_mode": "priority"}, timesteps=64, n_envs=1,
                out_dir=tmp_path, progress=False, eval_freq=0, algo_kwargs={"n_steps": 64, "batch_size": 32,
                                                                            "n_epochs": 1})
    sched = load_agent(out / "model.zip")
    assert sched.mode == "priority"
    env = gym.make("DLCluster-v0", **env_kwargs)
    env.reset(seed=0, options={"start": 100})
    result = summarize(Engine(env.unwrapped.engine.workload, env.unwrapped.cluster_spec).run(sched))
    assert result["jobs_finished"] == SMALL["episode_jobs"]


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown algorithm"):
        train("sac", timesteps=1, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_agent(tmp_path / "missing.zip")
    with pytest.raises(ConfigError, match="unknown pretrained agent"):
        load_agent("pretrained:nope")
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "bogus.zip").write_bytes(b"not a model")
    import dlsched_gym.agents.policies as policies

    monkeypatch.setattr(policies.resources, "files", lambda _pkg: tmp_path)
    monkeypatch.setitem(policies.PRETRAINED, "bogus", ("bogus.zip", "0" * 64, "ppo"))
    with pytest.raises(ConfigError, match="refusing to unpickle"):
        load_agent("pretrained:bogus")


@pytest.mark.parametrize("name", sorted(agents.PRETRAINED))
def test_pretrained_agents_load_verified_with_their_recipe(name):
    from importlib import resources

    from dlsched_gym.agents.train_pretrained import RECIPES

    filename, digest, _ = agents.PRETRAINED[name]
    path = resources.files("dlsched_gym.agents").joinpath("pretrained", filename)
    assert path.is_file(), f"pretrained:{name} is registered but {filename} is not bundled"
    assert sha256_of(str(path)) == digest
    meta = json.loads(path.with_suffix(".json").read_text())
    recipe = RECIPES[name]["env_kwargs"]
    assert meta["sha256"] == digest and meta["env_kwargs"] == recipe
    sched = load_agent(f"pretrained:{name}")
    assert sched.window == 32 and sched.window_order == recipe.get("window_order", "arrival")
    assert sched.predictor == recipe.get("predictor", "oracle")
    assert sched.round_seconds == (recipe["round_seconds"] if recipe.get("preemption") else None)
    assert sched.R == (32 if recipe.get("preemption") else 0)


def test_resumed_training_keeps_its_evaluations_and_best_score(env_kwargs, tmp_path):
    kw = dict(env_kwargs=env_kwargs, n_envs=1, seed=0, out_dir=tmp_path, progress=False, eval_freq=64,
              eval_windows=1, checkpoint_freq=64,
              algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1})
    out = train("maskable_ppo", timesteps=128, **kw)
    first = (out / "evaluations.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in first[1:]] == ["0", "64", "128"]
    best = min(float(r.split(",")[1]) for r in first[1:])
    assert _best_recorded(out) == best
    train("maskable_ppo", timesteps=192, resume=True, **kw)
    resumed = (out / "evaluations.csv").read_text().splitlines()
    assert resumed[:len(first)] == first  # appended to, not restarted
    assert [r.split(",")[0] for r in resumed[len(first):]] == ["128", "192"]
    assert _best_recorded(out) == min(float(r.split(",")[1]) for r in resumed[1:])
    # a fresh run in the same folder starts a new file
    train("maskable_ppo", timesteps=64, **kw)
    assert [r.split(",")[0] for r in (out / "evaluations.csv").read_text().splitlines()[1:]] == ["0", "64"]


@pytest.mark.parametrize("vec_env", ["subproc", "dummy"])
def test_vectorized_masks_come_with_the_steps(env_kwargs, vec_env):
    vec = agents.make_vec_env("DLCluster-v0", dict(env_kwargs, episode_jobs=12), 2, seed=0,
                              vec_env=vec_env)
    inner = vec.venv
    assert isinstance(inner, agents.training.MaskFromInfo)
    assert type(inner.venv).__name__ == {"subproc": "SubprocVecEnv", "dummy": "DummyVecEnv"}[vec_env]
    vec.reset()
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(150):
        kept = np.stack(vec.env_method("action_masks"))
        asked = np.stack(inner.venv.env_method("action_masks"))     # a round trip to each worker
        assert np.array_equal(kept, asked)
        _, _, dones, _ = vec.step(np.array([rng.choice(np.flatnonzero(m)) for m in kept]))
        resets += int(dones.sum())
    assert resets > 0                      # auto-resets happened: their first masks were kept too
    assert vec.env_method("get_wrapper_attr", "K") == [8, 8]   # other methods still reach the envs
    vec.close()
    with pytest.raises(ConfigError, match="vec_env must be one of"):
        agents.make_vec_env("DLCluster-v0", env_kwargs, 2, seed=0, vec_env="ray")
