"""Options and helpers shared by the ``switchboard`` subcommands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from router.config import Config, ConfigError, load_config

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "config_option", "data_dir_option", "load_or_exit"]

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

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Runtime directory: user store, compiled Crossbar config, node log, control socket.",
)


def load_or_exit(path: Path) -> Config:
    """The validated config at ``path``; on problems print each as ``<pointer>: <message>`` and exit 2."""
    try:
        return load_config(path)
    except ConfigError as e:
        for problem in e.problems:
            # Problems with the file as a whole (unreadable, not JSON) have no pointer: name the file.
            click.echo(str(problem) if problem.pointer else f"{path}: {problem.message}", err=True)
        click.echo(f"{path}: {len(e.problems)} problem(s), nothing done", err=True)
        sys.exit(EXIT_BAD_INPUT)
