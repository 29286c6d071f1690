"""`psiturk.psiturk_config.PsiturkConfig`: psiTurk's config object, filled from psiturk-async's settings.

A psiTurk 3 custom.py reads its configuration with `config = PsiturkConfig(); config.load_config()` and then
`config.get("Server Parameters", "login_username")`. The values it gets are the settings the server runs
with (config.txt, ~/.psiturkconfig, .env and the environment, layered as psiturk-async layers them), under
psiTurk's section and key names.
"""

from __future__ import annotations

import configparser
from typing import Any, ClassVar

from ..links import ad_url
from ..settings import KEYS, Settings


class PsiturkException(Exception):
    """psiTurk's base exception: a `message` keyword, shown by `str()`."""

    def __init__(self, *args: Any, message: str = "", **_kwargs: Any) -> None:
        super().__init__(*args)
        self.message = message

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"exception": type(self).__name__, "message": self.message}


def setting_text(settings: Settings, name: str, default: str) -> str:
    """One setting as the string psiTurk's ConfigParser would have held."""
    value = getattr(settings, name, default)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class PsiturkConfig(configparser.ConfigParser):
    """The settings of the running server, as psiTurk's ConfigParser subclass presented them."""

    # Set on the class made for each loaded custom.py (see `config_class`).
    settings: ClassVar[Settings]

    def __init__(self, local_config: str = "config.txt", global_config_name: str = ".psiturkconfig",
                 **kwargs: Any) -> None:
        # Values are read, never interpolated: a % in a password must come back as written.
        kwargs.setdefault("interpolation", None)
        super().__init__(**kwargs)
        self.local_file = local_config
        self.global_file = global_config_name

    def load_config(self) -> None:
        """Fill every section psiTurk knew from the server's settings (the files were read at start-up)."""
        for key in KEYS:
            if not self.has_section(key.section):
                self.add_section(key.section)
            self.set(key.section, key.name, setting_text(self.settings, key.name, key.default))

    def get_ad_url(self) -> str:
        """The public ad URL, as psiTurk composed it from ad_url or the ad_url_* keys."""
        found = ad_url(self.settings)
        if found is None:
            raise PsiturkException(message="missing ad_url config var `ad_url_domain`")
        return found

    def get_require_quals(self) -> None:
        return None


def config_class(settings: Settings) -> type[PsiturkConfig]:
    """A PsiturkConfig whose `load_config()` reads these settings (custom.py calls it without arguments)."""
    return type("PsiturkConfig", (PsiturkConfig,), {"settings": settings, "__module__": "psiturk.psiturk_config"})
