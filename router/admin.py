"""
The runtime administration API: ``switchboard.admin.role.*`` and ``switchboard.admin.user.*`` over WAMP.

One ``AdminComponent`` runs in the router worker per realm (trusted, so it may register under
``switchboard.admin`` and use the meta API); who may *call* it is up to the roles (the demo's ``admin``).
Role changes are validated exactly like the config file (:mod:`router.authz.model`), written to the
store (they override the file, across restarts, :mod:`router.authz.effective`) and installed in the
running router at once (:func:`router.authz.install.install_roles`). User changes go to the same store as
the CLI. Every change is logged and published on ``switchboard.admin.on_change`` as
``{"who", "what", "when"}``, never with a secret.

``session.list``/``session.kill`` read and end the realm's sessions through Crossbar's own WAMP meta API
(``wamp.session.*``, open to this trusted component; it hides ``trusted`` sessions), so no router internals
are touched here. Crossbar does not keep when a session joined: the component notes it from
``wamp.session.on_join`` (it starts before any transport opens, so it sees every client join).

With more than one router worker (:mod:`router.workers`) the component runs in the first; it reaches the
others' sessions and roles through their agents (:mod:`router.workers_agent`), so a role change, a listing,
a kill and a user's revocation apply in every worker. Meta events are per worker: the join time of a session
of another worker is unknown (``null``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallOptions, PublishOptions
from twisted.internet.threads import deferToThread

from router import uris
from router.authz.effective import effective_roles
from router.authz.install import install_roles, realm_routers
from router.authz.model import definition_problems, name_problem, reserved_role_problem, role_problems
from router.component import ComponentSession, invalid_argument, procedure
from router.config import schema
from router.credentials import check_password, password_credentials
from router.store import StoreError, UserStore
from router.workers import LINK_ROLE, meta_uri, roles_uri
from router.workers_agent import each_worker

__all__ = ["MAX_SESSIONS", "AdminComponent", "session_entry"]

#: The most sessions one ``session.list`` answers (and its default ``limit``).
MAX_SESSIONS = 1000
#: Milliseconds another router worker's agent has to answer (router.workers_agent).
WORKER_TIMEOUT_MS = 10_000


def _invalid(procedure: str, reason: str) -> ApplicationError:
    return invalid_argument(uris.ADMIN_PREFIX + procedure, reason)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inside_router(details: dict[str, Any]) -> bool:
    """A component hosted in the router worker (Crossbar's "native" framing), not a client connection."""
    transport = details.get("transport") or {}
    return transport.get("channel_framing") in (None, "native")


def session_entry(details: dict[str, Any], joined: float | None, worker: int = 0) -> dict[str, Any]:
    """What ``session.list`` tells of one session, from its ``wamp.session.get`` answer: who it is, how it
    is connected (``transport`` is ``websocket``/``rawsocket``; ``None``, with no method, serializer nor peer,
    for a component inside the router), the peer as Crossbar saw it, ``joined`` (UNIX time, ``None`` if
    not seen joining) and the router ``worker`` serving it (:mod:`router.workers`). Never a secret nor the
    HTTP headers."""
    entry = {key: details.get(key) for key in ("session", "authid", "authrole", "authmethod")}
    if _inside_router(details):
        return {
            **entry,
            "authmethod": None,
            "transport": None,
            "serializer": None,
            "peer": None,
            "joined": joined,
            "worker": worker,
        }
    transport = details.get("transport") or {}
    serializer = transport.get("channel_serializer")
    protocol = transport.get("websocket_protocol")
    if serializer is None and isinstance(protocol, str) and protocol.startswith("wamp.2."):
        serializer = protocol.removeprefix("wamp.2.")  # Crossbar names it only in the subprotocol over WebSocket
    return {
        **entry,
        "transport": transport.get("channel_framing"),
        "serializer": serializer,
        "peer": transport.get("peer"),
        "joined": joined,
        "worker": worker,
    }


class AdminComponent(ComponentSession):
    """``extra``: ``store`` (path), ``roles`` (the realm's role definitions from the config file)."""

    clock: Callable[[], float] = time.time

    async def onJoin(self, details: Any) -> None:
        extra = self.config.extra
        self._realm_name: str = details.realm
        self._store = UserStore(Path(extra["store"]))
        self._schema = schema()
        self._file_roles: dict[str, Any] = dict(extra["roles"])
        # The roles themselves were installed at start-up by router.worker.WorkerBootstrap.
        self._router = realm_routers(self, [self._realm_name])[self._realm_name]
        self._joined_at: dict[int, float] = {}  # session id -> when it joined (session.list)
        self._workers: int = int(extra.get("workers", 1))  # router.workers: the others through their agents
        await self.subscribe(self._session_joined, "wamp.session.on_join")
        await self.subscribe(self._session_left, "wamp.session.on_leave")
        await self.register(self)  # every @procedure below (router.uris.ADMIN_PROCEDURES)

    # -- roles ---------------------------------------------------------------------------------------

    def _current(self, changes: dict[str, Any | None] | None = None) -> dict[str, Any]:
        """The realm's role definitions: the file's, then stored changes, then ``changes`` (None removes)."""
        return effective_roles(self._file_roles, self._store.role_definitions(self._realm_name), changes)

    async def _apply_everywhere(self, definitions: dict[str, Any], removed: set[str]) -> None:
        """Install ``definitions`` in this router worker, then in every other (router.workers_agent); raises
        ``switchboard.error.worker_unavailable`` for a worker that did not take them."""
        install_roles(self._router, definitions, removed)
        for worker in range(1, self._workers):
            await self._meta_call(worker, roles_uri(worker), definitions, sorted(removed))

    async def _meta(self, worker: int, procedure: str, *args: Any, **kwargs: Any) -> Any:
        """``procedure`` of the WAMP session meta API, run in router worker ``worker`` (0: this one)."""
        if worker == 0:
            return await self.call(procedure, *args, **kwargs)
        return await self._meta_call(worker, meta_uri(worker), procedure, *args, **kwargs)

    async def _meta_call(self, worker: int, uri: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``uri`` of worker ``worker``'s agent, bounded by :data:`WORKER_TIMEOUT_MS`; an agent that is not
        there or does not answer is ``switchboard.error.worker_unavailable``."""
        try:
            return await self.call(uri, *args, options=CallOptions(timeout=WORKER_TIMEOUT_MS), **kwargs)
        except ApplicationError as e:
            if e.error in (ApplicationError.NO_SUCH_PROCEDURE, ApplicationError.CANCELED):
                raise ApplicationError(uris.WORKER_UNAVAILABLE, f"router worker {worker} did not answer") from None
            raise

    async def _restore(self, definitions: dict[str, Any], removed: set[str]) -> None:
        """Best effort: put ``definitions`` back in every worker after a failed change (already reported)."""
        try:
            await self._apply_everywhere(definitions, removed)
        except Exception:
            self.log.failure("could not fully restore the roles after a failed change")

    @procedure(uris.ADMIN_ROLE_LIST)
    async def role_list(self) -> list[str]:
        """``role.list()``: names of the realm's roles."""
        return sorted(self._current())

    @procedure(uris.ADMIN_ROLE_GET)
    async def role_get(self, name: Any) -> dict[str, Any]:
        """``role.get(name)``: the role's definition, as written (its own rules and what it inherits)."""
        current = self._current()
        if name not in current:
            raise _invalid("role.get", f"no role {name!r}")
        definition: dict[str, Any] = current[name]
        return definition

    @procedure(uris.ADMIN_ROLE_SET)
    async def role_set(self, name: Any, definition: Any, *, details: CallDetails) -> dict[str, Any]:
        """``role.set(name, definition)``: create or replace a role; applies to open sessions at once."""
        who = self._who("role.set", details)
        bad_name = name_problem(name, self._schema) or reserved_role_problem(name)
        if bad_name:
            raise _invalid("role.set", f"name: {bad_name}")
        problems = definition_problems(definition, self._schema)
        if problems:
            raise _invalid("role.set", "; ".join(f"/definition{p}: {m}" for p, m in problems))
        candidate = self._current({name: definition})
        semantic = list(role_problems(candidate))
        if semantic:
            raise _invalid("role.set", "; ".join(f"/roles{p}: {m}" for p, m in semantic))
        # The running routers first (every worker), the store second: a role a router refuses, or that some
        # worker did not get, is never stored (a stored role that cannot be installed would break every later
        # start).
        previous = self._current()
        undo = {name} if name not in previous else set()
        try:
            await self._apply_everywhere(candidate, set())
            self._store.set_role_definition(self._realm_name, name, definition)
        except Exception as e:
            self.log.failure("role.set {name!r} not applied; restoring the previous roles", name=name)
            await self._restore(previous, undo)
            if isinstance(e, ApplicationError) and e.error == uris.WORKER_UNAVAILABLE:
                raise
            raise _invalid("role.set", f"the router refused role {name!r}: {type(e).__name__}: {e}") from None
        await self._audit(who, {"action": "role.set", "role": name, "definition": definition})
        stored: dict[str, Any] = definition
        return stored

    @procedure(uris.ADMIN_ROLE_REMOVE)
    async def role_remove(self, name: Any, *, details: CallDetails) -> None:
        """``role.remove(name)``: delete a role no other role inherits; its sessions lose every permission."""
        who = self._who("role.remove", details)
        reserved = reserved_role_problem(name)
        if reserved:
            raise _invalid("role.remove", reserved)
        current = self._current()
        if name not in current:
            raise _invalid("role.remove", f"no role {name!r}")
        heirs = sorted(n for n, d in current.items() if name in d.get("inherits", []))
        if heirs:
            raise _invalid("role.remove", f"role {name!r} is inherited by {', '.join(heirs)}")
        remaining = self._current({name: None})
        try:
            await self._apply_everywhere(remaining, {name})
            self._store.set_role_definition(self._realm_name, name, None)
        except Exception:
            self.log.failure("role.remove {name!r} not applied; restoring the previous roles", name=name)
            await self._restore(current, set())
            raise
        await self._audit(who, {"action": "role.remove", "role": name})

    # -- users ---------------------------------------------------------------------------------------

    @procedure(uris.ADMIN_USER_LIST)
    async def user_list(self) -> list[dict[str, Any]]:
        """``user.list()``: the realm's users, without secrets."""
        users = self._store.list_users(self._realm_name)
        return [
            {"authid": u.authid, "role": u.role, "enabled": u.enabled, "methods": list(u.methods), "keys": u.keys}
            for u in users
        ]

    @procedure(uris.ADMIN_USER_ADD)
    async def user_add(self, authid: Any, role: Any, password: Any = None, *, details: CallDetails) -> dict[str, Any]:
        """``user.add(authid, role, password=None)``: a user for ticket/wampcra/scram (or keys only)."""
        who = self._who("user.add", details)
        self._check_role("user.add", role)
        credentials: dict[str, Any] = {}
        if password is not None:
            if not isinstance(password, str):
                raise _invalid("user.add", "password: must be a string")
            try:
                check_password(password)
            except ValueError as e:
                raise _invalid("user.add", str(e)) from None
            credentials = await deferToThread(password_credentials, password)  # KDFs off the reactor
        user = self._store_call("user.add", lambda: self._store.add_user(self._realm_name, authid, role, credentials))
        await self._audit(who, {"action": "user.add", "authid": authid, "role": role})
        return {"authid": user.authid, "role": user.role, "enabled": user.enabled, "methods": list(user.methods)}

    @procedure(uris.ADMIN_USER_REMOVE)
    async def user_remove(self, authid: Any, *, details: CallDetails) -> None:
        """``user.remove(authid)``: delete the user and close its sessions."""
        who = self._who("user.remove", details)
        self._store_call("user.remove", lambda: self._store.remove_user(self._realm_name, authid))
        await self._end_sessions(authid, "user removed")
        await self._audit(who, {"action": "user.remove", "authid": authid})

    @procedure(uris.ADMIN_USER_SET_ROLE)
    async def user_set_role(self, authid: Any, role: Any, *, details: CallDetails) -> None:
        """``user.set_role(authid, role)``: the user's sessions are closed to rejoin with the new role."""
        who = self._who("user.set_role", details)
        self._check_role("user.set_role", role)
        self._store_call("user.set_role", lambda: self._store.set_role(self._realm_name, authid, role))
        await self._end_sessions(authid, "role changed")
        await self._audit(who, {"action": "user.set_role", "authid": authid, "role": role})

    @procedure(uris.ADMIN_USER_ENABLE)
    async def user_enable(self, authid: Any, *, details: CallDetails) -> None:
        """``user.enable(authid)``."""
        await self._set_enabled("user.enable", True, authid, details)

    @procedure(uris.ADMIN_USER_DISABLE)
    async def user_disable(self, authid: Any, *, details: CallDetails) -> None:
        """``user.disable(authid)``: refuse its logins and close its sessions."""
        await self._set_enabled("user.disable", False, authid, details)

    async def _set_enabled(self, procedure: str, enabled: bool, authid: Any, details: CallDetails) -> None:
        who = self._who(procedure, details)
        self._store_call(procedure, lambda: self._store.set_enabled(self._realm_name, authid, enabled))
        if not enabled:
            await self._end_sessions(authid, "user disabled")
        await self._audit(who, {"action": procedure, "authid": authid})

    # -- sessions ------------------------------------------------------------------------------------

    def _session_joined(self, details: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(details, dict) and _is_int(details.get("session")):
            self._joined_at[details["session"]] = self.clock()

    def _session_left(self, session_id: Any, *args: Any, **kwargs: Any) -> None:
        if _is_int(session_id):
            self._joined_at.pop(session_id, None)

    @procedure(uris.ADMIN_SESSION_LIST)
    async def session_list(self, limit: Any = MAX_SESSIONS, after: Any = None) -> dict[str, Any]:
        """``session.list(limit=1000, after=None)``: the realm's sessions by session id, the first ``limit``
        of those above ``after``; ``{"count", "sessions", "more"}``."""
        if not _is_int(limit) or not 1 <= limit <= MAX_SESSIONS:
            raise _invalid("session.list", f"limit: must be an integer from 1 to {MAX_SESSIONS}")
        if after is not None and not _is_int(after):
            raise _invalid("session.list", "after: must be a session id (an integer) or null")
        known = set(self._joined_at)  # before the list: a session joining meanwhile is not in it, and stays
        where: dict[int, int] = {}  # session id -> its router worker
        for worker in range(self._workers):
            links = set(await self._meta(worker, "wamp.session.list", [LINK_ROLE]) if self._workers > 1 else [])
            listed = await self._meta(worker, "wamp.session.list")
            where.update((session_id, worker) for session_id in listed if session_id not in links)
        ids: list[int] = sorted(where)
        for gone in known - set(ids):  # a leave event missed: forget it here
            self._joined_at.pop(gone, None)
        later = [i for i in ids if after is None or i > after]
        sessions = []
        for session_id in later[:limit]:
            details = await self._meta_session(session_id, where[session_id])
            if details is not None:  # None: it left meanwhile
                sessions.append(session_entry(details, self._joined_at.get(session_id), where[session_id]))
        return {"count": len(ids), "sessions": sessions, "more": len(later) > limit}

    @procedure(uris.ADMIN_SESSION_KILL)
    async def session_kill(self, session: Any, *, details: CallDetails) -> None:
        """``session.kill(session)``: close one client session (reason ``switchboard.close.killed``); the
        router's own components are refused. Its user may log in again: disable the user to keep it out."""
        who = self._who("session.kill", details)
        if not _is_int(session):
            raise _invalid("session.kill", "session: must be a session id (an integer)")
        target, worker = None, 0
        for worker in range(self._workers):
            target = await self._meta_session(session, worker)
            if target is not None:
                break
        if target is None:
            raise _invalid("session.kill", f"no session {session} in realm {self._realm_name!r}")
        if _inside_router(target):  # ending the demo's backend, say, would break the application until restart
            raise _invalid("session.kill", f"session {session} is a component hosted in the router")
        if target.get("authrole") == LINK_ROLE:  # nor a link between router workers (router.workers)
            raise _invalid("session.kill", f"no session {session} in realm {self._realm_name!r}")
        try:
            await self._meta(
                worker,
                "wamp.session.kill",
                session,
                reason=uris.ADMIN_SESSION_KILLED,
                message="closed by an administrator",
            )
        except ApplicationError as e:
            if e.error != ApplicationError.NO_SUCH_SESSION:
                raise
            raise _invalid("session.kill", f"no session {session} in realm {self._realm_name!r}") from None
        what = {"action": "session.kill", "session": session, "authid": target.get("authid")}
        await self._audit(who, what)

    async def _meta_session(self, session_id: int, worker: int = 0) -> dict[str, Any] | None:
        """``wamp.session.get`` in router ``worker``, or None when there is no such session (or a trusted one)."""
        try:
            details: dict[str, Any] = await self._meta(worker, "wamp.session.get", session_id)
        except ApplicationError as e:
            if e.error == ApplicationError.NO_SUCH_SESSION:
                return None
            raise
        return details

    # -- helpers -------------------------------------------------------------------------------------

    def _check_role(self, procedure: str, role: object) -> None:
        reserved = reserved_role_problem(role)
        if reserved:
            raise _invalid(procedure, f"role: {reserved}")
        if role not in self._current():
            raise _invalid(procedure, f"role: no role {role!r} in realm {self._realm_name!r}")

    def _store_call(self, procedure: str, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except StoreError as e:
            raise _invalid(procedure, str(e)) from None

    def _who(self, procedure: str, details: CallDetails) -> dict[str, Any]:
        if details.caller_authid is None:
            raise ApplicationError(
                uris.CALLER_NOT_DISCLOSED,
                f"{uris.ADMIN_PREFIX}{procedure} needs the caller's identity for the audit log: "
                'give its rule "disclose": true',
            )
        return {"authid": details.caller_authid, "authrole": details.caller_authrole}

    async def _end_sessions(self, authid: str, why: str) -> None:
        await each_worker(
            self, self._workers, "wamp.session.kill_by_authid", authid, reason=uris.CREDENTIALS_REVOKED, message=why
        )

    async def _audit(self, who: dict[str, Any], what: dict[str, Any]) -> None:
        event = {"who": who, "what": what, "when": self.clock()}
        self.log.info("admin change by {who}: {what}", who=who, what=what)
        await self.publish(uris.ADMIN_ON_CHANGE, event, options=PublishOptions(acknowledge=True))
