"""``switchboard run``'s log options, in-process: what reaches :func:`router.serve.serve` (replaced by a
recorder, no node is started), from options, environment variables and the old ``--loglevel``."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result
from twisted.internet import defer, task

from router import serve as serve_module
from router.cli import cli
from tests.conftest import DEMO_CONFIG


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each ``run`` passed to serve (which returns at once)."""
    calls: list[dict[str, Any]] = []

    def record(reactor: Any, config: Any, data_dir: Any, loglevel: str, ready_timeout: float, **kw: Any) -> Any:
        calls.append({"loglevel": loglevel, **kw.get("log_options", {})})
        return defer.succeed(None)

    monkeypatch.setattr(serve_module, "serve", record)
    monkeypatch.setattr(task, "react", lambda main: main(None))  # the reactor runs under pytest already
    return calls


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["run", "--config", str(DEMO_CONFIG), *args], prog_name="switchboard", env=env, catch_exceptions=False
    )


def test_defaults(served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without options: level info, text, 10 MiB, 5 files kept."""
    for name in ("SWITCHBOARD_LOG_LEVEL", "SWITCHBOARD_LOG_FORMAT", "SWITCHBOARD_LOG_MAX_SIZE", "SWITCHBOARD_LOG_KEEP"):
        monkeypatch.delenv(name, raising=False)
    assert run().exit_code == 0
    assert served == [{"loglevel": "info", "log_format": "text", "log_max_size": 10 * 1024 * 1024, "log_keep": 5}]


def test_options(served: list[dict[str, Any]]) -> None:
    """Each option reaches serve; sizes take K/M/G suffixes."""
    args = ("--log-level", "debug", "--log-format", "json", "--log-max-size", "64K", "--log-keep", "0")
    assert run(*args).exit_code == 0
    assert served == [{"loglevel": "debug", "log_format": "json", "log_max_size": 65536, "log_keep": 0}]


def test_environment_variables(served: list[dict[str, Any]]) -> None:
    """SWITCHBOARD_LOG_* set what the options set (for containers and systemd units)."""
    env = {
        "SWITCHBOARD_LOG_LEVEL": "warn",
        "SWITCHBOARD_LOG_FORMAT": "json",
        "SWITCHBOARD_LOG_MAX_SIZE": "2M",
        "SWITCHBOARD_LOG_KEEP": "3",
    }
    assert run(env=env).exit_code == 0
    assert served == [{"loglevel": "warn", "log_format": "json", "log_max_size": 2 * 1024 * 1024, "log_keep": 3}]


def test_the_old_loglevel_option_still_works_but_is_not_shown(served: list[dict[str, Any]]) -> None:
    """--loglevel is a hidden alias of --log-level; the help shows only the new options."""
    assert run("--loglevel", "error").exit_code == 0
    assert served[0]["loglevel"] == "error"
    help_text = run("--help").stdout
    assert "--log-level" in help_text
    assert "--loglevel" not in help_text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--log-max-size", "lots"), ("'--log-max-size'", "not a size")),
        (("--log-max-size", "100"), ("'--log-max-size'", "too small")),
        (("--log-format", "xml"), ("'--log-format'", "'text', 'json'")),
        (("--log-keep", "-1"), ("'--log-keep'",)),
    ],
)
def test_bad_values_exit_2(served: list[dict[str, Any]], args: tuple[str, ...], words: tuple[str, ...]) -> None:
    """A bad value is a usage error naming the option; nothing is started."""
    result = run(*args)
    assert result.exit_code == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert all(word in error for word in words), error
    assert served == []
