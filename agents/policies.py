"""Bridges between trained models, baseline schedulers and the environment.

- :class:`PolicyScheduler`: a trained SB3 model as a :class:`~dlsched_gym.scheduler.Scheduler`, so
  the plain engine (and ``dlsched_gym.evaluate``) scores it beside the baselines. It rebuilds, from
  the :class:`~dlsched_gym.scheduler.ClusterView` and a :class:`~dlsched_gym.scheduler.Plan`, the
  exact observations and masks the env would show, and follows the env's rules (auto-advance when
  nothing visible fits, forced start on a stall, an invalid action counts as WAIT).
- :class:`SchedulerPolicy`: any baseline scheduler acting inside the env with SB3's ``predict``
  signature (imitation learning, sanity checks).
- :func:`load_agent`: a ``.zip`` path or ``pretrained:<name>`` to a :class:`PolicyScheduler`.
- :func:`rollout`: one episode of a model or policy in the env.

SB3 ``.zip`` files contain pickled Python objects: loading one can run arbitrary code. Only load
models you trained yourself or whose checksum you trust; bundled ones are verified against the
sha256 recorded in :data:`PRETRAINED` before loading.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dlsched_gym.engine import FINISHED
from dlsched_gym.env import DEFAULT_ROUND_SECONDS, ObservationBuilder
from dlsched_gym.errors import ConfigError
from dlsched_gym.placement import make_placement
from dlsched_gym.scheduler import Preempt, Start

#: Bundled agents: name -> (file in agents/pretrained/, sha256, algorithm).
PRETRAINED: dict[str, tuple[str, str, str]] = {
    "philly": ("philly.zip", "ace688641c12686d4a2ec3c41fbcd79f4db7b300a6e39aadbd8f3daff9a7f301",
               "maskable_ppo"),
    "philly-preemptive": ("philly-preemptive.zip",
                          "54a6b2bcad0956a00c17c0c788bd48571e0011cf866e0c21ad74b3423dea3f3c",
                          "maskable_ppo"),
}


def algorithms() -> dict[str, type]:
    """The supported SB3 algorithms by name."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    return {"maskable_ppo": MaskablePPO, "ppo": PPO, "a2c": A2C, "dqn": DQN}


def _is_maskable(model) -> bool:
    from sb3_contrib import MaskablePPO

    return isinstance(model, MaskablePPO)


def predict_action(model, obs, mask: np.ndarray | None, deterministic: bool = True):
    """``model.predict`` for one observation, passing the mask to maskable models."""
    if _is_maskable(model):
        action, _ = model.predict(obs, action_masks=mask, deterministic=deterministic)
    else:
        action, _ = model.predict(obs, deterministic=deterministic)
    return action


