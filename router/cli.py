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
from router.cli_common import EXIT_BAD_INPUT, config_option, data_dir_option, load_or_exit
from router.cli_users import key, user
from router.config import Config

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="switchboard")
def cli() -> None:
    """Switchboard: a WAMP router (Crossbar.io) configured by one JSON file."""


@cli.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the configuration (and that its component classes import) and summarise it."""
    from router.launch import component_import_problems

    config = load_or_exit(config_path)
    problems = component_import_problems(config)
    for p in problems:
        click.echo(f"{p.pointer}: cannot import component {p.class_path!r}: {p.cause}", err=True)
    if problems:
        click.echo(f"{config_path}: {len(problems)} problem(s), nothing done", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{config_path}: valid")
    click.echo(_summary(config))


@cli.command()
@config_option
@click.option("--port", type=click.IntRange(0, 65535), help="Port of the main transport (0: pick a free one).")
@data_dir_option
@click.option(
    "--loglevel",
    type=click.Choice(["error", "warn", "info", "debug"]),
    default="warn",
    show_default=True,
    help="Crossbar's log level (its log is also in DATA_DIR/node.log, the previous run's in node.log.1).",
)
@click.option(
    "--dev-tls",
    is_flag=True,
    help="Serve the main listener over TLS with a self-signed localhost certificate made in DATA_DIR/tls "
    "(development only: browsers warn until you trust it).",
)
@click.option("--ready-timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True, hidden=True)
def run(
    config_path: Path, port: int | None, data_dir: Path, loglevel: str, dev_tls: bool, ready_timeout: float
) -> None:
    """Start the router and its components; stop with Ctrl-C or SIGTERM."""
    from twisted.internet import task

    from router.serve import serve

    config = load_or_exit(config_path)
    if port is not None:
        from router.launch import with_port

        config = with_port(config, port)
    if dev_tls:
        from router import datadir
        from router.launch import with_dev_tls

        datadir.prepare(data_dir)
        config = with_dev_tls(config, data_dir)
    task.react(lambda reactor: serve(reactor, config, data_dir, loglevel, ready_timeout))


def _summary(config: Config) -> str:
    lines = []
    for t in config.transports:
        methods = []
        if t.anonymous_role:
            methods.append(f"anonymous as {t.anonymous_role}")
        methods.extend(t.store_methods)
        port = "a free port" if t.port == 0 else str(t.port)
        lines.append(f"  listen     {t.name}: {t.url} ({t.type}, port {port}; auth: {', '.join(methods)})")
    for realm in config.realms:
        roles = ", ".join(f"{name} ({len(role.allow)} rules)" for name, role in realm.roles.items())
        lines.append(f"  realm      {realm.name}: roles {roles}")
        for channel in realm.channels:
            kept = [f"history {channel.history_size}"] if channel.history_size else []
            kept += ["presence"] if channel.presence else []
            lines.append(
                f"  channel    {channel.topic} ({channel.match}) in {realm.name}: {', '.join(kept) or 'nothing kept'}"
            )
    for c in config.components:
        lines.append(f"  component  {c.class_path} in {c.realm} as {c.role}")
    if not config.components:
        lines.append("  component  (none)")
    return "\n".join(lines)


cli.add_command(user)
cli.add_command(key)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="switchboard")
