"""
Every public URI and error URI Switchboard itself defines or raises: the framework's WAMP contract.

``docs/uris.md`` documents each one (``tests/unit/test_docs.py`` checks it). Modules of the router import
them from here rather than spelling them out; an application's own URIs live with the application (the
demo's in ``components/uris.py``), which imports the shared error URIs from here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ADMIN_ON_CHANGE",
    "ADMIN_PREFIX",
    "ADMIN_PROCEDURES",
    "ADMIN_ROLE_GET",
    "ADMIN_ROLE_LIST",
    "ADMIN_ROLE_REMOVE",
    "ADMIN_ROLE_SET",
    "ADMIN_SESSION_KILL",
    "ADMIN_SESSION_KILLED",
    "ADMIN_SESSION_LIST",
    "ADMIN_USER_ADD",
    "ADMIN_USER_DISABLE",
    "ADMIN_USER_ENABLE",
    "ADMIN_USER_LIST",
    "ADMIN_USER_REMOVE",
    "ADMIN_USER_SET_ROLE",
    "AUTHORIZATION_FAILED",
    "CALLER_NOT_DISCLOSED",
    "CANCELED",
    "CHANNEL_PROCEDURES",
    "CREDENTIALS_REVOKED",
    "HISTORY_GET",
    "HISTORY_LOOKUP",
    "HISTORY_PREFIX",
    "INVALID_ARGUMENT",
    "NODE_COMPONENTS",
    "NODE_WORKER_PREFIX",
    "NOT_AUTHORIZED",
    "NO_SUCH_PROCEDURE",
    "PRESENCE_GET",
    "PRESENCE_PREFIX",
    "PRESENCE_UPDATE",
    "RUNTIME_ERROR",
    "SLOW_CONSUMER",
    "TOO_MANY_PENDING_CALLS",
    "TOO_MANY_REGISTRATIONS",
    "TOO_MANY_SUBSCRIPTIONS",
    "UNVERIFIED_VERSIONS",
    "WORKER_UNAVAILABLE",
]

# -- the runtime administration API (router.admin), one per realm -----------------------------------------

ADMIN_PREFIX: Final = "switchboard.admin."
ADMIN_ROLE_LIST: Final = "switchboard.admin.role.list"
ADMIN_ROLE_GET: Final = "switchboard.admin.role.get"
ADMIN_ROLE_SET: Final = "switchboard.admin.role.set"
ADMIN_ROLE_REMOVE: Final = "switchboard.admin.role.remove"
ADMIN_USER_LIST: Final = "switchboard.admin.user.list"
ADMIN_USER_ADD: Final = "switchboard.admin.user.add"
ADMIN_USER_REMOVE: Final = "switchboard.admin.user.remove"
ADMIN_USER_SET_ROLE: Final = "switchboard.admin.user.set_role"
ADMIN_USER_ENABLE: Final = "switchboard.admin.user.enable"
ADMIN_USER_DISABLE: Final = "switchboard.admin.user.disable"
ADMIN_SESSION_LIST: Final = "switchboard.admin.session.list"
ADMIN_SESSION_KILL: Final = "switchboard.admin.session.kill"
#: Every admin procedure.
ADMIN_PROCEDURES: Final = (
    ADMIN_ROLE_LIST,
    ADMIN_ROLE_GET,
    ADMIN_ROLE_SET,
    ADMIN_ROLE_REMOVE,
    ADMIN_USER_LIST,
    ADMIN_USER_ADD,
    ADMIN_USER_REMOVE,
    ADMIN_USER_SET_ROLE,
    ADMIN_USER_ENABLE,
    ADMIN_USER_DISABLE,
    ADMIN_SESSION_LIST,
    ADMIN_SESSION_KILL,
)
#: Audit topic: every admin change, as ``{"who", "what", "when"}``.
ADMIN_ON_CHANGE: Final = "switchboard.admin.on_change"
#: Close reason of a session an administrator ended (:data:`ADMIN_SESSION_KILL`).
ADMIN_SESSION_KILLED: Final = "switchboard.close.killed"

# -- channels: history and presence (router.channels), on realms that declare channels ------------------

HISTORY_GET: Final = "switchboard.history.get"
HISTORY_LOOKUP: Final = "switchboard.history.lookup"
PRESENCE_GET: Final = "switchboard.presence.get"
PRESENCE_UPDATE: Final = "switchboard.presence.update"
#: Every channel procedure: any role may call them; each answers only for topics the caller may subscribe to.
CHANNEL_PROCEDURES: Final = (HISTORY_GET, HISTORY_LOOKUP, PRESENCE_GET, PRESENCE_UPDATE)
#: Presence changes of topic ``t`` are published on ``PRESENCE_PREFIX + t``.
PRESENCE_PREFIX: Final = "switchboard.presence."
#: Nothing below it but :data:`HISTORY_GET` and :data:`HISTORY_LOOKUP` is open to clients.
HISTORY_PREFIX: Final = "switchboard.history."

# -- the node itself ------------------------------------------------------------------------------------

#: The start-up state of every hosted component (router.component); callable by the ``trusted`` role only
#: (the control socket), on the first realm. ``switchboard run`` waits on it before it prints ready.
NODE_COMPONENTS: Final = "switchboard.node.components"
#: With more than one router worker (router.workers): what the home worker's admin API asks worker ``k``
#: (:class:`router.workers_agent.WorkerAgent`), as ``NODE_WORKER_PREFIX + f"{k}.meta"`` (a WAMP meta
#: procedure of the session API, run in that worker) and ``... f"{k}.roles"`` (install role definitions);
#: callable by the ``trusted`` role only.
NODE_WORKER_PREFIX: Final = "switchboard.node.worker."

# -- errors Switchboard raises --------------------------------------------------------------------------

#: The role's rule lacks ``"disclose": true``, so a component that needs the caller's identity cannot tell.
CALLER_NOT_DISCLOSED: Final = "switchboard.error.caller_not_disclosed"
#: The session already has ``limits.max_pending_calls`` calls waiting for their results.
TOO_MANY_PENDING_CALLS: Final = "switchboard.error.too_many_pending_calls"
#: The session already has ``limits.max_subscriptions`` subscriptions.
TOO_MANY_SUBSCRIPTIONS: Final = "switchboard.error.too_many_subscriptions"
#: The session already has ``limits.max_registrations`` registrations.
TOO_MANY_REGISTRATIONS: Final = "switchboard.error.too_many_registrations"
#: The router worker refuses to start on library versions its Crossbar seam was not verified against
#: (``switchboard run`` shows ``switchboard.error.unverified_versions: <what was found>``).
UNVERIFIED_VERSIONS: Final = "switchboard.error.unverified_versions"
#: With several router workers: one of them did not answer the admin API or the CLI (its link is down or it
#: is still starting), so a change may have reached only some workers.
WORKER_UNAVAILABLE: Final = "switchboard.error.worker_unavailable"

# -- close reasons --------------------------------------------------------------------------------------

#: A session's user was disabled, removed, re-roled or lost the key it used.
CREDENTIALS_REVOKED: Final = "switchboard.close.credentials_revoked"
#: A connection held more than ``limits.max_send_buffer`` bytes the client did not read.
SLOW_CONSUMER: Final = "switchboard.close.slow_consumer"

# -- standard WAMP errors Switchboard raises (or lets Crossbar/autobahn raise) -----------------------------

#: A bad argument: the message reads ``<procedure>: <argument>: <reason>`` (router.component.procedure).
INVALID_ARGUMENT: Final = "wamp.error.invalid_argument"
#: A refused login or action (never "no such procedure/topic" for a denied action: no URI enumeration).
NOT_AUTHORIZED: Final = "wamp.error.not_authorized"
#: The router could not decide a permission (a decider failed); the action is refused.
AUTHORIZATION_FAILED: Final = "wamp.error.authorization_failed"
#: The call waited longer than its ``timeout`` option or ``limits.call_timeout`` for the callee.
CANCELED: Final = "wamp.error.canceled"
#: An allowed procedure that nothing has registered.
NO_SUCH_PROCEDURE: Final = "wamp.error.no_such_procedure"
#: A component failed unexpectedly (autobahn's answer to an exception that is not an ``ApplicationError``).
RUNTIME_ERROR: Final = "wamp.error.runtime_error"