class PolicyScheduler:
    """A trained model (SB3, DLCluster observation and action spaces) as a Scheduler.

    Args:
        model: the SB3 model (or anything with ``predict`` and the env's spaces).
        placement: the placement strategy the engine uses (decides which jobs "fit"); must match
            the engine's, as in the env.
        window_order: the env's ``window_order`` the model was trained with.
        name: the name in results.
        deterministic: act greedily.
        round_seconds: for a model trained with ``preemption=True`` (its observations have
            ``running_jobs``), the env's ``round_seconds`` (default the env's default); the engine
            then stops at the same rounds and the model's ``Preempt`` choices become ops.
        predictor: the env's ``predictor`` the model was trained with; evaluations with
            ``predictor="auto"`` give the engine this one, so the model sees the durations it
            learned from.
    """

    round_seconds = None

    def __init__(self, model, *, placement: str = "consolidated", window_order: str = "arrival",
                 name: str = "rl-policy", deterministic: bool = True,
                 round_seconds: float | None = None, predictor: str = "oracle") -> None:
        space = model.observation_space
        if not isinstance(space, gym.spaces.Dict) or "queue" not in space.spaces:
            raise ConfigError("PolicyScheduler needs a model trained on DLCluster's Dict observations "
                              f"(got observation space {space})")
        self.model = model
        self.name = name
        self.window = int(space["queue"].shape[0])
        self.predictor = predictor
        #: R, running-job slots (0: the model cannot preempt)
        self.R = int(space["running_jobs"].shape[0]) if "running_jobs" in space.spaces else 0
        if self.R:
            self.round_seconds = DEFAULT_ROUND_SECONDS if round_seconds is None else float(round_seconds)
        elif round_seconds is not None:
            raise ConfigError("round_seconds applies only to a model trained with preemption=True")
        self.mode = "discrete" if isinstance(model.action_space, gym.spaces.Discrete) else "priority"
        self.deterministic = deterministic
        self._placement = make_placement(placement)
        self.window_order = window_order
        self.invalid_actions = 0
        self.forced_starts = 0

    @classmethod
    def for_env(cls, model, env_kwargs: dict[str, Any], **kwargs: Any) -> PolicyScheduler:
        """A PolicyScheduler set up like the env the model was trained in (``env_kwargs``: its
        ``window_order``, ``predictor`` and, with ``preemption``, ``round_seconds``); ``kwargs``
        go to the constructor."""
        return cls(model, window_order=env_kwargs.get("window_order", "arrival"),
                   round_seconds=env_kwargs.get("round_seconds") if env_kwargs.get("preemption") else None,
                   predictor=env_kwargs.get("predictor", "oracle"), **kwargs)

    def reset(self, spec, jobs, rng) -> None:
        """Bind to a simulation."""
        self.builder = ObservationBuilder(spec, self._placement, self.window, self.window_order,
                                          preempt_window=self.R)
        self.builder.service = self._service
        self.builder.bind(jobs.num_gpus, jobs.submit_time)
        self._num_jobs = jobs.n
        self._arrived = 0
        self.invalid_actions = 0
        self.forced_starts = 0

    def _service(self, job: int) -> tuple[float, float, float]:
        """The builder's ``service`` on the plan: what the env's engine would report after the ops
        chosen so far at this instant (started and preempted jobs have just changed state)."""
        view = self._view
        since = 0.0
        if job in self._running_set and job not in self._started and job not in self._preempted:
            since = view.now - view.running_since(job)
        return view.attained_service(job), view.executed_time(job), since

    def schedule(self, view):
        """Ask the model, action by action, exactly as the env would."""
        self._arrived += len(view.new_jobs)
        arrivals_left = self._num_jobs - self._arrived
        b = self.builder
        K = self.window
        now = view.now
        plan = view.plan()
        pending = list(view.queue)
        running = list(view.running)
        ops: list = []
        self._view = view
        self._running_set = set(running)
        started = self._started = set()
        preempted = self._preempted = set()

        def start(slot: int) -> None:
            j = b.slot_list[slot]
            gpus = plan.place(j)
            ops.append(Start(j, gpus))
            b.started(j, now)
            running.append(j)
            pending.remove(j)
            started.add(j)

        def preempt(slot: int) -> None:
            j = b.run_slot_list[slot]
            plan.release(view.allocation(j))
            ops.append(Preempt(j))
            running.remove(j)
            pending.append(j)
            preempted.add(j)

        while True:
            b.predict(pending if b.by_duration else pending[:K], view.predict_duration)
            if not b.update_mask(pending, plan.node_free, plan.free_gpus, plan.gpu_load, len(pending),
                                 running, preempted, started):
                return ops
            b.update_features(now, pending, len(pending), plan.node_free, plan.free_gpus, running,
                              len(running), arrivals_left)
            obs = b.observe()
            action = predict_action(self.model, obs, b.mask.copy(), self.deterministic)
            if self.mode == "priority":
                slots = b.slots
                for slot in b.priority_order(np.asarray(action).reshape(-1)):
                    if b.fits(slots[slot:slot + 1], plan.node_free, plan.free_gpus, plan.gpu_load)[0]:
                        start(slot)
                return ops
            a = int(np.asarray(action).reshape(-1)[0])
            if not (0 <= a <= K + self.R) or (a != K and not b.mask[a]):
                self.invalid_actions += 1
                a = K
            if a > K:
                preempt(a - K - 1)
                continue
            if a == K:
                if running or arrivals_left or not b.mask[:K].any():
                    return ops
                self.forced_starts += 1
                a = int(np.flatnonzero(b.mask[:K])[0])
            start(a)


