"""A psiTurk 3 project as a lab would have it, built file by file from the spec's list (§8): templates with
psiTurk's names and variables, an old-style task.js on the global PsiTurk constructor with jQuery and
underscore, psiTurk's jQuery/underscore/Backbone copied from psiTurk 3.3.1, and the docs' Flask custom.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from legacy_project import DOCS_CUSTOM_PY, write_custom

CONFIG_TXT = """[HIT Configuration]
title = Press the letter
description = Press the letter you see (about 2 minutes)
keywords = psychology, reaction time

[Database Parameters]
table_name = assignments

[Server Parameters]
loglevel = 2

[Task Parameters]
experiment_code_version = 1.0
num_conds = 1
num_counters = 1
"""

LAYOUT = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>{% block title %}Psychology Experiment{% endblock %}</title>
  {% block head %}{% endblock %}
</head>
<body>{% block body %}{% endblock %}</body>
</html>
"""

AD = """{% extends "layouts/layout.html" %}
{% block head %}
<script src="/static/lib/jquery-3.4.1.min.js"></script>
<script>
  function openwindow() {
    popup = window.open('{{ server_location }}/consent?hitId={{ hitid }}&assignmentId={{ assignmentid }}' +
                        '&workerId={{ workerid }}', 'Popup', 'toolbar=no,status=no,width=1024,height=768');
  }
</script>
{% endblock %}
{% block body %}
{% if assignmentid == "ASSIGNMENT_ID_NOT_AVAILABLE" %}
  <h1>Call for participants</h1>
  <p>Accept the HIT to begin.</p>
{% else %}
  <h1>Thank you for accepting this HIT!</h1>
  <button type="button" id="begin" onclick="openwindow();">Begin Experiment</button>
{% endif %}
{% endblock %}
"""

CONSENT = """{% extends "layouts/layout.html" %}
{% block body %}
<h1>Consent</h1>
<p>By continuing you agree to take part.</p>
<script>
  function agree() {
    window.location = '/exp?hitId={{ hitid }}&assignmentId={{ assignmentid }}' +
                      '&workerId={{ workerid }}';
  }
</script>
<button type="button" id="agree" onclick="agree();">I agree</button>
<button type="button" onclick="window.close();">No thanks</button>
{% endblock %}
"""

EXP = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>Psychology Experiment</title>
  <script>
    var uniqueId = "{{ uniqueId }}";
    var condition = {{ condition }};
    var counterbalance = {{ counterbalance }};
    var adServerLoc = "{{ adServerLoc }}";
    var mode = "{{ mode }}";
    var codeversion = "{{ codeversion }}";
  </script>
  <script src="/static/lib/jquery-3.4.1.min.js"></script>
  <script src="/static/lib/underscore-min.js"></script>
  <script src="/static/lib/backbone-min.js"></script>
  <script src="/static/js/psiturk.js"></script>
  <script src="/static/js/task.js"></script>
</head>
<body><noscript><h1>Please enable JavaScript.</h1></noscript></body>
</html>
"""

COMPLETE = """{% extends "layouts/layout.html" %}
{% block body %}<h1>Thanks, you are done</h1><p>worker {{ worker_id }}</p>{% endblock %}
"""

CLOSEPOPUP = """<!doctype html>
<html><head><title>Done</title></head>
<body>
<p>Closing this window.</p>
<script>
  window.opener.location.reload();
  window.close();
</script>
</body></html>
"""

THANKS_MTURKSUBMIT = """{% extends "layouts/layout.html" %}
{% block head %}<script src="/static/lib/jquery-3.4.1.min.js"></script>{% endblock %}
{% block body %}
<h1>Thanks for your participation</h1>
{% set mturk = "https://workersandbox.mturk.com" if using_sandbox else "https://www.mturk.com" %}
<form id="mturk_form" method="POST" action="{{ mturk }}/mturk/externalSubmit">
  <input type="hidden" name="assignmentId" value="{{ assignmentid }}">
  <input type="hidden" name="hitId" value="{{ hitid }}">
  <input type="hidden" name="workerId" value="{{ workerid }}">
