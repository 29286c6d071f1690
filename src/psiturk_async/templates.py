"""The project's templates: rendered pages, psiTurk's mode insertion, and raw pages for preloadPages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

MODE_MARKER = "workerId={{ workerid }}"
INSERT_MODE = frozenset({"ad.html", "consent.html"})
REQUIRED = ("ad.html", "consent.html", "exp.html", "complete.html", "error.html", "closepopup.html",
            "thanks-mturksubmit.html")
# Pages the server renders itself; the raw-page route never hands out their source.
SERVER_RENDERED = frozenset(REQUIRED + ("default.html",))
NO_CACHE = {"Cache-Control": "no-cache"}


class MissingModeMarker(Exception):
    pass


class MissingTemplates(Exception):
    pass


def insert_mode(source: str) -> str:
    """psiTurk's rule: put `&mode={{ mode }}` after the last `workerId={{ workerid }}` of the page."""
    position = source.rfind(MODE_MARKER)
    if position < 0:
        raise MissingModeMarker(MODE_MARKER)
    end = position + len(MODE_MARKER)
    return source[:end] + "&mode={{ mode }}" + source[end:]


class ProjectLoader(jinja2.FileSystemLoader):
    """Loads from the project's templates/, inserting the mode into the ad and consent pages as it reads them."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        if template in INSERT_MODE:
            source = insert_mode(source)
        return source, filename, uptodate


class ProjectTemplates:
    def __init__(self, project_dir: Path) -> None:
        self.folder = project_dir / "templates"
        self.environment = jinja2.Environment(
            loader=ProjectLoader(str(self.folder)),
            autoescape=jinja2.select_autoescape(["html", "htm"]),
            # psiTurk's own ad.html uses a variable it never passes: undefined renders empty, as in Flask.
            undefined=jinja2.ChainableUndefined,
            auto_reload=True,
        )

    def missing_required(self) -> list[str]:
        return [name for name in REQUIRED if not (self.folder / name).is_file()]

    def check(self) -> None:
        """Stop start-up when a template the server renders is absent or the mode marker is missing."""
        missing = self.missing_required()
        if missing:
            raise MissingTemplates(f"missing template(s) in {self.folder}: {', '.join(missing)}")
        for name in sorted(INSERT_MODE):
            if MODE_MARKER not in (self.folder / name).read_text(encoding="utf-8"):
                raise MissingTemplates(f"{self.folder / name} lacks the text {MODE_MARKER}, after which psiTurk "
                                       "inserts the mode")

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        try:
            template = self.environment.get_template(name)
        except MissingModeMarker:
            from .experiment_errors import ExperimentError

            raise ExperimentError("insert_mode_failed") from None
        html = template.render(**context)
        return HTMLResponse(html, status_code=status_code, headers=NO_CACHE)

    def raw_page(self, path: str) -> Path | None:
        """A file under templates/ to send as it is on disk, or None (absent, server-rendered, or outside)."""
        folder = self.folder.resolve()
        candidate = (self.folder / path).resolve()
        if not candidate.is_relative_to(folder) or not candidate.is_file():
            return None
        # Judge the file actually reached, so "ad.html/", "x/../ad.html" or "layouts//…" reveal nothing.
        parts = candidate.relative_to(folder).parts
        if "/".join(parts) in SERVER_RENDERED or parts[0] == "layouts" or any(p.startswith(".") for p in parts):
            return None
        return candidate
