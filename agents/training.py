"""Training DLCluster agents with stable-baselines3: vectorized envs, TensorBoard logs, checkpoints
and resume, periodic held-out evaluation against a baseline, and an optional behaviour-cloning
warm start from any baseline scheduler.

Output directory layout (``train(..., out_dir=D)``)::

    D/config.json            algorithm, env id and options, seeds, timesteps
    D/model.zip              the final model
    D/best_model.zip         the model with the best held-out average JCT so far
    D/checkpoints/*.zip      periodic checkpoints (``resume=True`` continues from the newest)
    D/**/*_vecnormalize.pkl  the reward-normalization statistics saved with each model above
                             (a resumed run continues with its checkpoint's)
    D/evaluations.csv        timesteps, agent and baseline average JCT on the held-out windows
                             (a resumed run appends, and keeps the best score recorded in it)
    D/monitor.csv            per-episode return, length and average JCT (VecMonitor)
    D/tb/                    TensorBoard logs
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnvWrapper,
    VecMonitor,
    VecNormalize,
)
from tqdm import tqdm

from dlsched_gym import baselines
from dlsched_gym.agents.networks import DeepSetsExtractor, SlotActorCriticPolicy, SlotMaskablePolicy
from dlsched_gym.agents.policies import SchedulerPolicy, algorithms, predict_action, rollout
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.metrics import summarize


def _make_env(env_id: str, env_kwargs: Mapping[str, Any]) -> Callable[[], gym.Env]:
    def init() -> gym.Env:
        import dlsched_gym  # noqa: F401  (registers the env ids in a fresh subprocess)

        return gym.make(env_id, **env_kwargs)

    return init


class MaskFromInfo(VecEnvWrapper):
    """Answers ``env_method("action_masks")`` (what MaskablePPO asks before every step) from the
    masks the DLCluster envs return in their step and reset infos (``info["action_mask"]``), so a
    SubprocVecEnv step costs one round trip to each worker instead of two."""

    def reset(self):
        """Reset every env; keep their first masks."""
        obs = self.venv.reset()
        self._masks = [info["action_mask"] for info in self.venv.reset_infos]
        return obs

    def step_wait(self):
        """Step every env; keep the masks of the states they are now in (after an auto-reset:
        the new episode's)."""
        obs, rewards, dones, infos = self.venv.step_wait()
        self._masks = [reset_info["action_mask"] if done else info["action_mask"]
                       for done, info, reset_info in zip(dones, infos, self.venv.reset_infos)]
        return obs, rewards, dones, infos

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs):
        """The kept masks for ``action_masks``; anything else goes to the envs."""
        if method_name == "action_masks" and not method_args and not method_kwargs:
            idx = range(self.num_envs) if indices is None else ([indices] if isinstance(indices, int)
                                                                else indices)
            return [self._masks[i].copy() for i in idx]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)


#: ``vec_env`` choices of :func:`make_vec_env` and :func:`train`.
VEC_ENVS = ("subproc", "dummy")


def make_vec_env(env_id: str, env_kwargs: Mapping[str, Any] | None, n_envs: int, seed: int,
                 monitor_file: str | None = None, vec_env: str = "subproc"):
    """``n_envs`` copies of the env seeded ``seed + i``, wrapped in a VecMonitor that logs each
    episode's ``avg_jct``: worker processes (``vec_env="subproc"``, a SubprocVecEnv behind
    :class:`MaskFromInfo`) or all in this process (``"dummy"``, a DummyVecEnv; always for one env).
    On the compiled backend a step takes tens of microseconds, less than a round trip to a worker,
    so ``"dummy"`` is the faster choice unless the policy leaves cores idle (measured in the
    README)."""
    if n_envs < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
    if vec_env not in VEC_ENVS:
        raise ConfigError(f"vec_env must be one of {VEC_ENVS}, got {vec_env!r}")
    fns = [_make_env(env_id, dict(env_kwargs or {})) for _ in range(n_envs)]
    if n_envs == 1:
        vec = DummyVecEnv(fns)
    else:
        vec = MaskFromInfo(SubprocVecEnv(fns) if vec_env == "subproc" else DummyVecEnv(fns))
    vec.seed(seed)
    return VecMonitor(vec, filename=monitor_file, info_keywords=("avg_jct",))


