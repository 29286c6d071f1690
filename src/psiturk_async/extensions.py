"""Loading the project's custom.py: a FastAPI router named custom_code, and psiTurk's optional hooks."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

if TYPE_CHECKING:
    from .settings import Settings

LEGACY_HINT = ("custom.py defines a Flask blueprint (psiTurk 3 style); enable the compatibility layer with: "
               "pip install 'psiturk-async[legacy]'")


class CustomCodeError(Exception):
    """custom.py cannot be used; the message says why in one line (the traceback is chained)."""


# What the legacy extra installs; without them a psiTurk 3 custom.py cannot run.
LEGACY_MODULES = ("flask", "a2wsgi")


@dataclass
class CustomCode:
    module: ModuleType | None
    router: APIRouter | None
    get_condition: Any
    init_app: Any
    # A psiTurk 3 custom.py (psiturk_async.legacy.LegacyCode): mounted by create_app, closed in the lifespan.
    legacy: Any = None


def legacy_missing() -> str | None:
    """The first module of the legacy extra that cannot be imported, or None when all can."""
    for name in LEGACY_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def imports_psiturk3(source: bytes) -> bool:
    """Whether custom.py is in psiTurk 3's form: it imports `psiturk.*`, or Flask's Blueprint."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False  # executing it reports the error with its line
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "psiturk" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root == "psiturk" or (root == "flask" and any(a.name == "Blueprint" for a in node.names)):
                return True
        if (isinstance(node, ast.Attribute) and node.attr == "Blueprint" and isinstance(node.value, ast.Name)
                and node.value.id == "flask"):
            return True
    return False


def load_custom_code(project_dir: Path, settings: Settings | None = None) -> CustomCode:
    """Import the project's custom.py, if any. An import error is raised, never skipped (psiTurk skipped it).

    A custom.py in psiTurk 3's form runs with the legacy layer's `psiturk.*` import names (for `settings`,
    read from the project when not given); without the legacy extra it stops here with LEGACY_HINT.
    """
    path = project_dir / "custom.py"
    if not path.is_file():
        return CustomCode(None, None, None, None)
    # custom.py may import modules that sit beside it, as it could under psiTurk.
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    runtime = None
    if imports_psiturk3(path.read_bytes()):
        runtime = _open_legacy_runtime(project_dir, settings)
    spec = importlib.util.spec_from_file_location("custom", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop("custom", None)
        if runtime is not None:
            runtime.close()
        if isinstance(exc, ModuleNotFoundError) and exc.name in LEGACY_MODULES and legacy_missing():
            raise CustomCodeError(LEGACY_HINT) from None
        raise CustomCodeError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    router = getattr(module, "custom_code", None)
    get_condition = getattr(module, "custom_get_condition", None)
    if router is not None and not isinstance(router, APIRouter):
        if type(router).__name__ != "Blueprint":
            raise CustomCodeError(f"{path}: custom_code must be a fastapi.APIRouter, not {type(router).__name__}")
        if legacy_missing():
            raise CustomCodeError(LEGACY_HINT)
        from .legacy import LegacyCode, is_flask_blueprint

        if not is_flask_blueprint(router):
            if runtime is not None:
                runtime.close()
            raise CustomCodeError(f"{path}: custom_code is a Blueprint but not a flask.Blueprint; the legacy "
                                  "layer serves Flask blueprints only")
        runtime = runtime or _open_legacy_runtime(project_dir, settings)
        legacy = LegacyCode(runtime, module, router)
        return CustomCode(module, None, legacy.condition_hook(), None, legacy=legacy)
    if runtime is not None:
        # psiTurk imports without a blueprint (say, only custom_get_condition): the names stay for its calls.
        from .legacy import LegacyCode

        legacy = LegacyCode(runtime, module, None)
        return CustomCode(module, router, legacy.condition_hook(), getattr(module, "init_app", None),
                          legacy=legacy)
    return CustomCode(module, router, get_condition, getattr(module, "init_app", None))


def _open_legacy_runtime(project_dir: Path, settings: Settings | None) -> Any:
    if legacy_missing():
        raise CustomCodeError(LEGACY_HINT)
    from .legacy import open_runtime
    from .settings import load_settings

    try:
        return open_runtime(settings or load_settings(project_dir))
    except ModuleNotFoundError:
        # psycopg2, for a PostgreSQL database: part of the same extra.
        raise CustomCodeError(LEGACY_HINT) from None


async def call_condition_hook(hook: Any, mode: str) -> tuple[int, int]:
    """custom_get_condition(mode), sync or async, checked to be a (condition, counterbalance) pair."""
    result = hook(mode)
    if inspect.isawaitable(result):
        result = await result
    cond, counter = result
    return int(cond), int(counter)
