"""What a HIT is created with, without MTurk: qualification order, ExternalQuestion escaping, the ad URL rules."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from psiturk_async.mturk import spec
from psiturk_async.settings import Settings

NS = "{" + spec.QUESTION_NAMESPACE + "}"


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'unused.db'}"  # pure functions: one database is enough


def ids(requirements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["QualificationTypeId"], r["Comparator"]) for r in requirements]


def test_default_qualifications_are_psiturks_three(make_settings: Any) -> None:
    requirements = spec.qualification_requirements(make_settings(), "sandbox", require_ids=[], block_ids=[])
    assert requirements == [
        {"QualificationTypeId": "000000000000000000L0", "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [95]},
        {"QualificationTypeId": "00000000000000000040", "Comparator": "GreaterThanOrEqualTo",
         "IntegerValues": [0]},
        {"QualificationTypeId": "00000000000000000071", "Comparator": "EqualTo",
         "LocaleValues": [{"Country": "US"}]},
    ]


@pytest.mark.parametrize(("mode", "masters_id"), [("sandbox", "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"),
                                                  ("live", "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH")])
def test_every_source_in_psiturks_order(make_settings: Any, project_dir: Path, mode: str, masters_id: str) -> None:
    advanced = [{"QualificationTypeId": "ADV1", "Comparator": "In", "IntegerValues": [1, 2]}]
    (project_dir / "quals.json").write_text(json.dumps(advanced))
    settings = make_settings(**{
        "approve_requirement": 98, "number_hits_approved": 500, "require_master_workers": "true",
        f"require_quals_{mode}": "CONFREQ1, CONFREQ2", f"block_quals_{mode}": "CONFBLOCK1",
        f"advanced_quals_path_{mode}": "quals.json"})
    requirements = spec.qualification_requirements(settings, mode, require_ids=["OPTREQ1"],
                                                   block_ids=["OPTBLOCK1"])
    assert ids(requirements) == [
        ("000000000000000000L0", "GreaterThanOrEqualTo"), ("00000000000000000040", "GreaterThanOrEqualTo"),
        (masters_id, "Exists"), ("00000000000000000071", "EqualTo"),
        ("OPTREQ1", "Exists"), ("CONFREQ1", "Exists"), ("CONFREQ2", "Exists"),
        ("OPTBLOCK1", "DoesNotExist"), ("CONFBLOCK1", "DoesNotExist"), ("ADV1", "In")]
    assert requirements[0]["IntegerValues"] == [98] and requirements[1]["IntegerValues"] == [500]
    assert requirements[-1] == advanced[0]
    assert spec.needs_masters(requirements)


def test_the_other_modes_config_ids_are_not_used(make_settings: Any) -> None:
    settings = make_settings(require_quals_live="LIVEONLY", us_only="false")
    requirements = spec.qualification_requirements(settings, "sandbox", require_ids=[], block_ids=[])
    assert "LIVEONLY" not in str(requirements) and len(requirements) == 2
    assert not spec.needs_masters(requirements)


def test_more_than_ten_qualifications_are_refused(make_settings: Any) -> None:
    with pytest.raises(spec.Refused, match="at most 10"):
        spec.qualification_requirements(make_settings(), "sandbox", require_ids=[f"Q{i}" for i in range(8)],
                                        block_ids=[])


@pytest.mark.parametrize("content", ["{not json", '{"QualificationTypeId": "X"}', '[{"Comparator": "Exists"}]'])
def test_a_bad_advanced_quals_file_is_refused(make_settings: Any, project_dir: Path, content: str) -> None:
    (project_dir / "quals.json").write_text(content)
    settings = make_settings(advanced_quals_path_sandbox="quals.json")
    with pytest.raises(spec.Refused, match="advanced_quals_path_sandbox"):
        spec.qualification_requirements(settings, "sandbox", require_ids=[], block_ids=[])


def test_external_question_escapes_the_url() -> None:
    url = spec.external_url("https://example.org/pub?study=a&b=<c>", "live")
    question = spec.external_question(url)
    assert "&amp;b=&lt;c&gt;&amp;mode=live" in question
    root = ET.fromstring(question)
    assert root.tag == f"{NS}ExternalQuestion"
    assert root.findtext(f"{NS}ExternalURL") == "https://example.org/pub?study=a&b=<c>&mode=live"
    assert root.findtext(f"{NS}FrameHeight") == "600"


def test_ad_url_is_composed_as_psiturk_does(make_settings: Any) -> None:
    settings = make_settings(ad_url_domain="lab.example.edu")
    assert spec.public_ad_url(settings, "live") == "https://lab.example.edu:443/pub"
    assert spec.external_url(spec.public_ad_url(settings, "live"), "live") == "https://lab.example.edu:443/pub?mode=live"
    assert spec.public_ad_url(make_settings(ad_url="https://x.example/ad"), "sandbox") == "https://x.example/ad"


def test_live_mode_refuses_an_http_ad_url_and_says_how_to_fix_it(make_settings: Any) -> None:
    settings: Settings = make_settings(ad_url_domain="lab.example.edu", ad_url_protocol="http", ad_url_port=80)
    assert spec.public_ad_url(settings, "sandbox") == "http://lab.example.edu:80/pub"
    with pytest.raises(spec.Refused) as refused:
        spec.public_ad_url(settings, "live")
    assert refused.value.error == "ad_url_not_https"
    assert "ad_url_protocol = https" in refused.value.detail
    assert "http://lab.example.edu:80/pub" in refused.value.detail


def test_a_missing_ad_url_says_which_settings_to_set(make_settings: Any) -> None:
    with pytest.raises(spec.Refused, match="ad_url_domain"):
        spec.public_ad_url(make_settings(), "sandbox")


@pytest.mark.parametrize("reward", ["0", "0.00", "1.001", "-1", "$1", "abc"])
def test_bad_rewards_are_refused(reward: str) -> None:
    with pytest.raises(spec.Refused):
        spec.checked_reward(reward)


def test_hit_requests_carry_the_settings(make_settings: Any) -> None:
    settings = make_settings(lifetime=1.5)
    type_request = spec.hit_type_request(settings, reward=spec.checked_reward("0.5"), duration_hours=0.25,
                                         requirements=[])
    assert type_request["Reward"] == "0.50" and type_request["AssignmentDurationInSeconds"] == 900
    assert type_request["Title"] == settings.title and type_request["Keywords"] == settings.keywords
    request = spec.hit_request(settings, question="<q/>", assignments=3, token="psiturk-hit-1")
    assert request == {"Question": "<q/>", "LifetimeInSeconds": 5400, "MaxAssignments": 3,
                       "UniqueRequestToken": "psiturk-hit-1", "RequesterAnnotation": "psiturk-hit-1"}
    with pytest.raises(spec.Refused, match="title and description"):
        spec.hit_type_request(make_settings(title=" "), reward=spec.checked_reward("1"), duration_hours=1,
                              requirements=[])