def _policy_for(algo: str, action_mode: str) -> tuple[Any, dict]:
    if algo == "dqn":
        if action_mode != "discrete":
            raise ConfigError("dqn needs action_mode='discrete'")
        return "MultiInputPolicy", {"features_extractor_class": DeepSetsExtractor, "net_arch": [64]}
    if algo == "maskable_ppo":
        if action_mode != "discrete":
            raise ConfigError("maskable_ppo needs action_mode='discrete' (use ppo for 'priority')")
        return SlotMaskablePolicy, {}
    return SlotActorCriticPolicy, {}


class HeldOutEvaluation(BaseCallback):
    """At the start and every ``eval_freq`` timesteps, play the model on fixed held-out windows and
    compare its average JCT with a baseline's on the same windows (logged as ``eval/*`` in
    TensorBoard, appended to ``evaluations.csv``; the best model is saved as ``best_model.zip``)."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], eval_freq: int, out_dir: Path,
                 n_windows: int = 4, baseline: str = "fifo", seed: int = 10_000,
                 resume: bool = False) -> None:
        super().__init__()
        self.env = gym.make(env_id, **env_kwargs)
        starts = self.env.unwrapped.starts
        self.starts = [int(s) for s in starts[np.linspace(0, len(starts) - 1, n_windows).astype(int)]]
        self.eval_freq = int(eval_freq)
        self.out_dir = out_dir
        self.seed = seed
        self.baseline = baseline
        # A resumed run keeps its evaluations.csv and the best score in it (best_model.zip is only
        # replaced by a better model); a fresh run starts a new file.
        self.best = _best_recorded(out_dir) if resume else float("inf")
        if not resume:
            (out_dir / "evaluations.csv").unlink(missing_ok=True)
        self._last = 0
        self.baseline_jct = float(np.mean([self._baseline_jct(s) for s in self.starts]))

    def _baseline_jct(self, start: int) -> float:
        """The baseline's average JCT on the window, in the plain engine with the env's settings
        (inside the env it could only start visible jobs)."""
        env = self.env.unwrapped
        env.reset(seed=self.seed, options={"start": start})
        engine = Engine(env.engine.workload, env.cluster_spec, placement=env.placement_option,
                        perf=env.perf, predictor=env.predictor_name)
        return summarize(engine.run(baselines.make(self.baseline)))["avg_jct"]

    def evaluate(self) -> float:
        """Mean average JCT of the current model on the held-out windows."""
        return float(np.mean([rollout(self.model, self.env, seed=self.seed, start=s)["avg_jct"]
                              for s in self.starts]))

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps
        self._record()

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.eval_freq:
            self._last = self.num_timesteps
            self._record()
        return True

    def _record(self) -> None:
        jct = self.evaluate()
        self.logger.record("eval/avg_jct", jct)
        self.logger.record(f"eval/{self.baseline}_avg_jct", self.baseline_jct)
        self.logger.record(f"eval/jct_over_{self.baseline}", jct / self.baseline_jct)
        path = self.out_dir / "evaluations.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["timesteps", "avg_jct", f"{self.baseline}_avg_jct"])
            w.writerow([self.num_timesteps, jct, self.baseline_jct])
        if jct < self.best:
            self.best = jct
            _atomic_save(self.model, self.out_dir / "best_model.zip")


def _best_recorded(out_dir: Path) -> float:
    """The lowest average JCT in ``out_dir/evaluations.csv`` whose model is in ``best_model.zip``
    (inf when there is no such file)."""
    path = out_dir / "evaluations.csv"
    if not path.is_file() or not (out_dir / "best_model.zip").is_file():
        return float("inf")
    with open(path, newline="") as f:
        jcts = [float(row["avg_jct"]) for row in csv.DictReader(f) if row.get("avg_jct")]
    return min(jcts, default=float("inf"))


class _ProgressBar(BaseCallback):
    """A tqdm bar over timesteps (SB3's own needs ``rich``)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.model.num_timesteps, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.model.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def _atomic_save(model, path: Path) -> None:
    """Save ``model`` to ``path`` (and, when its env is a VecNormalize, the normalization statistics
    to :func:`_stats_path` of it, first), each through a temporary file renamed into place."""
    norm = model.get_vec_normalize_env()
    if norm is not None:
        stats = _stats_path(path)
        tmp = stats.with_name(stats.stem + ".tmp.pkl")
        norm.save(str(tmp))
        os.replace(tmp, stats)
    tmp = path.with_name(path.stem + ".tmp.zip")
    model.save(str(tmp))
    os.replace(tmp, path)


def _stats_path(model_path: Path) -> Path:
    """Where the VecNormalize statistics saved with ``model_path`` go: ``<stem>_vecnormalize.pkl``."""
    return model_path.with_name(model_path.stem + "_vecnormalize.pkl")


class _AtomicCheckpoint(CheckpointCallback):
    """SB3's CheckpointCallback, but each checkpoint (and its VecNormalize statistics) is written to a
    temporary file and renamed into place, so a run killed while saving leaves no partial
    ``model_<N>_steps.zip``."""

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            _atomic_save(self.model, Path(self._checkpoint_path(extension="zip")))
        return True


def _checkpoints(folder: Path) -> list[Path]:
    """The checkpoints ``model_<N>_steps.zip`` in ``folder``, newest (largest N) first."""
    found = []
    for p in folder.glob("model_*_steps.zip"):
        m = re.fullmatch(r"model_(\d+)_steps\.zip", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def _load_checkpoint(cls, folder: Path, **kwargs) -> tuple[Any, Path | None]:
    """The newest checkpoint in ``folder`` that loads, and its path ((None, None) if none does); one
    that does not load (cut short by a kill while it was saved) is skipped with a warning."""
    for path in _checkpoints(folder):
        try:
            return cls.load(str(path), **kwargs), path
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(f"skipping checkpoint {path}: it does not load ({exc})", stacklevel=3)
    return None, None


def _scheduler_env(env_id: str, env_kwargs: Mapping[str, Any] | None) -> gym.Env:
    """An env for a :class:`SchedulerPolicy`, on the Python backend unless ``env_kwargs`` say
    otherwise: the policy reads the live engine at every step, which the compiled backend would
    have to copy out each time."""
    return gym.make(env_id, **{"backend": "python", **dict(env_kwargs or {})})


def collect_demonstrations(teacher, env_id: str, env_kwargs: Mapping[str, Any] | None, steps: int,
                           seed: int = 0, learner=None
                           ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Play ``steps`` env steps and label every state with ``teacher``'s action (a baseline name or
    Scheduler); returns stacked observations, the teacher's actions and the action masks.

    Without ``learner`` the teacher acts (plain demonstrations). With a ``learner`` model, the
    learner acts (sampling from its policy) and the teacher only labels the states it visits
    (DAgger); the teacher must then be re-synchronizable (a ``sync(view)`` method, as LAS and SRTF
    have), since what it would do depends on the state the learner left."""
    env = _scheduler_env(env_id, env_kwargs)
    policy = SchedulerPolicy(teacher, env, seed=seed)
    if learner is not None and policy.stateless is False:
        raise ConfigError(f"DAgger needs a teacher with sync(view); {policy.scheduler.name!r} has none")
    obs, _ = env.reset(seed=seed)
    keys = list(obs)
    buf: dict[str, list] = {k: [] for k in keys}
    actions, masks = [], []
    for _ in tqdm(range(steps), desc="demonstrations" if learner is None else "DAgger labels",
                  unit="step", leave=False, disable=steps < 5000):
        mask = env.unwrapped.action_masks()
        action, _ = policy.predict(obs)
        for k in keys:
            buf[k].append(obs[k])
        actions.append(int(action))
        masks.append(mask)
        if learner is not None:
            action = predict_action(learner, obs, mask, deterministic=False)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return {k: np.stack(v) for k, v in buf.items()}, np.array(actions), np.stack(masks)


def behaviour_cloning(model, teacher, env_id: str, env_kwargs: Mapping[str, Any] | None = None, *,
                      steps: int = 5000, epochs: int = 5, batch_size: int = 256, lr: float = 1e-3,
                      seed: int = 0, dagger_rounds: int = 0) -> float:
    """Warm-start ``model``'s policy by imitating ``teacher`` (maximum likelihood of its actions,
    under the action masks for MaskablePPO). Actor-critic algorithms only. Returns the final
    mean negative log-likelihood.

    ``dagger_rounds`` > 0 then runs that many DAgger rounds (Ross et al., AISTATS 2011): the
    policy plays ``steps`` more steps, the teacher labels the states it reached, and the policy is
    trained again on all the labels so far; this corrects the drift into states the teacher never
    shows (needs a teacher with ``sync(view)``)."""
    if not hasattr(model.policy, "evaluate_actions"):
        raise ConfigError("behaviour cloning needs an actor-critic algorithm (maskable_ppo, ppo, a2c)")
    if not (isinstance(dagger_rounds, int) and dagger_rounds >= 0):
        raise ConfigError(f"dagger_rounds must be an integer >= 0, got {dagger_rounds!r}")
    obs, actions, masks = collect_demonstrations(teacher, env_id, env_kwargs, steps, seed)
    loss = _fit(model.policy, obs, actions, masks, epochs, batch_size, lr, seed)
    for r in range(dagger_rounds):
        o, a, m = collect_demonstrations(teacher, env_id, env_kwargs, steps, seed + 1 + r, learner=model)
        obs = {k: np.concatenate([obs[k], o[k]]) for k in obs}
        actions = np.concatenate([actions, a])
        masks = np.concatenate([masks, m])
        loss = _fit(model.policy, obs, actions, masks, epochs, batch_size, lr, seed + 1 + r)
    return loss


def _fit(policy, obs: dict[str, np.ndarray], actions: np.ndarray, masks: np.ndarray, epochs: int,
         batch_size: int, lr: float, seed: int) -> float:
    """Maximum-likelihood epochs of ``policy`` on labelled states; the last epoch's mean NLL."""
    policy.set_training_mode(True)
    opt = th.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    maskable = "action_masks" in policy.evaluate_actions.__code__.co_varnames
    loss_value = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(actions))
        losses = []
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batch = {k: th.as_tensor(v[idx], device=policy.device) for k, v in obs.items()}
            act = th.as_tensor(actions[idx], device=policy.device)
            if maskable:
                _, logp, _ = policy.evaluate_actions(batch, act, action_masks=masks[idx])
            else:
                _, logp, _ = policy.evaluate_actions(batch, act)
            loss = -logp.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        loss_value = float(np.mean(losses))
    policy.set_training_mode(False)
    return loss_value


