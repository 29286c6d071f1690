"""Check JSON values against a botocore service model, so a fake cannot drift from the real client's model.

botocore validates only required members, Python types and minimums before it sends, and nothing at all on what
it receives; this checks the rest: types as they appear on the JSON wire, enums, patterns, min/max lengths and
ranges, unknown members.
"""

import re
from functools import cache
from typing import Any

import botocore.loaders


@cache
def load_model(service: str) -> dict[str, Any]:
    """The botocore service model (service-2.json) of the installed botocore."""
    return botocore.loaders.Loader().load_service_model(service, "service-2")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ShapeChecker:
    """Validates request and response bodies of one service's operations; each check returns a list of problems."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.shapes: dict[str, Any] = model["shapes"]
        self.operations: dict[str, Any] = model["operations"]

    def check_input(self, operation: str, body: object) -> list[str]:
        """Problems with a request body for `operation` (empty when it matches the model)."""
        return self._check_member_of(operation, "input", body)

    def check_output(self, operation: str, body: object) -> list[str]:
        """Problems with a successful response body for `operation`."""
        return self._check_member_of(operation, "output", body)

    def check_error(self, error_type: str, body: dict[str, Any]) -> list[str]:
        """Problems with a modeled error body (its members, without the protocol's `__type`)."""
        if error_type not in self.shapes or not self.shapes[error_type].get("exception"):
            return []
        members = {key: value for key, value in body.items() if key != "__type"}
        return self.check(error_type, members, error_type)

    def _check_member_of(self, operation: str, direction: str, body: object) -> list[str]:
        spec = self.operations[operation].get(direction)
        if spec is None:
            return [] if body in ({}, None) else [f"{operation} {direction}: expected no body, got {body!r}"]
        return self.check(spec["shape"], body, f"{operation} {direction}")

    def check(self, shape_name: str, value: object, path: str) -> list[str]:
        """Problems with `value` as an instance of the named shape; `path` prefixes each message."""
        shape = self.shapes[shape_name]
        kind = shape["type"]
        checker = getattr(self, f"_check_{kind}", None)
        if checker is None:
            return [f"{path}: shape {shape_name} has type {kind}, which this checker does not know"]
        return checker(shape, value, path)

    def _check_structure(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = [
            f"{path}.{name}: required member missing"
            for name in shape.get("required", [])
            if value.get(name) is None
        ]
        members = shape["members"]
        for name, item in value.items():
            if name not in members:
                problems.append(f"{path}.{name}: not a member of this structure")
            elif item is not None:
                problems += self.check(members[name]["shape"], item, f"{path}.{name}")
        return problems

    def _check_list(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        problems = self._check_bounds(shape, len(value), path, "items")
        for index, item in enumerate(value):
            problems += self.check(shape["member"]["shape"], item, f"{path}[{index}]")
        return problems

    def _check_map(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = self._check_bounds(shape, len(value), path, "entries")
        for key, item in value.items():
            problems += self.check(shape["key"]["shape"], key, f"{path} key {key!r}")
            problems += self.check(shape["value"]["shape"], item, f"{path}[{key!r}]")
        return problems

    def _check_string(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__}"]
        problems = self._check_bounds(shape, len(value), path, "characters")
        if "enum" in shape and value not in shape["enum"]:
            problems.append(f"{path}: {value!r} is not one of {shape['enum']}")
        if "pattern" in shape and not _pattern(shape["pattern"]).search(value):
            problems.append(f"{path}: {value!r} does not match {shape['pattern']}")
        return problems

    def _check_integer(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected an integer, got {value!r}"]
        return self._check_bounds(shape, value, path, "")

    _check_long = _check_integer

    def _check_float(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        if not _is_number(value):
            return [f"{path}: expected a number, got {value!r}"]
        return self._check_bounds(shape, value, path, "")

    _check_double = _check_float

    def _check_boolean(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean, got {value!r}"]

    def _check_timestamp(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        # The JSON protocol sends epoch seconds: an int from older botocore, a float from newer.
        return [] if _is_number(value) else [f"{path}: expected epoch seconds, got {value!r}"]

    def _check_blob(self, shape: dict[str, Any], value: object, path: str) -> list[str]:
        return [] if isinstance(value, str) else [f"{path}: expected a base64 string, got {type(value).__name__}"]

    def _check_bounds(self, shape: dict[str, Any], size: float, path: str, unit: str) -> list[str]:
        what = f"{size} {unit}".strip()
        if "min" in shape and size < shape["min"]:
            return [f"{path}: {what} is below the minimum {shape['min']}"]
        if "max" in shape and size > shape["max"]:
            return [f"{path}: {what} is above the maximum {shape['max']}"]
        return []


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