class SchedulerPolicy:
    """A baseline scheduler acting inside a DLCluster env, with SB3's ``predict`` signature.

    The scheduler is asked once per engine decision point, on the env's live engine view, with
    ``view.new_jobs`` / ``view.finished`` covering everything since its previous call (the env
    skips decision points where no visible job fits, so the scheduler sees them in one batch). Its
    ``Start`` ops (and, in an env with ``preemption=True``, its ``Preempt`` ops) are then played one
    step at a time, in order, skipping jobs that are not in the visible or running window or that
    the mask forbids; when none is left the policy plays WAIT. Other ops (resizing, sharing) cannot
    be expressed in the env's action space and are dropped, so only schedulers whose decisions fit
    it are reproduced exactly (a preemptive one only at the env's decision points: match its
    ``round_seconds`` to the env's). A scheduler with a ``sync(view)`` method (the preemptive
    priority schedulers: LAS, SRTF) is re-synchronized with the env's state and asked afresh at
    every step, so a dropped op (a job outside the window, a start the env placed elsewhere)
    cannot leave it believing a job runs, and it can label states another policy reached
    (DAgger). Discrete action mode only; the scheduler is reset at each new episode. It works on
    either backend, but reading the engine of a ``backend="compiled"`` env copies the whole state
    out of the kernel at every step, so give it a ``backend="python"`` env for speed.

    Args:
        scheduler: a Scheduler instance or a registered baseline name.
        env: the env (any wrappers) whose engine it reads.
        seed: seeds the scheduler's RNG at each episode.
    """

    def __init__(self, scheduler, env: gym.Env, seed: int = 0) -> None:
        if isinstance(scheduler, str):
            from dlsched_gym import baselines

            scheduler = baselines.make(scheduler)
        base = env.unwrapped
        if getattr(base, "action_mode", None) != "discrete":
            raise ConfigError("SchedulerPolicy needs a DLCluster env with action_mode='discrete'")
        self.scheduler = scheduler
        self.env = env
        self.seed = seed
        #: re-synchronized and asked afresh at every step (a scheduler with ``sync``): its action
        #: then depends only on the env's state, whoever brought it there
        self.stateless = callable(getattr(scheduler, "sync", None))
        self._episode = None

    def _ask(self, eng) -> None:
        view = eng.view
        arrived = eng.jobs.n - eng.arrivals_left
        saved = view.new_jobs, view.finished
        if self.stateless:  # rebuilt from the env's state: dropped ops leave no false belief
            self.scheduler.sync(view)
            view.new_jobs, view.finished = [], []
        else:
            view.new_jobs = list(range(self._arrived, arrived))
            view.finished = [j for j in self._watch if eng.state[j] == FINISHED]
            self._watch.difference_update(view.finished)
        self._arrived = arrived
        try:
            self._pending = [(type(op) is Preempt, int(op.job)) for op in self.scheduler.schedule(view)
                             if type(op) is Start or type(op) is Preempt]
        finally:
            view.new_jobs, view.finished = saved
        self._watch.update(j for preempt, j in self._pending if not preempt)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """The action the scheduler takes now (``observation`` is not read: the engine is)."""
        base = self.env.unwrapped
        eng = base.engine
        if self._episode != base.episode:
            self.scheduler.reset(eng.spec, eng.jobs, np.random.default_rng(self.seed + base.episode))
            self._episode = base.episode
            self._arrived = 0
            self._watch: set[int] = set()
            self._decision = None
        if self.stateless or self._decision != eng.decisions:
            self._decision = eng.decisions
            self._ask(eng)
        b = base.builder
        K = base.K
        while self._pending:
            preempt, job = self._pending.pop(0)
            if preempt:
                slots, offset = b.run_slot_list, K + 1
            else:
                slots, offset = b.slot_list, 0
            if job in slots and b.mask[offset + slots.index(job)]:
                return np.int64(offset + slots.index(job)), state
        return np.int64(K), state


