"""
The ``switchboard`` command: ``check`` a config, ``run`` a node; ``user``/``key`` (:mod:`router.cli_users`);
``status``, ``stop``, ``backup``, ``restore`` (:mod:`router.cli_node`, whose exit codes differ: see there).

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
from router.cli_node import backup, node_key, restore, status, stop
from router.cli_users import key, user
from router.config import Config
from router.logs import DEFAULT_FORMAT, DEFAULT_KEEP, DEFAULT_LEVEL, DEFAULT_MAX_SIZE, FORMATS, LEVELS, parse_size

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


class _Size(click.ParamType[int, Any]):
    """A size in bytes, with an optional suffix K, M or G (:func:`router.logs.parse_size`)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if size < 1024:
            self.fail(f"{value!r} is too small (at least 1K)", param, ctx)
        return size


@cli.command()
@config_option
@click.option("--port", type=click.IntRange(0, 65535), help="Port of the main transport (0: pick a free one).")
@data_dir_option
@click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    default=DEFAULT_LEVEL,
    show_default=True,
    envvar="SWITCHBOARD_LOG_LEVEL",
    show_envvar=True,
    help="What is logged (on stderr and in DATA_DIR/node.log): info shows Switchboard's events (failed logins, "
    "lockouts, sessions) and every warning, without Crossbar's routine chatter; debug shows everything.",
)
@click.option("--loglevel", "loglevel_alias", type=click.Choice(LEVELS), hidden=True)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default=DEFAULT_FORMAT,
    show_default=True,
    envvar="SWITCHBOARD_LOG_FORMAT",
    show_envvar=True,
    help="text, or json: one object per line (time, level, source, pid, namespace, message, event fields).",
)
@click.option(
    "--log-max-size",
    type=_Size(),
    default=str(DEFAULT_MAX_SIZE // 1024**2) + "M",
    show_default=True,
    envvar="SWITCHBOARD_LOG_MAX_SIZE",
    show_envvar=True,
    help="Size at which node.log is rotated to node.log.1 (bytes, or with a suffix K, M or G).",
)
@click.option(
    "--log-keep",
    type=click.IntRange(0, 1000),
    default=DEFAULT_KEEP,
    show_default=True,
    envvar="SWITCHBOARD_LOG_KEEP",
    show_envvar=True,
    help="Rotated logs kept (node.log.1 ... node.log.N).",
)
@click.option(
    "--dev-tls",
    is_flag=True,
    help="Serve the main listener over TLS with a self-signed localhost certificate made in DATA_DIR/tls "
    "(development only: browsers warn until you trust it).",
)
@click.option("--ready-timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True, hidden=True)
def run(
    config_path: Path,
    port: int | None,
    data_dir: Path,
    log_level: str,
    loglevel_alias: str | None,
    log_format: str,
    log_max_size: int,
    log_keep: int,
    dev_tls: bool,
    ready_timeout: float,
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
    loglevel = loglevel_alias or log_level
    log_options = {"log_format": log_format, "log_max_size": log_max_size, "log_keep": log_keep}
    task.react(
        lambda reactor: serve(
            reactor, config, data_dir, loglevel, ready_timeout, config_path=config_path, log_options=log_options
        )
    )


def _summary(config: Config) -> str:
    lines = []
    for t in config.transports:
        methods = []
        if t.anonymous_role:
            methods.append(f"anonymous as {t.anonymous_role}")
        methods.extend(t.store_methods)
        port = "a free port" if t.port == 0 else str(t.port)
        lines.append(f"  listen     {t.name}: {t.url} ({t.type}, port {port}; auth: {', '.join(methods)})")
    if config.operations is not None:
        ops = config.operations
        where = f"listener {ops.listener}" if ops.listener else f"{ops.host}:{ops.port or 'a free port'}, HTTP only"
        served = ", ".join(ops.paths.values()) or "nothing (every path is null)"
        token = "; /metrics needs a bearer token" if ops.metrics_token_file and ops.metrics else ""
        lines.append(f"  operations {served} on {where}{token}")
    for realm in config.realms:
        roles = ", ".join(f"{name} ({len(role.allow)} rules)" for name, role in realm.roles.items())
        lines.append(f"  realm      {realm.name}: roles {roles}")
        for channel in realm.channels:
            kept = [f"history {channel.history_size}"] if channel.history_size else []
            kept += ["presence"] if channel.presence else []
            lines.append(
                f"  channel    {channel.topic} ({channel.match}) in {realm.name}: {', '.join(kept) or 'nothing kept'}"
            )
    if config.workers > 1:
        lines.append(f"  workers    {config.workers} router workers sharing each listener's port (docs/scaling.md)")
    if config.cluster is not None:
        c_ = config.cluster
        dials = ", ".join(f"{p.name} at {p.host}:{p.port}" for p in c_.peers if p.host) or "none"
        lines.append(
            f"  cluster    {c_.name}: links on {c_.host}:{c_.port}; peers {', '.join(p.name for p in c_.peers)}"
        )
        lines.append(f"             dials {dials}")
    for c in config.components:
        lines.append(f"  component  {c.class_path} in {c.realm} as {c.role}")
    if not config.components:
        lines.append("  component  (none)")
    return "\n".join(lines)


cli.add_command(user)
cli.add_command(key)
cli.add_command(status)
cli.add_command(stop)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(node_key)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="switchboard")
