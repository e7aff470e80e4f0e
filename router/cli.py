"""
The ``switchboard`` command: ``check`` a config, ``run`` a node.

Exit codes: 0 success; 1 the node failed (cannot start, or died); 2 bad input (invalid config or usage).
User errors print one clear line per problem and never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from router import __version__
from router.config import Config, ConfigError, load_config

__all__ = ["main"]

DEFAULT_CONFIG = "config/switchboard.json"
DEFAULT_DATA_DIR = ".switchboard"
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Switchboard JSON configuration file.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="switchboard")
def cli() -> None:
    """Switchboard: a WAMP router (Crossbar.io) configured by one JSON file."""


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the configuration and summarise it."""
    config = _load_or_exit(config_path)
    click.echo(f"{config_path}: valid")
    click.echo(_summary(config))


@cli.command()
@config_option
@click.option("--port", type=click.IntRange(0, 65535), help="Port of the main transport (0: pick a free one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Runtime directory: compiled Crossbar config, node log, control socket.",
)
@click.option(
    "--loglevel",
    type=click.Choice(["error", "warn", "info", "debug"]),
    default="warn",
    show_default=True,
    help="Crossbar's log level (the node log is also written to DATA_DIR/node.log).",
)
@click.option("--ready-timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True, hidden=True)
def run(config_path: Path, port: int | None, data_dir: Path, loglevel: str, ready_timeout: float) -> None:
    """Start the router and its components; stop with Ctrl-C or SIGTERM."""
    from twisted.internet import task

    from router.serve import serve

    config = _load_or_exit(config_path)
    if port is not None:
        from router.launch import with_port

        config = with_port(config, port)
    task.react(lambda reactor: serve(reactor, config, data_dir, loglevel, ready_timeout))


def _load_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as e:
        for problem in e.problems:
            # Problems with the file as a whole (unreadable, not JSON) have no pointer: name the file.
            click.echo(str(problem) if problem.pointer else f"{path}: {problem.message}", err=True)
        click.echo(f"{path}: {len(e.problems)} problem(s), nothing started", err=True)
        sys.exit(EXIT_BAD_INPUT)


def _summary(config: Config) -> str:
    lines = []
    for t in config.transports:
        methods = []
        if t.anonymous_role:
            methods.append(f"anonymous as {t.anonymous_role}")
        port = "a free port" if t.port == 0 else str(t.port)
        lines.append(f"  listen     {t.name}: {t.url} ({t.type}, port {port}; auth: {', '.join(methods)})")
    for realm in config.realms:
        roles = ", ".join(f"{name} ({len(role.allow)} rules)" for name, role in realm.roles.items())
        lines.append(f"  realm      {realm.name}: roles {roles}")
    for c in config.components:
        lines.append(f"  component  {c.class_path} in {c.realm} as {c.role}")
    if not config.components:
        lines.append("  component  (none)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="switchboard")
