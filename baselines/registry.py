"""The registry of baseline schedulers: ``make("tiresias", **params)``.

Each baseline module registers its class with :func:`register`; parameters are the class's
keyword arguments, so ``make`` checks them and says which are accepted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from dlsched_gym.errors import ConfigError

_REGISTRY: dict[str, Callable[..., Any]] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *, aliases: tuple[str, ...] = (), replace: bool = False
             ) -> Callable[[type], type]:
    """Class decorator: register a scheduler class under ``name`` (and ``aliases``).

    A name registered twice is an error, unless ``replace=True`` (re-running a notebook cell that
    defines a scheduler); a bundled baseline's name can never be replaced.
    """

    def deco(cls: type) -> type:
        taken = name in _REGISTRY or name in _ALIASES
        bundled = taken and _REGISTRY.get(_ALIASES.get(name, name), cls).__module__.startswith(
            __package__ + ".")
        if taken and (not replace or bundled):
            raise ValueError(f"scheduler name {name!r} registered twice"
                             + ("" if bundled else "; pass replace=True to redefine it"))
        _ALIASES.pop(name, None)
        _REGISTRY[name] = cls
        for a in aliases:
            _ALIASES[a] = name
        return cls

    return deco


def available() -> list[str]:
    """Registered scheduler names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Callable[..., Any]:
    """The class registered under ``name`` (or an alias)."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise ConfigError(f"unknown scheduler {name!r}; expected one of {', '.join(available())}")
    return _REGISTRY[key]


def accepted_params(name: str) -> dict[str, Any]:
    """Keyword parameters of a scheduler with their defaults."""
    sig = inspect.signature(get(name))
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


#: Accepted value types by the type of a parameter's default (other defaults are not checked).
_KINDS: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int, float), float: (int, float),
                                       str: (str,)}


def _check_type(name: str, key: str, value: Any, default: Any) -> None:
    """Refuse a value whose type does not match the default's (``backfill="maybe"``); None is
    accepted for a numeric parameter (schedulers read it as "no limit")."""
    kinds = _KINDS.get(type(default))
    if kinds is None or (value is None and int in kinds):
        return
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"scheduler {name!r}: parameter {key!r} expects a "
                          f"{type(default).__name__} (default {default!r}), got {value!r}")


def make(name: str, **params: Any) -> Any:
    """Instantiate the scheduler ``name`` with ``params``; unknown parameters, and values whose type
    does not match the parameter's default (bool, number, string), are errors."""
    cls = get(name)
    accepted = accepted_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"scheduler {name!r}: unknown parameter(s) {unknown}; accepted: "
            + (", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none")
        )
    for key, value in params.items():
        _check_type(name, key, value, accepted[key])
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scheduler {name!r}: bad parameters {params}: {exc}") from None
