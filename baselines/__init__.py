"""Baseline schedulers: the published cluster schedulers and the classics, one module each.

Use :func:`make` (``make("tiresias", thresholds=(3250,))``) and :func:`available`. Every public
module of this package is imported here, and each registers its schedulers on import, so adding a
scheduler is adding a module.
"""

import importlib
import pkgutil

from dlsched_gym.baselines.registry import accepted_params, available, get, make, register

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "registry":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["accepted_params", "available", "get", "make", "register"]
