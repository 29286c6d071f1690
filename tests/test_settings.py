"""Settings layers, their precedence, and the one-line errors for bad values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from psiturk_async.project import render_config
from psiturk_async.settings import KEYS, SettingsError, async_database_url, load_settings, redact_url


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    return project, home


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_defaults_match_psiturk(folders: tuple[Path, Path]) -> None:
    project, home = folders
    settings = load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)})
    assert settings.port == 22362
    assert settings.host == "localhost"
    assert settings.table_name == "assignments"
    assert settings.database_url == "sqlite:///participants.db"
    assert settings.browser_exclude_rule == "MSIE, mobile, tablet"
    assert settings.cutoff_time == 30
    assert settings.threads == "auto"
    assert settings.sources["port"] == "default"


def test_each_layer_beats_the_one_below(folders: tuple[Path, Path]) -> None:
    project, home = folders
    write(home / ".psiturkconfig", "[Server Parameters]\nport = 1001\nhost = home.example\nloglevel = 1\n"
          "[Task Parameters]\nnum_conds = 2\n")
    write(project / "config.txt", "[Server Parameters]\nport = 1002\nhost = project.example\n"
          "[Task Parameters]\nnum_conds = 3\nnum_counters = 4\n")
    write(project / ".env", "PSITURK_PORT=1003\nPSITURK_NUM_CONDS=5\n")
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "PSITURK_PORT": "1004"}
    settings = load_settings(project, environ=environ)
    assert settings.port == 1004 and settings.sources["port"] == "PSITURK_PORT"
    assert settings.num_conds == 5 and settings.sources["num_conds"].endswith(".env")
    assert settings.num_counters == 4 and settings.sources["num_counters"] == str(project / "config.txt")
    assert settings.host == "project.example"
    assert settings.loglevel == 1 and settings.sources["loglevel"] == str(home / ".psiturkconfig")


def test_env_sets_keys_no_file_mentions(folders: tuple[Path, Path]) -> None:
    project, home = folders
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "PSITURK_AD_URL": "https://x.example/pub"}
    assert load_settings(project, environ=environ).ad_url == "https://x.example/pub"


def test_prefixed_env_beats_bare_and_empty_is_ignored(folders: tuple[Path, Path]) -> None:
    project, home = folders
    base = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)}
    assert load_settings(project, environ={**base, "PORT": "5000"}).port == 5000
    assert load_settings(project, environ={**base, "PORT": "5000", "PSITURK_PORT": "6000"}).port == 6000
    assert load_settings(project, environ={**base, "PORT": ""}).port == 22362
    url = "postgresql://u@db/x"
    assert load_settings(project, environ={**base, "DATABASE_URL": url}).database_url == url


def test_dotenv_never_overrides_the_environment(folders: tuple[Path, Path]) -> None:
    project, home = folders
    write(project / ".env", "PORT=7777\nexport PSITURK_TITLE='From dotenv'\n")
    base = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)}
    assert load_settings(project, environ={**base, "PORT": "8888"}).port == 8888
    settings = load_settings(project, environ=base)
    assert settings.port == 7777 and settings.title == "From dotenv"


def test_global_config_defaults_to_home(folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    project, home = folders
    monkeypatch.setenv("HOME", str(home))
    write(home / ".psiturkconfig", "[AWS Access]\naws_access_key_id = AKIAHOME\n")
    assert load_settings(project, environ={}).aws_access_key_id == "AKIAHOME"


def test_on_cloud_needs_a_truthy_value(folders: tuple[Path, Path]) -> None:
    project, home = folders
    base = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "DATABASE_URL": "postgres://u@db/x"}
    assert load_settings(project, environ={**base, "ON_CLOUD": "0"}).host == "localhost"
    cloud = load_settings(project, environ={**base, "ON_CLOUD": "1"})
    assert (cloud.host, cloud.threads, cloud.logfile) == ("0.0.0.0", 1, "-")


def test_on_cloud_refuses_sqlite(folders: tuple[Path, Path]) -> None:
    project, home = folders
    with pytest.raises(SettingsError, match="ON_CLOUD"):
        load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "ON_CLOUD": "true"})


@pytest.mark.parametrize(("source", "key", "value", "section"), [
    ("config", "port", "abc", "Server Parameters"),
    ("config", "num_conds", "0", "Task Parameters"),
    ("config", "allow_repeats", "maybe", "Task Parameters"),
    ("env", "threads", "lots", "Server Parameters"),
])
def test_bad_value_names_source_section_and_key(folders: tuple[Path, Path], source: str, key: str,
                                                 value: str, section: str) -> None:
    project, home = folders
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)}
    if source == "config":
        write(project / "config.txt", f"[{section}]\n{key} = {value}\n")
        where = str(project / "config.txt")
    else:
        environ[f"PSITURK_{key.upper()}"] = value
        where = f"PSITURK_{key.upper()}"
    with pytest.raises(SettingsError) as caught:
        load_settings(project, environ=environ)
    message = str(caught.value)
    assert "\n" not in message
    assert f"[{section}] {key}" in message and where in message and repr(value) in message


def test_bad_secret_value_is_not_echoed(folders: tuple[Path, Path]) -> None:
    project, home = folders
    write(project / "config.txt", "[Database Parameters]\ndatabase_url = mysql://u:hunter2@db/x\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)})
    assert "PostgreSQL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_key_warns(folders: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    project, home = folders
    write(project / "config.txt", "[Task Parameters]\nnum_condz = 2\n")
    with caplog.at_level(logging.WARNING):
        settings = load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)})
    assert settings.num_conds == 1
    assert "num_condz" in caplog.text


def test_legacy_keys_are_copied(folders: tuple[Path, Path]) -> None:
    project, home = folders
    write(project / "config.txt", "[HIT Configuration]\nrequire_quals = Q1, Q2\n"
          "[Database Parameters]\nassignments_table_name = my_participants\n"
          "[Server Parameters]\nerrorlog = errors.log\n")
    settings = load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)})
    assert settings.require_quals_live == settings.require_quals_sandbox == "Q1, Q2"
    assert settings.table_name == "my_participants"
    assert settings.logfile == "errors.log"


def test_database_urls() -> None:
    project = Path("/srv/study")
    assert async_database_url("postgres://u:p@h:5432/d", project) == "postgresql+asyncpg://u:p@h:5432/d"
    assert async_database_url("postgresql://u@h/d", project) == "postgresql+asyncpg://u@h/d"
    assert async_database_url("sqlite:///participants.db", project) == "sqlite+aiosqlite:////srv/study/participants.db"
    assert async_database_url("sqlite:////tmp/x.db", project) == "sqlite+aiosqlite:////tmp/x.db"
    assert redact_url("postgresql://u:hunter2@h/d") == "postgresql://u:********@h/d"


def test_redacted_hides_secrets(folders: tuple[Path, Path]) -> None:
    project, home = folders
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "AWS_SECRET_ACCESS_KEY": "s3cr3t",
               "PSITURK_ADMIN_TOKEN": "tok3n", "DATABASE_URL": "postgresql://u:hunter2@h/d"}
    shown = str(load_settings(project, environ=environ).redacted())
    assert "s3cr3t" not in shown and "tok3n" not in shown and "hunter2" not in shown


def test_example_config_lists_every_key_and_loads(folders: tuple[Path, Path]) -> None:
    project, home = folders
    text = render_config({"num_conds": "2"})
    for key in KEYS:
        assert f"{key.name} = " in text
    write(project / "config.txt", text)
    settings = load_settings(project, environ={"PSITURK_GLOBAL_CONFIG_LOCATION": str(home)})
    assert settings.num_conds == 2
    assert settings.sources["port"] == "default"


@pytest.mark.parametrize(("database_url", "threads", "expected"), [
    ("", "auto", 1),
    ("sqlite:///study.db", "auto", 1),
    ("postgresql://u@db/x", "auto", "cpus"),
    ("sqlite:///study.db", "3", 3),
    ("postgresql://u@db/x", "2", 2),
])
def test_auto_threads_is_one_process_on_sqlite_and_one_per_cpu_on_postgresql(
        folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, database_url: str, threads: str,
        expected: int | str) -> None:
    project, home = folders
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    environ = {"PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "PSITURK_THREADS": threads}
    if database_url:
        environ["DATABASE_URL"] = database_url
    settings = load_settings(project, environ=environ)
    assert settings.worker_count == (6 if expected == "cpus" else expected)
