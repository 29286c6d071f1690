"""The Flask app a psiTurk 3 blueprint is registered on, set up as psiTurk set up its own.

Templates and static files resolve against the project folder (psiTurk's cwd), so `render_template` in a
blueprint finds the project's templates/ and `url_for("static", ...)` points at /static. Experiment errors
render the server's own error page, with the same status; `init_app(app)` gets this Flask app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from ..errors import experiment_error_page
from ..experiment_errors import ExperimentError
from ..settings import Settings
from .database import LegacyDatabase
from .errors import ExperimentApiError

# The ids psiTurk's error.html shows; psiTurk passed every query parameter, psiturk-async only these.
ERROR_PAGE_IDS = ("hitId", "assignId", "workerId")


def build_flask_app(blueprint: Blueprint, *, settings: Settings, templates: Any, database: LegacyDatabase,
                    init_app: Callable[[Flask], Any] | None) -> Flask:
    """A Flask app with the blueprint registered and psiTurk's handlers; `init_app` called last."""
    project = settings.project_dir
    app = Flask("Experiment_Server", root_path=str(project), static_folder=str(project / "static"),
                template_folder=str(project / "templates"))
    app.config.update(SEND_FILE_MAX_AGE_DEFAULT=10, TEMPLATES_AUTO_RELOAD=True)
    app.secret_key = settings.secret_key or None
    app.register_blueprint(blueprint)

    def experiment_error(exc: ExperimentError) -> Response:
        for name in ERROR_PAGE_IDS:
            if name not in exc.context and request.args.get(name):
                exc.context[name] = request.args[name]
        page = experiment_error_page(exc, templates=templates, settings=settings, path=request.path)
        return Response(page.body, status=page.status_code, headers=list(page.headers.items()))

    def api_error(exc: ExperimentApiError) -> Response:
        answer = jsonify(exc.to_dict())
        answer.status_code = exc.status_code
        return answer

    app.register_error_handler(ExperimentError, experiment_error)
    app.register_error_handler(ExperimentApiError, api_error)
    app.teardown_appcontext(database.remove_session)
    if init_app is not None:
        init_app(app)
    return app


def blueprint_rules(app: Flask) -> list[str]:
    """The URL rules the blueprint (and init_app) added, for the start-up log (/static is the server's)."""
    return sorted({rule.rule for rule in app.url_map.iter_rules() if not rule.rule.startswith("/static/")})
