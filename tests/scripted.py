"""A scheduler that replays a script of ops, for hand-computed engine tests."""

from __future__ import annotations


class Scripted:
    """Applies ``script[t](view) -> ops`` at time t (exact match) and nothing otherwise."""

    name = "scripted"

    def __init__(self, script, round_seconds=None, first=()):
        self.script = script
        self.round_seconds = round_seconds
        self.first = list(first)
        self.calls = []

    def reset(self, spec, jobs, rng):
        self.calls = []

    def schedule(self, view):
        self.calls.append(view.now)
        ops = list(self.first)
        self.first = []
        fn = self.script.get(view.now)
        if fn is not None:
            ops += list(fn(view))
        return ops
