"""psiTurk's ExperimentError catalogue: names and numbers unchanged, each with an HTTP status of its own.

psiTurk answered every one of these with 200; browsers, proxies and monitoring deserve the real status.
The rendered error.html still carries psiTurk's `<b>Error</b>: NNNN` marker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorKind:
    code: int
    http_status: int
    description: str


CATALOGUE: dict[str, ErrorKind] = {
    "status_incorrectly_set": ErrorKind(1000, 409, "The ad was requested for an assignment whose recorded "
                                        "status the ad cannot handle."),
    "hit_assign_worker_id_not_set_in_mturk": ErrorKind(1001, 400, "The ad address lacks hitId, assignmentId "
                                                       "or mode."),
    "hit_assign_worker_id_not_set_in_consent": ErrorKind(1002, 400, "The consent address lacks hitId, "
                                                         "assignmentId, workerId or mode."),
    "hit_assign_worker_id_not_set_in_exp": ErrorKind(1003, 400, "The experiment address lacks hitId, "
                                                     "assignmentId, workerId or mode."),
    "hit_assign_appears_in_database_more_than_once": ErrorKind(1004, 409, "This HIT and assignment are "
                                                               "recorded more than once."),
    "already_started_exp": ErrorKind(1008, 403, "This experiment was already started in another session and "
                                     "cannot be started again."),
    "already_started_exp_mturk": ErrorKind(1009, 403, "This HIT was already started and cannot be started "
                                           "again."),
    "already_did_exp_hit": ErrorKind(1010, 403, "This worker has already taken part in this experiment."),
    "tried_to_quit": ErrorKind(1011, 404, "The participant who tried to quit is not on record."),
    "intermediate_save": ErrorKind(1012, 400, "Saving intermediate data failed."),
    "improper_inputs": ErrorKind(1013, 400, "A required parameter such as uniqueId is missing."),
    "browser_type_not_allowed": ErrorKind(1014, 403, "This browser is not allowed for this experiment."),
    "api_server_not_reachable": ErrorKind(1015, 502, "The psiTurk API server could not be reached."),
    "ad_not_found": ErrorKind(1016, 404, "The ad could not be found."),
    "error_setting_worker_complete": ErrorKind(1017, 404, "The participant could not be marked complete: "
                                               "the record was not found or cannot move to complete."),
    "hit_not_registered_with_ad_server": ErrorKind(1018, 404, "The HIT is not registered with an ad server."),
    "template_unsafe": ErrorKind(1019, 500, "A template could not be rendered safely."),
    "insert_mode_failed": ErrorKind(1020, 500, "The template lacks the workerId={{ workerid }} marker "
                                    "the mode is inserted after."),
    "not_your_participant": ErrorKind(1021, 403, "This browser did not start this participant's session, "
                                      "so it cannot change it."),
    "page_not_found": ErrorKind(404, 404, "This page does not exist."),
    "in_debug": ErrorKind(2005, 400, "Not available in debug mode."),
    "unknown_error": ErrorKind(9999, 500, "An unknown error occurred."),
}


class ExperimentError(Exception):
    """Shows the participant the project's error page with psiTurk's error number."""

    def __init__(self, name: str, *, http_status: int | None = None, **context: str | None) -> None:
        if name not in CATALOGUE:
            raise ValueError(f"unknown experiment error {name!r}")
        super().__init__(name)
        self.name = name
        self.kind = CATALOGUE[name]
        self.http_status = http_status or self.kind.http_status
        # Only these ids reach the template; query parameters are never splatted into it.
        self.context = {key: value for key, value in context.items() if key in {"hitId", "assignId", "workerId"}}
