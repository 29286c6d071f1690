"""The example project that setup-example copies: its files, checked without a server."""

import importlib.util
import json
import re
import struct
from pathlib import Path

import jinja2
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "psiturk_async" / "example"
TEMPLATES = EXAMPLE / "templates"
TASK_JS = EXAMPLE / "static" / "js" / "task.js"
MODE_MARKER = "workerId={{ workerid }}"

# What the server passes to each template it renders (psiTurk's names, plus participant_secret).
RENDERED = {
    "default.html": {},
    "ad.html": {"mode": "debug", "hitid": "debugH1", "assignmentid": "debugA1", "workerid": "debugW1"},
    "consent.html": {"mode": "debug", "hitid": "debugH1", "assignmentid": "debugA1", "workerid": "debugW1"},
    "exp.html": {
        "uniqueId": "debugW1:debugA1",
        "condition": 1,
        "counterbalance": 0,
        "adServerLoc": "/complete",
        "mode": "debug",
        "contact_address": "lab@example.org",
        "codeversion": "1.0",
        "participant_secret": "s3cret",
    },
    "complete.html": {"allow_repeats": True, "worker_id": "debugW1"},
    "closepopup.html": {},
    "thanks-mturksubmit.html": {
        "using_sandbox": True,
        "hitid": "H1",
        "assignmentid": "A1",
        "workerid": "W1",
    },
    "error.html": {"errornum": 1010, "errordesc": "already did it", "contact_address": "lab@example.org"},
    "custom.html": {"route": "/my_custom_view"},
}
# Served to the browser unrendered (preloadPages).
RAW = [
    "instructions/instruct-1.html",
    "instructions/instruct-2.html",
    "instructions/instruct-3.html",
    "instructions/instruct-ready.html",
    "stage.html",
    "postquestionnaire.html",
]


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def insert_mode(source: str) -> str:
    """What the server does to ad.html and consent.html (spec 5.16)."""
    at = source.rindex(MODE_MARKER) + len(MODE_MARKER)
    return source[:at] + "&mode={{ mode }}" + source[at:]


def preloaded_pages() -> list[str]:
    return re.findall(r"""["']([\w/.-]+\.html)["']""", TASK_JS.read_text())


@pytest.mark.parametrize("name", ["layouts/layout.html", *RENDERED, *RAW])
def test_template_exists(name: str) -> None:
    assert (TEMPLATES / name).is_file()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_template_renders_with_only_the_server_variables(name: str) -> None:
    html = environment().get_template(name).render(**RENDERED[name])
    assert html.lstrip().lower().startswith("<!doctype html>")


@pytest.mark.parametrize("name", ["ad.html", "consent.html"])
def test_mode_marker_leads_the_participant_link(name: str) -> None:
    source = (TEMPLATES / name).read_text()
    assert MODE_MARKER in source
    html = environment().from_string(insert_mode(source)).render(**RENDERED[name])
    target = "/consent?" if name == "ad.html" else "/exp?"
    assert f'{target}hitId=debugH1&assignmentId=debugA1&workerId=debugW1&mode=debug"' in html


def test_ad_shows_no_link_in_preview() -> None:
    variables = {**RENDERED["ad.html"], "assignmentid": "ASSIGNMENT_ID_NOT_AVAILABLE"}
    html = environment().from_string(insert_mode((TEMPLATES / "ad.html").read_text())).render(**variables)
    assert "/consent?" not in html
    assert "Accept the HIT" in html


def test_error_page_has_the_error_marker() -> None:
    source = (TEMPLATES / "error.html").read_text()
    assert "<b>Error</b>: {{ errornum }}" in source
    html = environment().get_template("error.html").render(**RENDERED["error.html"], workerId="W9")
    assert "<b>Error</b>: 1010" in html
    assert "already done this study" in html
    assert "Worker ID: W9" in html


def test_exp_page_exposes_the_participant_and_loads_the_client_module() -> None:
    html = environment().get_template("exp.html").render(**RENDERED["exp.html"])
    assert 'var uniqueId = "debugW1:debugA1";' in html
    assert "var condition = 1;" in html
    assert '<script type="module">' in html
    assert 'import { createPsiTurk } from "/static/js/psiturk.mjs";' in html
    assert "s3cret" not in html


def test_thanks_page_posts_to_the_sandbox() -> None:
    html = environment().get_template("thanks-mturksubmit.html").render(**RENDERED["thanks-mturksubmit.html"])
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in html
    assert "/worker_submitted?uniqueId=W1:A1" in html
    for field, value in (("assignmentId", "A1"), ("hitId", "H1"), ("workerId", "W1")):
        assert f'name="{field}" value="{value}"' in html


@pytest.mark.parametrize("name", RAW)
def test_raw_pages_need_no_rendering(name: str) -> None:
    source = (TEMPLATES / name).read_text()
    assert "{{" not in source and "{%" not in source


@pytest.mark.parametrize("name", [name for name in RAW if name.startswith("instructions/")])
def test_instruction_pages_have_navigation(name: str) -> None:
    source = (TEMPLATES / name).read_text()
    assert 'class="instructionsnav"' in source
    assert re.search(r'class="[^"]*\bcontinue\b', source)
    has_previous = bool(re.search(r'class="[^"]*\bprevious\b', source))
    assert has_previous == (name not in ("instructions/instruct-1.html", "instructions/instruct-ready.html"))


def test_task_js_is_an_es_module_with_the_entry_point() -> None:
    assert re.search(r"^export async function runTask\(psiTurk, ", TASK_JS.read_text(), re.M)


def test_task_js_preloads_only_existing_pages() -> None:
    pages = preloaded_pages()
    assert set(RAW) <= set(pages)
    for page in pages:
        assert (TEMPLATES / page).is_file(), page


def test_questionnaire_fields_have_ids() -> None:
    source = (TEMPLATES / "postquestionnaire.html").read_text()
    fields = re.findall(r"<(select|textarea)\b([^>]*)>", source)
    assert fields
    assert all(re.search(r'\bid="\w+"', attributes) for _, attributes in fields)
    assert 'id="next"' in source


def test_favicon_is_an_icon() -> None:
    data = (EXAMPLE / "static" / "favicon.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1) and count >= 1


def test_custom_py_compiles() -> None:
    path = EXAMPLE / "custom.py"
    compile(path.read_text(), str(path), "exec")


def test_custom_py_computes_the_bonus_from_test_hits() -> None:
    pytest.importorskip("psiturk_async.custom")
    spec = importlib.util.spec_from_file_location("example_custom", EXAMPLE / "custom.py")
    assert spec and spec.loader
    custom = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(custom)

    def record(trialdata: object) -> dict[str, object]:
        return {"uniqueid": "w:a", "current_trial": 0, "dateTime": 0, "trialdata": trialdata}

    datastring = json.dumps(
        {
            "data": [
                record({"phase": "INSTRUCTIONS", "hit": True}),
                record({"phase": "TEST", "hit": True}),
                record({"phase": "TEST", "hit": False}),
                record({"phase": "TEST", "hit": True}),
                record(["a", "list", "row"]),
            ]
        }
    )
    assert custom.bonus_for(datastring) == 0.04
    assert custom.bonus_for(None) == 0.0
    paths = {route.path for route in custom.custom_code.routes}
    assert {"/compute_bonus", "/my_custom_view"} <= paths