def rollout(policy, env: gym.Env, *, seed: int | None = None, start: int | None = None,
            deterministic: bool = True) -> dict[str, Any]:
    """Play one episode; ``policy`` is an SB3 model or anything with ``predict``.

    Returns the episode summary (:func:`dlsched_gym.metrics.summarize`) plus ``return``,
    ``steps``, ``invalid_actions`` and ``forced_starts``.
    """
    options = None if start is None else {"start": int(start)}
    obs, info = env.reset(seed=seed, options=options)
    masks = env.unwrapped.action_masks
    total, steps, done = 0.0, 0, False
    while not done:
        action = predict_action(policy, obs, masks(), deterministic) if hasattr(policy, "policy") \
            else policy.predict(obs, deterministic=deterministic)[0]
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        done = terminated or truncated
    out = dict(info["episode_summary"])
    out.update({"return": total, "steps": steps, "invalid_actions": info["invalid_actions"],
                "forced_starts": info["forced_starts"]})
    return out


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve(spec: str | Path, algo: str | None) -> tuple[Path, str, dict[str, Any]]:
    """The model file, its algorithm and its recorded env options (from the metadata JSON)."""
    spec = str(spec)
    meta: dict[str, Any] = {}
    if spec.startswith("pretrained:"):
        name = spec.split(":", 1)[1]
        if name not in PRETRAINED:
            raise ConfigError(f"unknown pretrained agent {name!r}; available: {sorted(PRETRAINED)}")
        filename, digest, algo = PRETRAINED[name]
        path = Path(str(resources.files("dlsched_gym.agents").joinpath("pretrained", filename)))
        if not path.is_file():
            raise ConfigError(f"pretrained agent {name!r}: {path} is missing; rebuild it with "
                              "python -m dlsched_gym.agents.train_pretrained")
        actual = sha256_of(path)
        if actual != digest:
            raise ConfigError(f"pretrained agent {name!r}: sha256 of {path} is {actual}, expected "
                              f"{digest}; refusing to unpickle it")
        candidates = [path.with_suffix(".json")]
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"agent file {path} does not exist (expected an SB3 .zip or "
                              f"pretrained:<name>, one of {sorted(PRETRAINED)})")
        candidates = [path.with_suffix(".json"), path.parent / "config.json"]
    for candidate in candidates:
        if candidate.is_file():
            meta = json.loads(candidate.read_text())
            break
    algo = algo or meta.get("algo") or "maskable_ppo"
    if algo not in algorithms():
        raise ConfigError(f"unknown algorithm {algo!r}; expected one of {sorted(algorithms())}")
    return path, algo, dict(meta.get("env_kwargs") or {})


def load_model(spec: str | Path, algo: str | None = None):
    """Load an SB3 model from a ``.zip`` path or ``pretrained:<name>`` (checksum verified).

    The algorithm comes from ``algo``, else from ``<file>.json`` or a ``config.json`` next to the
    file (written by :func:`dlsched_gym.agents.train`), else MaskablePPO.
    """
    path, algo, _ = _resolve(spec, algo)
    return _load(path, algo)


def _load(path: Path, algo: str):
    """``algorithms()[algo].load(path)``, with a file that is not such a model reported as a
    :class:`ConfigError` naming it."""
    try:
        return algorithms()[algo].load(str(path), device="cpu")
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"agent file {path}: not a loadable {algo} model ({exc})") from None


def load_agent(spec: str | Path, *, algo: str | None = None, placement: str = "consolidated",
               name: str | None = None) -> PolicyScheduler:
    """A :class:`PolicyScheduler` from a ``.zip`` path or ``pretrained:<name>``; the env's
    ``window_order``, ``predictor`` (and, for a preemptive model, ``round_seconds``) come from the
    model's metadata JSON.

    SB3 zips contain pickles: pass only trusted files (bundled agents are checksum-verified).
    """
    path, algo, env_kwargs = _resolve(spec, algo)
    model = _load(path, algo)
    label = name or (str(spec) if str(spec).startswith("pretrained:") else Path(spec).stem)
    return PolicyScheduler.for_env(model, env_kwargs, placement=placement, name=f"rl:{label}")
