"""What a HIT is created with: the ad URL, the ExternalQuestion, the qualification list. Pure functions.

The qualification order is psiTurk's (spec §12.3): approval rate, number approved, Masters, US locale, the
require ids (options, then config), the block ids (options, then config), then the advanced-quals file.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from ..links import ad_url
from ..settings import Settings, split_list
from .client import Mode
from .fees import parse_money

APPROVAL_RATE = "000000000000000000L0"
NUMBER_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
MASTERS: dict[str, str] = {"sandbox": "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6", "live": "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"}
MASTERS_IDS = frozenset(MASTERS.values())
QUESTION_NAMESPACE = ("http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/"
                      "ExternalQuestion.xsd")
FRAME_HEIGHT = 600
MAX_QUALIFICATIONS = 10  # MTurk refuses more
SECONDS_LIMITS = (30, 365 * 24 * 3600)  # MTurk's bounds on durations and lifetimes
MINIMUM_REWARD = Decimal("0.01")


class Refused(Exception):
    """An MTurk operation refused before anything was sent; the detail says what to change."""

    def __init__(self, error: str, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.status = status


def public_ad_url(settings: Settings, mode: Mode) -> str:
    """The configured ad URL (spec §2.3); live mode insists on HTTPS, which MTurk requires in its frame."""
    url = ad_url(settings)
    if url is None:
        raise Refused("ad_url_missing", "no ad URL is configured: set ad_url_domain (with ad_url_protocol, "
                        "ad_url_port and ad_url_route) or ad_url under [HIT Configuration] in config.txt")
    if mode == "live" and urlsplit(url).scheme != "https":
        raise Refused("ad_url_not_https", f"MTurk only shows HTTPS pages, but the ad URL is {url}: put the "
                        "server behind HTTPS (certfile and keyfile, or a TLS proxy) and set ad_url_protocol = "
                        "https and ad_url_port = 443 (or ad_url = https://...) under [HIT Configuration]")
    return url


def external_url(ad: str, mode: Mode) -> str:
    """The ad URL as MTurk opens it: with ?mode=<mode> appended, as psiTurk did."""
    return f"{ad}{'&' if '?' in ad else '?'}mode={mode}"


def external_question(url: str) -> str:
    """The ExternalQuestion XML pointing at `url`, escaped (psiTurk did not: an & broke the XML)."""
    return (f'<ExternalQuestion xmlns="{QUESTION_NAMESPACE}"><ExternalURL>{escape(url)}</ExternalURL>'
            f"<FrameHeight>{FRAME_HEIGHT}</FrameHeight></ExternalQuestion>")


def advanced_qualifications(settings: Settings, mode: Mode) -> list[dict[str, Any]]:
    """The JSON list of QualificationRequirements in advanced_quals_path_<mode>, if one is set."""
    configured = getattr(settings, f"advanced_quals_path_{mode}")
    if not configured:
        return []
    path = Path(configured).expanduser()
    path = path if path.is_absolute() else settings.project_dir / path
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Refused("advanced_quals_unreadable",
                        f"advanced_quals_path_{mode} = {configured}: cannot read it as JSON ({exc})") from None
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Refused("advanced_quals_invalid", f"advanced_quals_path_{mode} = {configured} must hold a JSON "
                        "list of QualificationRequirement objects")
    for item in found:
        if not isinstance(item.get("QualificationTypeId"), str) or not isinstance(item.get("Comparator"), str):
            raise Refused("advanced_quals_invalid", f"advanced_quals_path_{mode} = {configured}: every "
                            "requirement needs a QualificationTypeId and a Comparator")
    return found


def qualification_requirements(settings: Settings, mode: Mode, *, require_ids: list[str],
                               block_ids: list[str]) -> list[dict[str, Any]]:
    """The QualificationRequirements of a new HIT, in psiTurk's order."""
    requirements: list[dict[str, Any]] = [
        {"QualificationTypeId": APPROVAL_RATE, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [settings.approve_requirement]},
        {"QualificationTypeId": NUMBER_APPROVED, "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [settings.number_hits_approved]},
    ]
    if settings.require_master_workers:
        requirements.append({"QualificationTypeId": MASTERS[mode], "Comparator": "Exists"})
    if settings.us_only:
        requirements.append({"QualificationTypeId": LOCALE, "Comparator": "EqualTo",
                             "LocaleValues": [{"Country": "US"}]})
    for type_id in [*split_list(",".join(require_ids)), *split_list(getattr(settings, f"require_quals_{mode}"))]:
        requirements.append({"QualificationTypeId": type_id, "Comparator": "Exists"})
    for type_id in [*split_list(",".join(block_ids)), *split_list(getattr(settings, f"block_quals_{mode}"))]:
        requirements.append({"QualificationTypeId": type_id, "Comparator": "DoesNotExist"})
    requirements.extend(advanced_qualifications(settings, mode))
    if len(requirements) > MAX_QUALIFICATIONS:
        raise Refused("too_many_qualifications", f"{len(requirements)} qualification requirements, but MTurk "
                        f"takes at most {MAX_QUALIFICATIONS}: drop some require/block ids")
    return requirements


def needs_masters(requirements: list[dict[str, Any]]) -> bool:
    """Whether the HIT requires Masters (MTurk charges 5 % more on the reward)."""
    return any(item.get("QualificationTypeId") in MASTERS_IDS for item in requirements)


def seconds(hours: float, name: str) -> int:
    value = round(hours * 3600)
    low, high = SECONDS_LIMITS
    if not low <= value <= high:
        raise Refused("invalid_duration", f"{name} must be between 30 seconds and 365 days, got {hours} hours")
    return value


def checked_reward(reward: str) -> Decimal:
    try:
        amount = parse_money(reward)
    except (TypeError, ValueError):
        raise Refused("invalid_reward", f"the reward must be dollars and cents, such as 1.50, not {reward!r}") \
            from None
    if amount < MINIMUM_REWARD:
        raise Refused("invalid_reward", f"the reward must be at least ${MINIMUM_REWARD}")
    return amount


def hit_type_request(settings: Settings, *, reward: Decimal, duration_hours: float,
                     requirements: list[dict[str, Any]]) -> dict[str, Any]:
    """CreateHITType's parameters: what workers see, what they are paid, who may take it."""
    if not settings.title.strip() or not settings.description.strip():
        raise Refused("hit_text_missing", "set title and description under [HIT Configuration] in config.txt: "
                        "workers see them in MTurk's list")
    request: dict[str, Any] = {
        "Title": settings.title,
        "Description": settings.description,
        "Reward": str(reward),
        "AssignmentDurationInSeconds": seconds(duration_hours, "the duration"),
        "QualificationRequirements": requirements,
    }
    if settings.keywords.strip():
        request["Keywords"] = settings.keywords
    return request


def hit_request(settings: Settings, *, question: str, assignments: int, token: str | None) -> dict[str, Any]:
    """CreateHITWithHITType's parameters (HITTypeId is added once the type exists).

    The token is also the RequesterAnnotation, so a HIT whose creation had no answer can be found later.
    """
    request: dict[str, Any] = {
        "Question": question,
        "LifetimeInSeconds": seconds(settings.lifetime, "lifetime"),
        "MaxAssignments": assignments,
    }
    if token is not None:
        request["UniqueRequestToken"] = token
        request["RequesterAnnotation"] = token
    return request
