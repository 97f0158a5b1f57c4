"""Score any checkpoint on any shift config.

`shift_hub.evaluate(model, data, configs=None, ...)` works because this package module is
callable (it forwards to `api.evaluate`), so `shift_hub.evaluate.models` etc. stay importable
under the same name. Nothing heavy (torch, transformers) is imported until a function runs.
"""
from __future__ import annotations

import sys
import types

_LAZY = {
    "evaluate": ("api", "evaluate"),
    "EvaluationResult": ("api", "EvaluationResult"),
    "load_model": ("models", "load_model"),
    "cli_main": ("command", "cli_main"),
    "add_evaluate_parser": ("command", "add_evaluate_parser"),
    "get_label_space": ("labels", "get_label_space"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .api import evaluate

        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
