"""How many examples each fuzz target runs.

CI runs a small, derandomized budget per target (the whole folder stays well under a minute). Set
``DLSCHED_FUZZ_EXAMPLES=N`` to run ``N`` random examples per target instead, e.g.::

    DLSCHED_FUZZ_EXAMPLES=2000 python -m pytest tests/fuzz --hypothesis-show-statistics
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from dlsched_gym.errors import ConfigError

#: Environment variable that overrides every fuzz target's example count.
EXAMPLES_ENV = "DLSCHED_FUZZ_EXAMPLES"


def deep_examples() -> int | None:
    """The example count asked for with :data:`EXAMPLES_ENV`, or None when it is unset."""
    raw = os.environ.get(EXAMPLES_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{EXAMPLES_ENV}: expected a positive integer, got {raw!r}")
    return n


def fuzz_settings(ci_examples: int) -> settings:
    """Hypothesis settings for one fuzz target: ``ci_examples`` derandomized examples by default,
    or :func:`deep_examples` random ones."""
    deep = deep_examples()
    return settings(
        max_examples=deep or ci_examples,
        derandomize=deep is None,
        deadline=None,
        database=None if deep is None else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )
