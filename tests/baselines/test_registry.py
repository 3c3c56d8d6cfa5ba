"""The scheduler registry: names, parameters, and redefinition rules."""

import pytest

from dlsched_gym.baselines import registry
from dlsched_gym.errors import ConfigError


def test_unknown_name_and_parameter_are_named():
    with pytest.raises(ConfigError, match="unknown scheduler 'nope'"):
        registry.make("nope")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['speed'\]"):
        registry.make("fifo", speed=2)


def test_parameter_types_follow_the_defaults():
    with pytest.raises(ConfigError, match="parameter 'backfill' expects a bool .* got 'maybe'"):
        registry.make("fifo", backfill="maybe")
    with pytest.raises(ConfigError, match="parameter 'backfill' expects a bool"):
        registry.make("fifo", backfill=1)
    assert registry.make("fifo", backfill=True).backfill is True


def test_user_scheduler_can_be_redefined_only_with_replace():
    @registry.register("test-registry-user")
    class First:
        pass

    try:
        with pytest.raises(ValueError, match="registered twice; pass replace=True"):
            @registry.register("test-registry-user")
            class Again:
                pass

        @registry.register("test-registry-user", replace=True)
        class Second:
            pass

        assert registry.get("test-registry-user") is Second
    finally:
        registry._REGISTRY.pop("test-registry-user", None)


def test_bundled_scheduler_is_never_replaced():
    with pytest.raises(ValueError, match="'fifo' registered twice$"):
        @registry.register("fifo", replace=True)
        class Fake:
            pass
    assert registry.get("fifo").__module__ == "dlsched_gym.baselines.fifo"
