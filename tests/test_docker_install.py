"""The Dockerfile's install line and command, run as written in a fresh virtual environment.

No Docker engine runs on these machines, so this is how the image's path is tested: the same `pip install`
the image runs, then the image's CMD in a project folder, with the image's environment (host 0.0.0.0, PORT).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import httpx

from conftest import free_port, stop_process
from test_serve import wait_healthy

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_steps() -> tuple[list[str], list[str], dict[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = text.replace("\\\n", " ")
    install = next(line for line in text.splitlines() if line.startswith("RUN pip install"))
    command = re.search(r'^CMD (\[.*\])', text, re.MULTILINE)
    assert command is not None
    env_line = next(line for line in text.splitlines() if line.startswith("ENV ") and "PSITURK_HOST" in line)
    env = dict(pair.split("=", 1) for pair in shlex.split(env_line[4:]))
    return shlex.split(install[4:]), eval(command.group(1)), env  # noqa: S307 - our own Dockerfile's JSON list


def test_dockerfile_install_and_command_work_in_a_fresh_venv(tmp_path: Path) -> None:
    install, command, image_env = dockerfile_steps()
    assert install[:2] == ["pip", "install"] and install[-1] == ".[legacy]"
    assert command == ["psiturk-async", "serve"]
    assert image_env["PSITURK_HOST"] == "0.0.0.0"

    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    bin_dir = environment / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", *install], cwd=ROOT, check=True, capture_output=True,
                   timeout=900)

    # psiTurk 3's Flask custom.py needs the compatibility layer's packages: the image has them.
    subprocess.run([str(bin_dir / "python"), "-c", "import flask, a2wsgi, psycopg2, psiturk_async.legacy"],
                   check=True, capture_output=True)

    project = tmp_path / "project"
    subprocess.run([str(bin_dir / "psiturk-async"), "setup-example", str(project)], check=True,
                   capture_output=True)
    port = free_port()
    env = {**os.environ, **image_env, "PORT": str(port), "PSITURK_GLOBAL_CONFIG_LOCATION": str(tmp_path),
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen([str(bin_dir / command[0]), *command[1:]], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        script = httpx.get(f"http://127.0.0.1:{port}/static/js/psiturk.js")
        assert script.status_code == 200 and "PsiTurk" in script.text
    finally:
        stop_process(process)
    assert sys.executable not in str(bin_dir)
