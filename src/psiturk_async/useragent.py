"""What psiTurk recorded about a participant's browser, and its browser_exclude_rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .settings import split_list

# Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
BROWSERS = (("edge", re.compile(r"Edg(e|A|iOS)?/")), ("opera", re.compile(r"OPR/|Opera")),
            ("firefox", re.compile(r"Firefox/|FxiOS/")), ("chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
            ("msie", re.compile(r"MSIE |Trident/")), ("safari", re.compile(r"Safari/")))
PLATFORMS = (("android", "Android"), ("iphone", "iPhone"), ("ipad", "iPad"), ("windows", "Windows"),
             ("macos", "Macintosh"), ("chromeos", "CrOS"), ("linux", "Linux"))
BOT = re.compile(r"bot|crawl|spider|slurp", re.IGNORECASE)


@dataclass(frozen=True)
class Browser:
    family: str
    platform: str
    is_mobile: bool
    is_tablet: bool
    is_bot: bool

    @property
    def is_touch_capable(self) -> bool:
        return self.is_mobile or self.is_tablet

    @property
    def is_pc(self) -> bool:
        desktop = {"windows", "macos", "linux", "chromeos"}
        return not (self.is_mobile or self.is_tablet) and self.platform in desktop


def parse(user_agent: str) -> Browser:
    family = next((name for name, pattern in BROWSERS if pattern.search(user_agent)), "UNKNOWN")
    platform = next((name for name, marker in PLATFORMS if marker in user_agent), "UNKNOWN")
    tablet = "iPad" in user_agent or "Tablet" in user_agent or ("Android" in user_agent
                                                                 and "Mobile" not in user_agent)
    mobile = not tablet and ("Mobi" in user_agent or "iPhone" in user_agent or "Android" in user_agent)
    return Browser(family, platform, mobile, tablet, bool(BOT.search(user_agent)))


def is_excluded(user_agent: str, rule: str) -> bool:
    """psiTurk's browser_exclude_rule, except that an empty entry no longer blocks everyone."""
    browser = parse(user_agent)
    named = {"mobile": browser.is_mobile, "tablet": browser.is_tablet, "touchcapable": browser.is_touch_capable,
             "pc": browser.is_pc, "bot": browser.is_bot}
    for piece in split_list(rule):
        if piece in named:
            if named[piece]:
                return True
        elif piece in {"Safari", "safari"}:
            if "Safari" in user_agent and "Chrome" not in user_agent:
                return True
        elif piece in user_agent:
            return True
    return False


def preferred_language(accept_language: str | None) -> str:
    """The first language of an Accept-Language header, as psiTurk stored it, or UNKNOWN."""
    if not accept_language:
        return "UNKNOWN"
    best = max(
        ((part.split(";")[0].strip(), _quality(part)) for part in accept_language.split(",") if part.strip()),
        key=lambda item: item[1], default=("", 0.0))
    # Stored in a String(128) column; no real language tag comes near that.
    return best[0][:128] if best[0] and best[0] != "*" else "UNKNOWN"


def _quality(part: str) -> float:
    match = re.search(r";\s*q=([0-9.]+)", part)
    try:
        return float(match.group(1)) if match else 1.0
    except ValueError:
        return 0.0
