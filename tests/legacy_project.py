"""psiTurk 3 style custom.py files for the legacy-layer tests, written as psiTurk 3 projects wrote them.

DOCS_CUSTOM_PY is the custom.py of the user docs' "Server-side computations" section: a Flask blueprint named
custom_code whose /compute_bonus reads the datastring through `Participant.query` and stores `bonus` with
`db_session`. The other routes exercise the rest of what psiTurk 3 handed custom.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOCS_CUSTOM_PY = '''
from flask import Blueprint, render_template, request, jsonify, Response, abort, current_app, url_for
from jinja2 import TemplateNotFound
from sqlalchemy import or_

from psiturk.psiturk_config import PsiturkConfig
from psiturk.experiment_errors import ExperimentError, InvalidUsageError
from psiturk.user_utils import PsiTurkAuthorization, nocache, print_to_log

from psiturk.db import db_session, init_db
from psiturk.models import Participant
from json import dumps, loads

config = PsiturkConfig()
config.load_config()

custom_code = Blueprint('custom_code', __name__, template_folder='templates', static_folder='static')


@custom_code.route('/compute_bonus', methods=['GET'])
def compute_bonus():
    if not 'uniqueId' in request.args:
        raise ExperimentError('improper_inputs')
    uniqueId = request.args['uniqueId']

    try:
        user = Participant.query.\\
            filter(Participant.uniqueid == uniqueId).\\
            one()
        user_data = loads(user.datastring)
        bonus = 0

        for record in user_data['data']:
            trial = record['trialdata']
            if trial['phase'] == 'TEST':
                if trial['hit'] == True:
                    bonus += 0.02
        user.bonus = bonus
        db_session.add(user)
        db_session.commit()
        resp = {"bonusComputed": "success"}
        return jsonify(**resp)
    except:
        abort(404)
'''

# More of what psiTurk 3 gave custom.py, appended to DOCS_CUSTOM_PY where a test needs it.
MORE_ROUTES = '''
import time

myauth = PsiTurkAuthorization(config)


@custom_code.route('/my_custom_view')
@nocache
def my_custom_view():
    print_to_log("Reached /my_custom_view")
    try:
        return render_template('custom.html', route=url_for('custom_code.my_custom_view'),
                               stylesheet=url_for('static', filename='css/style.css'))
    except TemplateNotFound:
        abort(404)


@custom_code.route('/view_data')
@myauth.requires_auth
def list_my_data():
    users = Participant.query.filter(or_(Participant.status == 3, Participant.status == 4)).all()
    return jsonify(sorted(user.uniqueid for user in users))


@custom_code.route('/settings_seen')
def settings_seen():
    return jsonify(codeversion=config.get('Task Parameters', 'experiment_code_version'),
                   num_conds=config.getint('Task Parameters', 'num_conds'),
                   us_only=config.getboolean('HIT Configuration', 'us_only'),
                   table=config.get('Database Parameters', 'table_name'))


@custom_code.route('/add_participant', methods=['POST'])
def add_participant():
    user = Participant(workerid=request.form['workerId'], assignmentid=request.form['assignmentId'],
                       hitid=request.form['hitId'], mode='debug', cond=1, counterbalance=0)
    db_session.add(user)
    db_session.commit()
    return jsonify(user.object_as_dict(filter_these=['datastring', 'beginhit']))


@custom_code.route('/exp')
def shadowed_exp():
    return 'the blueprint must not answer /exp'


@custom_code.route('/bad_request')
def bad_request():
    raise InvalidUsageError(message='no such thing', payload={'field': 'x'})


@custom_code.route('/exp_error')
def exp_error():
    raise ExperimentError('hit_assign_worker_id_not_set_in_exp')


@custom_code.route('/slow')
def slow():
    time.sleep(float(request.args.get('seconds', '1')))
    return 'slept'


def init_app(app):
    app.config['INIT_APP_CALLED'] = True

    @app.route('/added_by_init_app')
    def added_by_init_app():
        return jsonify(flask_app=app.name)
'''


def write_custom(project_dir: Path, source: str) -> None:
    (project_dir / "custom.py").write_text(source, encoding="utf-8")


def stroop_record(uid: str, hits: list[bool], *, condition: int = 0) -> dict[str, Any]:
    """A saved psiturk.js model of a Stroop run: instructions, one TEST trial per entry of `hits`."""
    worker, assignment = uid.split(":")
    trials: list[dict[str, Any]] = [{"phase": "INSTRUCTIONS", "action": "FinishInstructions", "viewTime": 900}]
    trials += [{"phase": "TEST", "word": "RED", "color": "red", "relation": "congruent", "hit": hit, "rt": 500 + n}
               for n, hit in enumerate(hits)]
    return {
        "condition": condition, "counterbalance": 0, "assignmentId": assignment, "workerId": worker,
        "hitId": "H1", "currenttrial": len(trials), "bonus": 0, "useragent": "Mozilla/5.0", "mode": "live",
        "data": [{"uniqueid": uid, "current_trial": n, "dateTime": 1700000000000 + 1000 * n, "trialdata": trial}
                 for n, trial in enumerate(trials)],
        "questiondata": {"engagement": "8", "difficulty": "3"},
        "eventdata": [{"eventtype": "initialized", "value": None, "timestamp": 1700000000000, "interval": 0},
                      {"eventtype": "window_resize", "value": [1280, 720], "timestamp": 1700000000500,
                       "interval": 0}],
    }


def docs_bonus(hits: list[bool]) -> float:
    """What the docs' compute_bonus stores: 0.02 per TEST hit, summed as floats in trial order."""
    bonus = 0.0
    for hit in hits:
        if hit:
            bonus += 0.02
    return bonus
