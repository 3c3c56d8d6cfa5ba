"""Job-duration predictors a scheduler may consult through ``ClusterView.predict_duration``.

The experiment chooses the predictor, so a scheduler that needs durations states what it assumes:

- ``oracle``: the true trace duration;
- ``noisy``: the true duration times ``exp(N(0, sigma))``, one seeded draw per job (``sigma``
  defaults to 0.5);
- ``history``: no knowledge of the future. The mean duration of the *finished* jobs of the same
  user with the same GPU count, else of the same user, else of all finished jobs, else
  ``default`` (3,600 s). This is the estimator of QSSF (Hu et al., SC'21), without its fuzzy
  job-name match (job names are not in the public traces).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dlsched_gym.errors import ConfigError

if TYPE_CHECKING:
    from dlsched_gym.engine import JobTable


class Predictor(Protocol):
    """A duration predictor."""

    name: str

    def reset(self, jobs: JobTable, durations: np.ndarray, rng: np.random.Generator) -> None:
        """Bind to a workload (``durations`` are the truth; a fair predictor ignores them)."""

    def duration(self, job: int) -> float:
        """Predicted run time (s) on the requested allocation."""

    def observe(self, job: int, duration: float) -> None:
        """Learn that ``job`` finished after running ``duration`` seconds."""


class Oracle:
    """The true duration."""

    name = "oracle"

    def reset(self, jobs, durations, rng):
        self._d = durations

    def duration(self, job):
        return float(self._d[job])

    def observe(self, job, duration):
        pass


class Noisy:
    """The true duration with multiplicative log-normal error."""

    name = "noisy"

    def __init__(self, sigma: float = 0.5) -> None:
        if not sigma >= 0:
            raise ConfigError(f"noisy predictor: sigma must be >= 0, got {sigma!r}")
        self.sigma = sigma

    def reset(self, jobs, durations, rng):
        self._d = durations * np.exp(rng.normal(0.0, self.sigma, size=len(durations)))

    def duration(self, job):
        return float(self._d[job])

    def observe(self, job, duration):
        pass


class History:
    """Mean of finished jobs by (user, GPUs), then user, then everyone (QSSF's estimator)."""

    name = "history"

    def __init__(self, default: float = 3600.0) -> None:
        self.default = default

    def reset(self, jobs, durations, rng):
        self._user = jobs.user
        self._gpus = jobs.num_gpus
        self._by_user_gpus: dict[tuple[int, int], list[float]] = {}
        self._by_user: dict[int, list[float]] = {}
        self._all = [0.0, 0]

    def duration(self, job):
        key = (int(self._user[job]), int(self._gpus[job]))
        for table, k in ((self._by_user_gpus, key), (self._by_user, key[0])):
            s = table.get(k)
            if s is not None:
                return s[0] / s[1]
        if self._all[1]:
            return self._all[0] / self._all[1]
        return self.default

    def observe(self, job, duration):
        key = (int(self._user[job]), int(self._gpus[job]))
        for table, k in ((self._by_user_gpus, key), (self._by_user, key[0])):
            s = table.setdefault(k, [0.0, 0])
            s[0] += duration
            s[1] += 1
        self._all[0] += duration
        self._all[1] += 1


#: Registry: name -> factory taking keyword parameters.
PREDICTORS: dict[str, Callable[..., Predictor]] = {"oracle": Oracle, "noisy": Noisy, "history": History}


def make_predictor(name: str | Predictor, **params: Any) -> Predictor:
    """A predictor by name (or pass one through)."""
    if not isinstance(name, str):
        return name
    if name not in PREDICTORS:
        raise ConfigError(f"unknown predictor {name!r}; expected one of {sorted(PREDICTORS)}")
    try:
        return PREDICTORS[name](**params)
    except TypeError as exc:
        raise ConfigError(f"predictor {name!r}: bad parameters {params}: {exc}") from None
