"""`psiturk.experiment_errors`: psiTurk's exception classes, raised by legacy routes, answered as ours.

`ExperimentError("improper_inputs")` raised in a blueprint route becomes the same error page, with the same
HTTP status, as psiturk-async's own routes give (psiTurk answered 200). `ExperimentApiError` and
`InvalidUsageError` keep psiTurk's JSON answer, `{...payload, "message": message}`.
"""

from __future__ import annotations

from typing import Any

from ..experiment_errors import CATALOGUE
from ..experiment_errors import ExperimentError as NativeExperimentError


class ExperimentError(NativeExperimentError):
    """psiTurk's constructor, `ExperimentError(value)`, and attributes, on psiturk-async's error."""

    experiment_errors = {name: kind.code for name, kind in CATALOGUE.items()}
    error_descriptions = {name: kind.description for name, kind in CATALOGUE.items()}

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value
        self.errornum = self.kind.code
        self.errordesc = self.kind.description
        self.template = "error.html"

    def __str__(self) -> str:
        return repr(self.value)


class ExperimentApiError(Exception):
    """An error for a JSON client: `message`, an HTTP status (500 unless given) and extra `payload` keys."""

    def __init__(self, message: str, status_code: int = 500, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.payload = payload

    def to_dict(self) -> dict[str, Any]:
        return {**(self.payload or {}), "message": self.message}


class InvalidUsageError(ExperimentApiError):
    """An ExperimentApiError whose status defaults to 400."""

    def __init__(self, message: str, status_code: int = 400, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message, status_code, payload)


class InvalidUsage(InvalidUsageError):
    """psiTurk 2's name, still imported by custom.py files from that time."""
