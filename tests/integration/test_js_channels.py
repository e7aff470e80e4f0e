"""Channels (history recovery, presence, their errors) from autobahn-js in Node against the demo node."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from tests.integration.test_js_clients import run_node_tests

pytestmark = pytest.mark.integration


@pytest_twisted.ensureDeferred
async def test_node_channels(reactor: Any, demo_node: Any) -> None:
    """autobahn-js recovers exactly the chat events it missed while disconnected, sees presence join,
    update and leave of another session, and gets the documented errors (see tests/js/channels.test.js)."""
    await run_node_tests(reactor, "channels.test.js", {"SWITCHBOARD_URL": demo_node.url})
