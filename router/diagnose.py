"""
Explain, in one line, why a Crossbar node failed to start, from the log it wrote.

Pure functions over log text (Crossbar's, or :func:`router.logs.format_text`'s): unit-tested against logs
captured from real failing nodes (``tests/unit/fixtures/crossbar-*.log``).
"""

from __future__ import annotations

import re

__all__ = ["explain_failure", "is_port_in_use"]

# Crossbar's own line prefix ("... [Router   123] "), or router.logs.format_text's ("... info  [router 123] ").
_PREFIX = re.compile(r"^\S+ (?:[a-z-]+\s+)?\[(?:controller|router|container|guest|proxy)\s+\d+\] ", re.IGNORECASE)
_CANNOT_LISTEN = re.compile(r"Couldn't listen on (\S+?): \[Errno \d+\] ([^.\n]+)")
# The first line of an ApplicationError's first argument, as Python's repr prints it ('...\'...\n...').
_APPLICATION_ERROR = re.compile(r"ApplicationError\(error=<([^>]+)>, args=\[(['\"])((?:\\[^n]|(?!\2)[^\\])*)")
_INVALID_CONFIG_MARK = "Invalid node configuration"


def is_port_in_use(log: str) -> bool:
    """Whether the node failed because a listening address was taken."""
    return "Address already in use" in log


def explain_failure(log: str) -> str:
    """The most specific one-line cause found in ``log`` (Crossbar's output, any log level)."""
    match = _CANNOT_LISTEN.search(log)
    if match:
        return f"cannot listen on {match.group(1)}: {match.group(2).lower()}"
    match = _APPLICATION_ERROR.search(log)
    if match:
        first_line = re.sub(r"\\(.)", r"\1", match.group(3))
        return f"{match.group(1)}: {first_line}"
    lines = [_PREFIX.sub("", line).strip() for line in log.splitlines()]
    lines = [line for line in lines if line]
    if _INVALID_CONFIG_MARK in lines:
        after = lines[lines.index(_INVALID_CONFIG_MARK) + 1 :]
        if after:
            return f"Crossbar refused the compiled configuration: {after[0]}"
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line
    return lines[-1] if lines else "the node exited without a word"
