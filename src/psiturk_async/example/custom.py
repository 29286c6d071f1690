"""Server-side code of this experiment: routes of your own, served next to psiturk-async's.

psiturk-async imports this file when the server starts and adds every route of the router named
``custom_code``. Restart the server after you change it. Errors raised here are written to the
server's log, not to the browser, so look there when a route misbehaves.

Two examples:
  GET /compute_bonus?uniqueId=...  works out a participant's bonus from their saved trials
                                   (task.js calls it through psiTurk.computeBonus at the end).
  GET /my_custom_view              renders templates/custom.html.
"""

import json
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from psiturk_async.custom import (
    APIRouter,
    DbSession,
    ExperimentError,
    Participant,
    render_template,
)

# Every route below is decorated with this router; psiturk-async finds it by this name.
custom_code = APIRouter()

BONUS_PER_CORRECT_TRIAL = 0.02


@custom_code.get("/compute_bonus")
async def compute_bonus(
    session: DbSession,
    unique_id: Annotated[str | None, Query(alias="uniqueId")] = None,
) -> JSONResponse:
    """Store the participant's bonus: $0.02 for every correct trial of the test phase."""
    # A bonus computed in the browser could be edited by the participant, so it is worked out
    # here from the data the server holds. (Those data did come from the browser too: treat the
    # bonus as a figure to check before you pay it, which is a separate, manual step.)
    if not unique_id:
        # Shows the error page (error 1013) instead of a JSON answer.
        raise ExperimentError("improper_inputs")

    # The session is the database connection for this request; get() looks a row up by its
    # primary key, which for participants is "workerId:assignmentId".
    participant = await session.get(Participant, unique_id)
    if participant is None:
        return JSONResponse(
            {"error": "participant_not_found", "detail": f"No participant {unique_id!r}."},
            status_code=404,
        )

    participant.bonus = bonus_for(participant.datastring)
    await session.commit()
    return JSONResponse({"bonusComputed": "success"})


def bonus_for(datastring: str | None) -> float:
    """The bonus earned by the trials in a saved datastring, in dollars (rounded to cents)."""
    # The datastring is the JSON the participant's browser saved: its "data" list holds one
    # record per psiTurk.recordTrialData call, with what task.js recorded under "trialdata".
    saved = json.loads(datastring) if datastring else {}
    correct = 0
    for record in saved.get("data", []):
        trial = record.get("trialdata")
        if isinstance(trial, dict) and trial.get("phase") == "TEST" and trial.get("hit") is True:
            correct += 1
    return round(correct * BONUS_PER_CORRECT_TRIAL, 2)


@custom_code.get("/my_custom_view")
async def my_custom_view(request: Request) -> HTMLResponse:
    """A page of your own: renders templates/custom.html with the values you pass."""
    return render_template(request, "custom.html", route=request.url.path)