def train(algo: str = "maskable_ppo", env_id: str = "DLCluster-v0",
          env_kwargs: Mapping[str, Any] | None = None, timesteps: int = 100_000, n_envs: int = 4,
          seed: int = 0, out_dir: str | Path = "runs/agent", progress: bool = True, resume: bool = False,
          eval_freq: int = 20_000, eval_windows: int = 4, eval_baseline: str = "fifo",
          checkpoint_freq: int | None = None, bc_teacher: Any = None, bc_steps: int = 5000,
          bc_epochs: int = 5, bc_dagger_rounds: int = 0, normalize_reward: bool = True,
          policy_kwargs: Mapping[str, Any] | None = None, algo_kwargs: Mapping[str, Any] | None = None,
          torch_threads: int | None = 1, vec_env: str = "subproc") -> Path:
    """Train an agent on ``env_id`` and return the output directory (see the module docstring).

    Args:
        algo: ``maskable_ppo`` (default), ``ppo``, ``a2c`` or ``dqn``. Algorithms without masks get
            ``invalid_action="wait"`` unless ``env_kwargs`` says otherwise.
        env_id: a registered DLCluster id.
        env_kwargs: env options; training uses ``split="train"`` and evaluation ``split="test"``
            unless ``env_kwargs`` sets ``split`` or ``windows``.
        timesteps: total env steps (over all envs).
        n_envs: parallel envs, seeded ``seed + i``.
        seed: seeds the model and the envs.
        out_dir: where logs, checkpoints and models go.
        progress: show a progress bar.
        resume: continue from the newest checkpoint in ``out_dir`` (to ``timesteps`` in total).
        eval_freq: evaluate on held-out windows every this many timesteps (0: never).
        eval_windows: number of held-out windows.
        eval_baseline: the baseline the evaluation compares with.
        checkpoint_freq: timesteps between checkpoints (default ``eval_freq`` or 10,000).
        bc_teacher: warm-start by behaviour cloning of this baseline (a name such as ``"fifo"``, or a
            Scheduler instance).
        bc_steps: demonstration steps for the warm start.
        bc_epochs: passes over the demonstrations.
        bc_dagger_rounds: DAgger rounds after the warm start (see :func:`behaviour_cloning`).
        normalize_reward: scale rewards by a running estimate of the return's spread
            (``VecNormalize(norm_obs=False)``); observations are never normalized, so a saved model
            needs no statistics at inference.
        policy_kwargs, algo_kwargs: passed to the SB3 algorithm.
        torch_threads: ``torch.set_num_threads`` for this process (small networks train fastest on
            one thread); None leaves it alone.
        vec_env: ``"subproc"`` (worker processes) or ``"dummy"`` (every env in this process); see
            :func:`make_vec_env`.
    """
    algos = algorithms()
    if algo not in algos:
        raise ConfigError(f"unknown algorithm {algo!r}; expected one of {sorted(algos)}")
    if torch_threads is not None:
        th.set_num_threads(torch_threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(env_kwargs or {})
    if algo != "maskable_ppo":
        kwargs.setdefault("invalid_action", "wait")
    pinned = "windows" in kwargs or "split" in kwargs
    train_kwargs = kwargs if pinned else {**kwargs, "split": "train"}
    eval_kwargs = kwargs if pinned else {**kwargs, "split": "test"}
    action_mode = kwargs.get("action_mode", "discrete")
    policy, default_pk = _policy_for(algo, action_mode)

    vec = make_vec_env(env_id, train_kwargs, n_envs, seed, str(out / "monitor.csv"), vec_env)
    config = {"algo": algo, "env_id": env_id, "timesteps": timesteps, "n_envs": n_envs, "seed": seed,
              "vec_env": vec_env,
              "env_kwargs": {k: (v if isinstance(v, (int, float, str, list, tuple, dict, type(None)))
                                 else repr(v)) for k, v in kwargs.items()},
              "bc_teacher": getattr(bc_teacher, "name", bc_teacher), "eval_baseline": eval_baseline}
    tmp = out / "config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, out / "config.json")

    if normalize_reward:
        vec = VecNormalize(vec, norm_obs=False, norm_reward=True,
                           gamma=float(dict(algo_kwargs or {}).get("gamma", 0.99)))
    ckpt_dir = out / "checkpoints"
    cls = algos[algo]
    model, latest = (_load_checkpoint(cls, ckpt_dir, env=vec, tensorboard_log=str(out / "tb"), device="cpu")
                     if resume else (None, None))
    if latest is not None and normalize_reward and _stats_path(latest).is_file():
        # continue with the reward statistics the checkpoint was trained with, not fresh ones
        vec = VecNormalize.load(str(_stats_path(latest)), vec.venv)
        model.set_env(vec)
    if model is None:
        model = cls(policy, vec, seed=seed, verbose=0, tensorboard_log=str(out / "tb"), device="cpu",
                    policy_kwargs={**default_pk, **dict(policy_kwargs or {})}, **dict(algo_kwargs or {}))
        if bc_teacher:
            behaviour_cloning(model, bc_teacher, env_id, train_kwargs, steps=bc_steps, epochs=bc_epochs,
                              dagger_rounds=bc_dagger_rounds,
                              seed=seed)
    callbacks: list[BaseCallback] = []
    every = checkpoint_freq or eval_freq or 10_000
    callbacks.append(_AtomicCheckpoint(save_freq=max(every // n_envs, 1), save_path=str(ckpt_dir),
                                        name_prefix="model"))
    if eval_freq:
        callbacks.append(HeldOutEvaluation(env_id, eval_kwargs, eval_freq, out, eval_windows,
                                           eval_baseline, seed=seed + 10_000, resume=latest is not None))
    if progress:
        callbacks.append(_ProgressBar(timesteps))
    remaining = timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=latest is None,
                    tb_log_name="run")
    _atomic_save(model, out / "model.zip")
    vec.close()
    return out


def evaluate_model(model, env_id: str = "DLCluster-v0", env_kwargs: Mapping[str, Any] | None = None,
                   starts: Sequence[int] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Episode summaries of ``model`` (or a baseline name) on the env's windows ``starts``."""
    if isinstance(model, str):
        env = _scheduler_env(env_id, env_kwargs)
        player = SchedulerPolicy(model, env, seed=seed)
    else:
        env = gym.make(env_id, **dict(env_kwargs or {}))
        player = model
    starts = list(env.unwrapped.starts[:1]) if starts is None else list(starts)
    return [rollout(player, env, seed=seed, start=s) for s in starts]


__all__ = ["HeldOutEvaluation", "behaviour_cloning", "collect_demonstrations", "evaluate_model",
           "make_vec_env", "train"]
