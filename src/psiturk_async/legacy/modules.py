"""The `psiturk.*` import names a psiTurk 3 custom.py uses, made for one server and put in `sys.modules`.

The names exist only once a legacy custom.py is loaded (never for a native one), and stay while that app is
up: route functions may import `psiturk.models` lazily and must get the same objects. A real psiTurk
installed beside psiturk-async is never shadowed silently: loading logs that the layer answers instead. A
`psiturk` module this layer does not provide fails to import with a message saying so and what to do.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..models import Status
from ..settings import Settings
from . import config, errors, user_utils
from .database import LegacyDatabase

logger = logging.getLogger(__name__)

PACKAGE = "psiturk"
PORTING = "port that part of custom.py to the native form (README: 'Coming from psiTurk 3')"


def _module(name: str, doc: str, **members: Any) -> ModuleType:
    module = ModuleType(name, doc)
    module.__dict__.update(members)
    module.__psiturk_async_legacy__ = True  # type: ignore[attr-defined]
    return module


def psiturk_modules(settings: Settings, database: LegacyDatabase) -> dict[str, ModuleType]:
    """psiTurk's modules as custom.py imports them, backed by these settings and this database."""
    modules = {
        "psiturk.psiturk_config": _module(
            "psiturk.psiturk_config", config.__doc__ or "", PsiturkConfig=config.config_class(settings)),
        "psiturk.psiturk_exceptions": _module(
            "psiturk.psiturk_exceptions", "psiTurk's base exception.", PsiturkException=config.PsiturkException),
        "psiturk.experiment_errors": _module(
            "psiturk.experiment_errors", errors.__doc__ or "", ExperimentError=errors.ExperimentError,
            ExperimentApiError=errors.ExperimentApiError, InvalidUsageError=errors.InvalidUsageError,
            InvalidUsage=errors.InvalidUsage),
        "psiturk.user_utils": _module(
            "psiturk.user_utils", user_utils.__doc__ or "", PsiTurkAuthorization=user_utils.PsiTurkAuthorization,
            nocache=user_utils.nocache, print_to_log=user_utils.print_to_log),
        "psiturk.db": _module(
            "psiturk.db", "psiTurk's session on the server's database.", db_session=database.session,
            init_db=database.init_db, engine=database.engine),
        "psiturk.models": _module(
            "psiturk.models", "psiTurk's models on the server's database.", Base=database.Base,
            Participant=database.Participant, Hit=database.Hit, Campaign=database.Campaign),
        "psiturk.psiturk_statuses": _module(
            "psiturk.psiturk_statuses", "psiTurk's participant status numbers.",
            **{status.name: int(status) for status in Status}),
    }
    package = _module(PACKAGE, "psiTurk 3's import names, answered by psiturk-async's compatibility layer.",
                      __path__=[], **{name.split(".")[1]: module for name, module in modules.items()})
    return {PACKAGE: package, **modules}


def _ours(module: object) -> bool:
    return getattr(module, "__psiturk_async_legacy__", False) is True


def _is_psiturk(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


class MissingName(importlib.abc.MetaPathFinder):
    """Refuses, with a useful message, a `psiturk.*` module the layer does not provide."""

    def __init__(self, provided: Sequence[str]) -> None:
        self.provided = sorted(provided)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if _is_psiturk(fullname) and fullname not in sys.modules:
            names = ", ".join(name for name in self.provided if name != PACKAGE)
            raise ModuleNotFoundError(f"{fullname} is not provided by psiturk-async's psiTurk 3 compatibility "
                                      f"layer (it provides {names}); {PORTING}", name=fullname)
        return None


def real_psiturk() -> str | None:
    """Where an installed psiTurk package is, if there is one on sys.path."""
    spec = importlib.machinery.PathFinder.find_spec(PACKAGE)
    return spec.origin if spec is not None else None


class ImportNames:
    """Puts one server's `psiturk.*` modules in sys.modules, and takes them out again."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules = modules
        self.finder = MissingName(list(modules))
        self.saved: dict[str, ModuleType] = {}

    def install(self) -> None:
        real = real_psiturk()
        if real is not None:
            logger.warning("psiTurk is installed in this environment (%s); custom.py's `psiturk` imports are "
                           "answered by psiturk-async's compatibility layer instead", real)
        for name in [name for name in sys.modules if _is_psiturk(name)]:
            module = sys.modules.pop(name)
            if not _ours(module):
                self.saved[name] = module
        sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, MissingName)]
        sys.meta_path.insert(0, self.finder)
        sys.modules.update(self.modules)

    def uninstall(self) -> None:
        for name, module in self.modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        for name, module in self.saved.items():
            sys.modules.setdefault(name, module)
        self.saved.clear()
