"""The ``switchboard`` command on bad input and the commands that need no node, run in-process with click's
``CliRunner``: the exit code and the exact lines a user sees (``tests/integration/test_cli.py`` runs the
installed command against real nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from nacl.signing import SigningKey

from router.cli import cli
from router.serve import program_name
from tests.conftest import DEMO_CONFIG, demo_document, write_config


def switchboard(*args: str, stdin: str | None = None) -> Result:
    """Run ``switchboard ARGS`` in this process; stdout and stderr apart."""
    return CliRunner().invoke(cli, list(args), prog_name="switchboard", input=stdin)


def test_check_valid_config_summarises_it() -> None:
    """check on the demo config exits 0 and lists transports, realms, roles and components."""
    result = switchboard("check", "--config", str(DEMO_CONFIG))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{DEMO_CONFIG}: valid",
        "  listen     main: ws://127.0.0.1:8080/ws (websocket, port 8080; "
        "auth: anonymous as anonymous, ticket, wampcra, cryptosign)",
        "  operations /health, /ready, /metrics on listener main",
        "  realm      demo: roles anonymous (6 rules), user (6 rules), admin (8 rules), backend (4 rules)",
        "  channel    chat.room (prefix) in demo: history 500, presence",
        "  component  components.chat.ChatComponent in demo as backend",
        "  component  components.system.SystemComponent in demo as backend",
    ]


def test_check_reports_every_problem_with_its_pointer(tmp_path: Path) -> None:
    """check exits 2 and prints each problem as '<JSON pointer>: <message>', no traceback."""
    doc = demo_document()
    doc["realms"][0]["roles"]["user"] = {
        "allow": [{"uri": "chat.send", "actions": ["call"]}, {"uri": "chat.x", "actions": ["cal"]}]
    }
    doc["listen"][0]["colour"] = "blue"
    del doc["listen"][0]["port"]
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert (
        "/listen/0/colour: unknown key (allowed: allowed_origins, auth, host, max_message_size, name, "
        "open_handshake_timeout, path, ping_interval, ping_timeout, port, serializers, tls, type, web)" in lines
    )
    assert "/listen/0/port: is required" in lines
    assert (
        "/realms/0/roles/user/allow/1/actions/0: 'cal' is not one of ['call', 'register', 'publish', 'subscribe']"
        in lines
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_check_reports_broken_references(tmp_path: Path) -> None:
    """Names that must refer to something (component realm/role, anonymous role) are checked too."""
    doc = demo_document()
    doc["components"][0]["realm"] = "nowhere"
    doc["components"][1]["role"] = "ghost"
    doc["listen"][0]["auth"]["anonymous"]["role"] = "guest"
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:3] == [
        "/listen/0/auth/anonymous/role: role 'guest' is not defined in realm 'demo'",
        "/components/0/realm: no realm named 'nowhere' (defined: demo)",
        "/components/1/role: no role 'ghost' in realm 'demo'",
    ]


def test_check_reports_invalid_json_with_line_and_column(tmp_path: Path) -> None:
    """Broken JSON is reported with its line and column, exit 2."""
    path = tmp_path / "broken.json"
    path.write_text('{\n  "listen": [\n    {"name": "main",,}\n  ]\n}\n')
    result = switchboard("check", "--config", str(path))
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == f"{path}: invalid JSON at line 3, column 21: Expecting property name enclosed in double quotes"
    )


def test_check_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist is bad input: exit 2, one clear line."""
    result = switchboard("check", "--config", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert f"no such file: {tmp_path / 'nope.json'}" in result.stderr


def test_check_refuses_a_reserved_role_name(tmp_path: Path) -> None:
    """A role named `trusted` (Crossbar's own, which may use wamp.*) is refused by check: exit 2, one line."""
    doc = demo_document()
    doc["realms"][0]["roles"]["trusted"] = {"allow": []}
    result = switchboard("check", "--config", str(write_config(tmp_path, doc)))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "/realms/0/roles/trusted: 'trusted' is a role reserved by the router"


def test_run_with_an_invalid_config_starts_nothing(tmp_path: Path) -> None:
    """run checks the config like check does: exit 2 with the problems, before any data directory exists."""
    doc = demo_document()
    del doc["listen"][0]["port"]
    result = switchboard("run", "--config", str(write_config(tmp_path, doc)), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "/listen/0/port: is required",
        f"{tmp_path / 'switchboard.json'}: 1 problem(s), nothing done",
    ]
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("run", "--port", "70000"), ("'--port'", "70000", "0<=x<=65535")),
        (("run", "--loglevel", "loud"), ("'--loglevel'", "'loud'", "'error', 'warn', 'info', 'debug'")),
        (("check", "--colour"), ("No such option", "--colour")),
    ],
)
def test_bad_options_exit_2_with_one_error_line(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    """Bad options are usage errors: exit 2, nothing on stdout, and one `Error:` line on stderr naming the
    option and what is wrong with it (click words it; its wording varies between click versions)."""
    result = switchboard(*args)
    assert result.exit_code == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert all(word in error for word in words), error
    assert result.stdout == ""


def add_password_user(data_dir: Path, config: Path, authid: str) -> None:
    added = switchboard(
        "user", "add", authid, "--role", "user", "--password-stdin", "--config", str(config), "--data-dir",
        str(data_dir), stdin="correct horse battery staple\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr


def test_user_list_names_stored_methods_no_transport_enables(tmp_path: Path) -> None:
    """The demo config enables ticket, wampcra and cryptosign but not scram: the table shows what is stored
    (a password stores all three password methods) and one note line says scram serves no login."""
    data = tmp_path / "data"
    add_password_user(data, DEMO_CONFIG, "alice")
    result = switchboard("user", "list", "--config", str(DEMO_CONFIG), "--data-dir", str(data))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["demo", "alice", "user", "yes", "scram,ticket,wampcra", "0"]
    assert lines[2:] == [f"note: not enabled by any transport in {DEMO_CONFIG}, so no login uses it: scram"]


def test_user_list_has_no_note_when_every_stored_method_is_enabled(tmp_path: Path) -> None:
    """With scram enabled too, every stored method serves logins: the table and nothing else."""
    doc = demo_document()
    doc["listen"][0]["auth"]["scram"] = {}
    config = write_config(tmp_path, doc)
    data = tmp_path / "data"
    add_password_user(data, config, "alice")
    result = switchboard("user", "list", "--config", str(config), "--data-dir", str(data))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "note:" not in result.stdout


def test_user_list_names_keys_when_no_transport_enables_cryptosign(tmp_path: Path) -> None:
    """Keys serve only cryptosign: with a config that enables only tickets, a user's key is named unused."""
    doc = demo_document()
    doc["listen"][0]["auth"] = {"ticket": {}}
    config = write_config(tmp_path, doc)
    data = tmp_path / "data"
    common = ("--config", str(config), "--data-dir", str(data))
    assert switchboard("user", "add", "bob", "--role", "user", "--no-password", *common).exit_code == 0
    added = switchboard("key", "add", "bob", SigningKey.generate().verify_key.encode().hex(), *common)
    assert added.exit_code == 0, added.stderr
    result = switchboard("user", "list", *common)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].split() == ["demo", "bob", "user", "yes", "-", "1"]
    assert result.stdout.splitlines()[2] == (
        f"note: not enabled by any transport in {config}, so no login uses it: cryptosign"
    )


@pytest.mark.parametrize(
    ("argv0", "on_path", "expected"),
    [
        # ./dev run execs .venv/bin/switchboard, which is not on PATH
        (".venv/bin/switchboard", None, ".venv/bin/switchboard"),
        ("/opt/sb/bin/switchboard", "/usr/local/bin/switchboard", "/opt/sb/bin/switchboard"),
        ("/home/me/my dir/.venv/bin/switchboard", None, "'/home/me/my dir/.venv/bin/switchboard'"),
        # PATH finds this very program (an activated venv, a pipx install): the short name works
        ("/usr/local/bin/switchboard", "/usr/local/bin/switchboard", "switchboard"),
        # not started as the console script (embedded, or a test runner): the documented name
        ("/usr/bin/pytest", None, "switchboard"),
        ("switchboard", None, "switchboard"),
    ],
)
def test_program_name_in_hints_is_one_that_runs(argv0: str, on_path: str | None, expected: str) -> None:
    """The hint after `run` names the program so that pasting it works: the path it was started by unless
    PATH finds the same program as `switchboard`."""
    assert program_name(argv0, on_path) == expected


def test_program_name_is_short_when_path_finds_it_through_a_symlink(tmp_path: Path) -> None:
    """A `switchboard` on PATH that is a symlink to the running script counts as the same program."""
    real = tmp_path / "venv" / "bin" / "switchboard"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    link = tmp_path / "switchboard"
    link.symlink_to(real)
    assert program_name(str(real), str(link)) == "switchboard"
