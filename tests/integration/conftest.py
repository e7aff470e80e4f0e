"""Fixtures shared by the integration tests that run the ``switchboard`` command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cli import RunningCommand


@pytest.fixture
def command() -> Iterator[list[RunningCommand]]:
    """Background ``switchboard run`` commands a test starts; each is killed (with its processes) after it."""
    started: list[RunningCommand] = []
    yield started
    for c in started:
        c.kill()
