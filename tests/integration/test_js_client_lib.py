"""Switchboard's JavaScript client library (web/lib/switchboard.js) in Node against the shared demo node."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_twisted

from router.store import UserStore
from router.testkit import SessionFactory
from tests.integration.test_js_clients import run_node_tests
from tests.integration.users import add_user

pytestmark = pytest.mark.integration

ADMIN = "switchboard.admin."


@pytest_twisted.ensureDeferred
async def test_js_client_library(reactor: Any, demo_node: Any, wamp_session: SessionFactory) -> None:
    """The library reconnects forever with capped backoff, recovers the chat messages sent while it was
    away (once each, in order), restores a registration, stops for good on a refused login and keeps a
    presence list (see tests/js/client.test.mjs)."""
    # No demo role may both register and call: a role made at run time, for this test only.
    suffix = uuid.uuid4().hex[:10]
    role = f"libworker_{suffix}"
    prefix = f"libtest.p{suffix}"
    admin = add_user(demo_node, role="admin", prefix="libadmin")
    try:
        async with wamp_session(authmethod="ticket", authid=admin.authid, secret=admin.password) as s:
            rule = {"uri": prefix, "match": "prefix", "actions": ["register", "call"]}
            await s.call(ADMIN + "role.set", role, {"inherits": ["user"], "allow": [rule]})
            worker = add_user(demo_node, role=role, prefix="libworker")
            try:
                env = {
                    "SWITCHBOARD_URL": demo_node.url,
                    "SWITCHBOARD_WORKER_AUTHID": worker.authid,
                    "SWITCHBOARD_WORKER_PASSWORD": worker.password,
                    "SWITCHBOARD_WORKER_PREFIX": prefix,
                }
                await run_node_tests(reactor, "client.test.mjs", env)
            finally:
                await s.call(ADMIN + "user.remove", worker.authid)
                await s.call(ADMIN + "role.remove", role)
    finally:
        store = UserStore(demo_node.store_path)
        try:
            store.remove_user("demo", admin.authid)
        finally:
            store.close()
