"""
The runtime administration API: ``switchboard.admin.role.*`` and ``switchboard.admin.user.*`` over WAMP.

One ``AdminComponent`` runs in the router worker per realm (trusted, so it may register under
``switchboard.admin`` and use the meta API); who may *call* it is up to the roles (the demo's ``admin``).
Role changes are validated exactly like the config file (:mod:`router.roles`), written to the store
(they override the file, across restarts), compiled and swapped into the running router at once
(:func:`router.crossbar_adapter.replace_roles`). User changes go to the same store as the CLI. Every change
is logged and published on ``switchboard.admin.on_change`` as ``{"who", "what", "when"}``, never with a
secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, PublishOptions, RegisterOptions
from twisted.internet.threads import deferToThread

from components.arguments import bind
from components.base import ComponentSession
from router import crossbar_adapter
from router.config import schema
from router.credentials import check_password, password_credentials
from router.roles import build_roles, definition_problems, name_problem, reserved_role_problem, role_problems
from router.store import StoreError, UserStore

__all__ = ["ON_CHANGE", "PREFIX", "PROCEDURES", "AdminComponent"]

PREFIX = "switchboard.admin."
#: Every admin procedure, registered as ``switchboard.admin.<name>`` (method ``<name with _ for .>``).
PROCEDURES = (
    "role.list",
    "role.get",
    "role.set",
    "role.remove",
    "user.list",
    "user.add",
    "user.remove",
    "user.set_role",
    "user.enable",
    "user.disable",
)
ON_CHANGE = PREFIX + "on_change"
INVALID = ApplicationError.INVALID_ARGUMENT


def _invalid(procedure: str, reason: str) -> ApplicationError:
    return ApplicationError(INVALID, f"{PREFIX}{procedure}: {reason}")


class AdminComponent(ComponentSession):
    """``extra``: ``store`` (path), ``roles`` (the realm's role definitions from the config file)."""

    clock: Callable[[], float] = time.time

    async def onJoin(self, details: Any) -> None:
        extra = self.config.extra
        self._realm_name: str = details.realm
        self._store = UserStore(Path(extra["store"]))
        self._schema = schema()
        self._file_roles: dict[str, Any] = dict(extra["roles"])
        self._router = crossbar_adapter.realm_router(self)
        # Before the first await, so before any transport opens: stored changes and exact deciders for
        # roles Crossbar's static permissions cannot express are in place for the first client.
        overrides = self._stored_roles()
        self._apply(self._current(), removed={n for n, d in overrides.items() if d is None})
        for name in PROCEDURES:
            handler = getattr(self, name.replace(".", "_"))
            await self.register(handler, PREFIX + name, options=RegisterOptions(details=True))

    # -- roles ---------------------------------------------------------------------------------------

    def _current(self, changes: dict[str, Any | None] | None = None) -> dict[str, Any]:
        """The realm's role definitions: the file's, then stored changes, then ``changes`` (None removes)."""
        merged: dict[str, Any | None] = {**self._file_roles, **self._stored_roles()}
        merged.update(changes or {})
        return {name: definition for name, definition in merged.items() if definition is not None}

    def _stored_roles(self) -> dict[str, Any | None]:
        """Role changes from the store, without reserved names an older version may have stored: the
        router refuses to install those, which would keep this component (and the admin API) from starting."""
        stored = self._store.role_definitions(self._realm_name)
        for name in [n for n in stored if reserved_role_problem(n)]:
            self.log.warn("ignoring stored role {name!r}: the name is reserved by the router", name=name)
            del stored[name]
        return stored

    def _apply(self, definitions: dict[str, Any], removed: set[str]) -> None:
        crossbar_adapter.replace_roles(self._router, build_roles(definitions, self._schema), removed)

    def _restore(self, definitions: dict[str, Any], removed: set[str]) -> None:
        """Best effort: put ``definitions`` back after a failed change (the failure is already reported)."""
        try:
            self._apply(definitions, removed)
        except Exception:
            self.log.failure("could not fully restore the roles after a failed change")

    async def role_list(self, *args: Any, details: CallDetails, **kwargs: Any) -> list[str]:
        """``role.list()``: names of the realm's roles."""
        bind(PREFIX + "role.list", _no_args, args, kwargs)
        return sorted(self._current())

    async def role_get(self, *args: Any, details: CallDetails, **kwargs: Any) -> dict[str, Any]:
        """``role.get(name)``: the role's definition, as written (its own rules and what it inherits)."""
        name = bind(PREFIX + "role.get", _name_only, args, kwargs)["name"]
        current = self._current()
        if name not in current:
            raise _invalid("role.get", f"no role {name!r}")
        definition: dict[str, Any] = current[name]
        return definition

    async def role_set(self, *args: Any, details: CallDetails, **kwargs: Any) -> dict[str, Any]:
        """``role.set(name, definition)``: create or replace a role; applies to open sessions at once."""
        call = bind(PREFIX + "role.set", _name_and_definition, args, kwargs)
        name, definition = call["name"], call["definition"]
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
        # The running router first, the store second: a role the router refuses is never stored (a stored
        # role that cannot be installed would break every later start).
        previous = self._current()
        undo = {name} if name not in previous else set()
        try:
            self._apply(candidate, removed=set())
            self._store.set_role_definition(self._realm_name, name, definition)
        except Exception as e:
            self.log.failure("role.set {name!r} not applied; restoring the previous roles", name=name)
            self._restore(previous, undo)
            raise _invalid("role.set", f"the router refused role {name!r}: {type(e).__name__}: {e}") from None
        await self._audit(who, {"action": "role.set", "role": name, "definition": definition})
        stored: dict[str, Any] = definition
        return stored

    async def role_remove(self, *args: Any, details: CallDetails, **kwargs: Any) -> None:
        """``role.remove(name)``: delete a role no other role inherits; its sessions lose every permission."""
        name = bind(PREFIX + "role.remove", _name_only, args, kwargs)["name"]
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
        self._store.set_role_definition(self._realm_name, name, None)
        self._apply(self._current(), removed={name})
        await self._audit(who, {"action": "role.remove", "role": name})

    # -- users ---------------------------------------------------------------------------------------

    async def user_list(self, *args: Any, details: CallDetails, **kwargs: Any) -> list[dict[str, Any]]:
        """``user.list()``: the realm's users, without secrets."""
        bind(PREFIX + "user.list", _no_args, args, kwargs)
        users = self._store.list_users(self._realm_name)
        return [
            {"authid": u.authid, "role": u.role, "enabled": u.enabled, "methods": list(u.methods), "keys": u.keys}
            for u in users
        ]

    async def user_add(self, *args: Any, details: CallDetails, **kwargs: Any) -> dict[str, Any]:
        """``user.add(authid, role, password=None)``: a user for ticket/wampcra/scram (or keys only)."""
        call = bind(PREFIX + "user.add", _user_add, args, kwargs)
        who = self._who("user.add", details)
        authid, role, password = call["authid"], call["role"], call["password"]
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

    async def user_remove(self, *args: Any, details: CallDetails, **kwargs: Any) -> None:
        """``user.remove(authid)``: delete the user and close its sessions."""
        authid = bind(PREFIX + "user.remove", _authid_only, args, kwargs)["authid"]
        who = self._who("user.remove", details)
        self._store_call("user.remove", lambda: self._store.remove_user(self._realm_name, authid))
        await self._end_sessions(authid, "user removed")
        await self._audit(who, {"action": "user.remove", "authid": authid})

    async def user_set_role(self, *args: Any, details: CallDetails, **kwargs: Any) -> None:
        """``user.set_role(authid, role)``: the user's sessions are closed to rejoin with the new role."""
        call = bind(PREFIX + "user.set_role", _authid_and_role, args, kwargs)
        who = self._who("user.set_role", details)
        self._check_role("user.set_role", call["role"])
        self._store_call("user.set_role", lambda: self._store.set_role(self._realm_name, call["authid"], call["role"]))
        await self._end_sessions(call["authid"], "role changed")
        await self._audit(who, {"action": "user.set_role", "authid": call["authid"], "role": call["role"]})

    async def user_enable(self, *args: Any, details: CallDetails, **kwargs: Any) -> None:
        """``user.enable(authid)``."""
        await self._set_enabled("user.enable", True, args, kwargs, details)

    async def user_disable(self, *args: Any, details: CallDetails, **kwargs: Any) -> None:
        """``user.disable(authid)``: refuse its logins and close its sessions."""
        await self._set_enabled("user.disable", False, args, kwargs, details)

    async def _set_enabled(self, procedure: str, enabled: bool, args: Any, kwargs: Any, details: CallDetails) -> None:
        authid = bind(PREFIX + procedure, _authid_only, args, kwargs)["authid"]
        who = self._who(procedure, details)
        self._store_call(procedure, lambda: self._store.set_enabled(self._realm_name, authid, enabled))
        if not enabled:
            await self._end_sessions(authid, "user disabled")
        await self._audit(who, {"action": procedure, "authid": authid})

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
                "switchboard.error.caller_not_disclosed",
                f'{PREFIX}{procedure} needs the caller\'s identity for the audit log: give its rule "disclose": true',
            )
        return {"authid": details.caller_authid, "authrole": details.caller_authrole}

    async def _end_sessions(self, authid: str, why: str) -> None:
        from router.control import CREDENTIALS_REVOKED

        await self.call("wamp.session.kill_by_authid", authid, reason=CREDENTIALS_REVOKED, message=why)

    async def _audit(self, who: dict[str, Any], what: dict[str, Any]) -> None:
        event = {"who": who, "what": what, "when": self.clock()}
        self.log.info("admin change by {who}: {what}", who=who, what=what)
        await self.publish(ON_CHANGE, event, options=PublishOptions(acknowledge=True))


def _no_args() -> None: ...


def _name_only(name: object) -> None: ...


def _authid_only(authid: object) -> None: ...


def _name_and_definition(name: object, definition: object) -> None: ...


def _authid_and_role(authid: object, role: object) -> None: ...


def _user_add(authid: object, role: object, password: object = None) -> None: ...
