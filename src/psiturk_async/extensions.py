"""Loading the project's custom.py: a FastAPI router named custom_code, and psiTurk's optional hooks."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import APIRouter

LEGACY_HINT = ("custom.py defines a Flask blueprint (psiTurk 3 style); enable the compatibility layer with: "
               "pip install 'psiturk-async[legacy]'")


class CustomCodeError(Exception):
    """custom.py cannot be used; the message says why in one line (the traceback is chained)."""


@dataclass
class CustomCode:
    module: ModuleType | None
    router: APIRouter | None
    get_condition: Any
    init_app: Any


def load_custom_code(project_dir: Path) -> CustomCode:
    """Import the project's custom.py, if any. An import error is raised, never skipped (psiTurk skipped it)."""
    path = project_dir / "custom.py"
    if not path.is_file():
        return CustomCode(None, None, None, None)
    # custom.py may import modules that sit beside it, as it could under psiTurk.
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    spec = importlib.util.spec_from_file_location("custom", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop("custom", None)
        raise CustomCodeError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    router = getattr(module, "custom_code", None)
    if router is not None and not isinstance(router, APIRouter):
        if type(router).__name__ == "Blueprint":
            raise CustomCodeError(LEGACY_HINT)
        raise CustomCodeError(f"{path}: custom_code must be a fastapi.APIRouter, not {type(router).__name__}")
    return CustomCode(module, router, getattr(module, "custom_get_condition", None),
                      getattr(module, "init_app", None))


async def call_condition_hook(hook: Any, mode: str) -> tuple[int, int]:
    """custom_get_condition(mode), sync or async, checked to be a (condition, counterbalance) pair."""
    result = hook(mode)
    if inspect.isawaitable(result):
        result = await result
    cond, counter = result
    return int(cond), int(counter)
