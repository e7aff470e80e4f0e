"""One-line causes extracted from logs of real Crossbar nodes that failed to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.diagnose import explain_failure, is_port_in_use

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    ("log", "cause", "port_in_use"),
    [
        ("crossbar-port-in-use.log", "cannot listen on 127.0.0.1:18123: address already in use", True),
        (
            "crossbar-import-failed.log",
            "crossbar.error.class_import_failed: Failed to import class 'nosuch.module.Klass'",
            False,
        ),
        (
            "crossbar-invalid-config.log",
            "Crossbar refused the compiled configuration: invalid value 0 for 'port' attribute in listening/connection "
            "endpoint",
            False,
        ),
    ],
)
def test_cause_of_real_failures(log: str, cause: str, port_in_use: bool) -> None:
    """Each captured failure log yields its specific cause."""
    text = (FIXTURES / log).read_text()
    assert explain_failure(text) == cause
    assert is_port_in_use(text) is port_in_use


def test_fallbacks() -> None:
    """Without a known pattern: the last line mentioning an error, else the last line, else a placeholder."""
    prefix = "2026-11-22T02:45:17+0000 [Controller   2824] "
    assert explain_failure(f"{prefix}starting\n{prefix}SomeError: boom\n{prefix}bye\n") == "SomeError: boom"
    assert explain_failure(f"{prefix}starting\n{prefix}bye\n") == "bye"
    assert explain_failure("") == "the node exited without a word"
