"""Without the `legacy` extra, a psiTurk 3 custom.py stops start-up with one line: what it is, and the command.

The extra is installed in the test environment, so its absence is made: in process by blocking `flask` (or
`a2wsgi`) in sys.modules, and for `serve` by a sitecustomize on PYTHONPATH that refuses to import them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from legacy_project import DOCS_CUSTOM_PY, write_custom
from participant_flow import serve_until_exit
from psiturk_async.extensions import LEGACY_HINT, CustomCodeError
from psiturk_async.main import create_app
from psiturk_async.settings import Settings

BLOCKER = '''
import sys


class WithoutTheLegacyExtra:
    """Refuses the modules the `legacy` extra installs, as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"flask", "a2wsgi", "werkzeug", "psycopg2"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, WithoutTheLegacyExtra())
'''


@pytest.mark.parametrize("blocked", ["flask", "a2wsgi"])
def test_a_flask_custom_py_without_the_extra_is_one_clear_line(settings: Settings, blocked: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)
    write_custom(settings.project_dir, DOCS_CUSTOM_PY)

    with pytest.raises(CustomCodeError) as raised:
        create_app(settings)

    assert str(raised.value) == LEGACY_HINT
    assert "\n" not in LEGACY_HINT and "pip install 'psiturk-async[legacy]'" in LEGACY_HINT
    assert "psiturk" not in sys.modules


def test_serve_without_the_extra_exits_with_the_one_line(settings: Settings, environ: dict[str, str],
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "without-legacy"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    write_custom(settings.project_dir, DOCS_CUSTOM_PY)

    result = serve_until_exit(settings.project_dir, {**environ, "PYTHONPATH": str(blocker)})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert LEGACY_HINT in lines[-1], result.stderr
    assert sum(LEGACY_HINT in line for line in lines) == 1, result.stderr


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    """The serve test above proves something only if its sitecustomize keeps Flask out."""
    import subprocess

    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", "import flask"], env={"PYTHONPATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)

    assert result.returncode != 0 and "No module named 'flask'" in result.stderr