</form>
<button type="button" id="submit-hit">Complete HIT</button>
<script>
  $("#submit-hit").click(function () {
    $.ajax({
      dataType: "json",
      type: "GET",
      url: "/worker_submitted?uniqueId={{ workerid }}:{{ assignmentid }}",
      success: function () { $("#mturk_form").submit(); }
    });
  });
</script>
{% endblock %}
"""

ERROR = """{% extends "layouts/layout.html" %}
{% block body %}
<h1>Sorry, there was an error</h1>
<p><b>Error</b>: {{ errornum }}</p>
<p>{{ errordesc }}</p>
<p>Write to {{ contact_address }}.</p>
{% endblock %}
"""

DEFAULT = """{% extends "layouts/layout.html" %}
{% block body %}<h1>This experiment runs on psiTurk</h1>{% endblock %}
"""

INSTRUCT = """<div id="container-instructions">
  <h1>Instructions</h1>
  <p>A letter will appear. Press that letter on your keyboard.</p>
  <div class="instructionsnav"><button type="button" id="next" class="continue">Begin</button></div>
</div>
"""

STAGE = """<div id="container-exp">
  <p id="prompt">Press the letter you see.</p>
  <h1 id="stim"></h1>
  <p id="progress"></p>
</div>
"""

# Old style: a global psiTurk, jQuery for the page, underscore to shuffle, callbacks all the way down.
TASK_JS = """
var psiTurk = new PsiTurk(uniqueId, adServerLoc, mode);

var pages = ["instructions/instruct-1.html", "stage.html"];
var init = (async () => { await psiTurk.preloadPages(pages); })();

var LetterTask = function () {
  var letters = _.shuffle(["r", "g", "b", "r"]);
  var shownAt;
  var answered = 0;

  var next = function () {
    if (letters.length === 0) {
      finish();
      return;
    }
    var letter = letters.shift();
    $("#stim").text(letter.toUpperCase()).attr("data-letter", letter);
    shownAt = new Date().getTime();
  };

  var respond = function (e) {
    var letter = $("#stim").attr("data-letter");
    if (!letter) return;
    var key = String.fromCharCode(e.keyCode).toLowerCase();
    psiTurk.recordTrialData({"phase": "TEST", "letter": letter, "response": key, "hit": key === letter,
                             "rt": new Date().getTime() - shownAt});
    answered += 1;
    $("#progress").text("Answered " + answered);
    next();
  };

  var finish = function () {
    $("body").unbind("keydown", respond);
    $("#stim").removeAttr("data-letter").text("");
    psiTurk.recordUnstructuredData("letters_seen", 4);
    psiTurk.saveData({
      success: function () {
        psiTurk.computeBonus("compute_bonus", function () {
          psiTurk.completeHIT();
        });
      },
      error: function () {
        $("body").html("<p id='failed'>Saving failed</p>");
      }
    });
  };

  psiTurk.showPage("stage.html");
  $("body").focus().keydown(respond);
  next();
};

$(window).on("load", async function () {
  await init;
  psiTurk.doInstructions(["instructions/instruct-1.html"], function () { new LetterTask(); });
});
"""

TEMPLATES = {
    "layouts/layout.html": LAYOUT, "default.html": DEFAULT, "ad.html": AD, "consent.html": CONSENT,
    "exp.html": EXP, "complete.html": COMPLETE, "closepopup.html": CLOSEPOPUP,
    "thanks-mturksubmit.html": THANKS_MTURKSUBMIT, "error.html": ERROR,
    "instructions/instruct-1.html": INSTRUCT, "stage.html": STAGE,
}
LIBRARIES = ("jquery-3.4.1.min.js", "underscore-min.js", "backbone-min.js")


def build_old_project(target: Path, psiturk_lib: Path) -> Path:
    """The project in `target`; `psiturk_lib` is the static/lib folder of psiTurk 3.3.1's example."""
    for name, text in TEMPLATES.items():
        path = target / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (target / "static" / "lib").mkdir(parents=True)
    for library in LIBRARIES:
        shutil.copy(psiturk_lib / library, target / "static" / "lib" / library)
    (target / "static" / "js").mkdir()
    (target / "static" / "js" / "task.js").write_text(TASK_JS, encoding="utf-8")
    (target / "config.txt").write_text(CONFIG_TXT, encoding="utf-8")
    write_custom(target, DOCS_CUSTOM_PY)
    return target
