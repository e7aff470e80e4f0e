"""
``switchboard user ...`` and ``switchboard key ...``: manage the user store from the command line.

Passwords come from a hidden prompt or from standard input (``--password-stdin``), never from argv, and
nothing here prints a secret. Changes reach a running node at once: logins read the store, and disabling,
removing or re-roling a user (or removing a key) also ends that user's open sessions through the node's
control socket. Bad input exits with code 2 and one line saying why. A change that is stored while a
running node could not close the user's sessions exits 1 with one line: those sessions may still be open.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from router import datadir
from router.authz.effective import effective_roles
from router.authz.model import reserved_role_problem
from router.cli_common import EXIT_BAD_INPUT, EXIT_FAILED, config_option, data_dir_option, load_or_exit
from router.config import STORE_METHODS, Config
from router.credentials import check_password, password_credentials
from router.store import StoreError, UserStore

__all__ = ["key", "user"]

realm_option = click.option("--realm", help="Realm of the user (default: the only realm of the config).")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _realm(config: Config, realm: str | None) -> str:
    names = [r.name for r in config.realms]
    if realm is None:
        if len(names) == 1:
            return names[0]
        _fail(f"the config has several realms ({', '.join(names)}): choose one with --realm")
    if realm not in names:
        _fail(f"no realm {realm!r} in the config (realms: {', '.join(names)})")
    return realm


def _check_role(config: Config, realm: str, role: str, store: UserStore) -> None:
    """Exit 2 unless ``role`` is one of the realm's roles as the running router has them: the config
    file's, changed by the admin API at run time (:func:`router.authz.effective.effective_roles`)."""
    reserved = reserved_role_problem(role)
    if reserved:
        _fail(reserved)
    file_roles = next(r.role_definitions for r in config.realms if r.name == realm)
    roles = effective_roles(file_roles, _apply(lambda: store.role_definitions(realm)))
    if role not in roles:
        _fail(f"no role {role!r} in realm {realm!r} (roles: {', '.join(roles)})")


def _store(data_dir: Path) -> UserStore:
    # Whichever command creates the data directory makes it (and the store) owner-only.
    try:
        datadir.prepare(data_dir)
        return UserStore(datadir.store_path(data_dir))
    except (StoreError, OSError) as e:
        _fail(str(e))


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        _fail("no password: pass --password-stdin, or run in a terminal to be prompted")
    try:
        check_password(password)
    except ValueError as e:
        _fail(str(e))
    return password


def _apply(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except StoreError as e:
        _fail(str(e))


def _end_sessions(data_dir: Path, realm: str, authid: str, why: str) -> None:
    """Close the user's sessions on a running node (if one runs with this data directory).

    No node: nothing to close, nothing said. A node that could not close them: exit 1 with one line, since
    the sessions may still be open with the revoked credentials.
    """
    from twisted.internet import defer, task

    from router.control import RevocationFailed, kill_user_sessions

    outcome: list[list[int] | RevocationFailed | None] = []

    async def run(reactor: Any) -> None:
        try:
            outcome.append(await kill_user_sessions(reactor, data_dir.resolve(), realm, authid, why))
        except RevocationFailed as e:
            outcome.append(e)

    with contextlib.suppress(SystemExit):  # task.react always exits; the outcome says what happened
        task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    result = outcome[0] if outcome else RevocationFailed("unexpected error while reaching the node")
    if isinstance(result, RevocationFailed):
        click.echo(f"error: could not close the open sessions of {authid!r} on the running node: {result}", err=True)
        sys.exit(EXIT_FAILED)
    if result is not None:
        click.echo(f"closed {len(result)} open session(s) of {authid!r}")


@click.group()
def user() -> None:
    """Manage users of the embedded store."""


@user.command("add")
@click.argument("authid")
@click.option("--role", required=True, help="Role the user logs in with (must exist in the realm).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-password", is_flag=True, help="No password: the user logs in with keys only (cryptosign).")
@realm_option
@config_option
@data_dir_option
def add(
    authid: str,
    role: str,
    password_stdin: bool,
    no_password: bool,
    realm: str | None,
    config_path: Path,
    data_dir: Path,
) -> None:
    """Create a user; its password serves ticket, wampcra and scram logins."""
    config = load_or_exit(config_path)
    realm_name = _realm(config, realm)
    store = _store(data_dir)
    _check_role(config, realm_name, role, store)
    credentials = {} if no_password else password_credentials(_read_password(password_stdin))
    created = _apply(lambda: store.add_user(realm_name, authid, role, credentials))
    methods = ", ".join(created.methods) or "none (add a key)"
    click.echo(f"added {authid!r} to realm {realm_name!r} as {role!r} (methods: {methods})")


@user.command("passwd")
@click.argument("authid")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@realm_option
@config_option
@data_dir_option
def passwd(authid: str, password_stdin: bool, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Set a new password; the next login must use it."""
    realm_name = _realm(load_or_exit(config_path), realm)
    store = _store(data_dir)
    _apply(lambda: store.get_user(realm_name, authid))
    credentials = password_credentials(_read_password(password_stdin))
    _apply(lambda: store.set_credentials(realm_name, authid, credentials))
    click.echo(f"password of {authid!r} changed")


@user.command("remove")
@click.argument("authid")
@realm_option
@config_option
@data_dir_option
def remove(authid: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Delete a user, its credentials and keys, and close its sessions."""
    realm_name = _realm(load_or_exit(config_path), realm)
    _apply(lambda: _store(data_dir).remove_user(realm_name, authid))
    click.echo(f"removed {authid!r} from realm {realm_name!r}")
    _end_sessions(data_dir, realm_name, authid, "user removed")


@user.command("set-role")
@click.argument("authid")
@click.argument("role")
@realm_option
@config_option
@data_dir_option
def set_role(authid: str, role: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Change a user's role; open sessions are closed so they rejoin with it."""
    config = load_or_exit(config_path)
    realm_name = _realm(config, realm)
    store = _store(data_dir)
    _check_role(config, realm_name, role, store)
    _apply(lambda: store.set_role(realm_name, authid, role))
    click.echo(f"{authid!r} now has role {role!r}")
    _end_sessions(data_dir, realm_name, authid, "role changed")


def _set_enabled(authid: str, enabled: bool, realm: str | None, config_path: Path, data_dir: Path) -> None:
    realm_name = _realm(load_or_exit(config_path), realm)
    _apply(lambda: _store(data_dir).set_enabled(realm_name, authid, enabled))
    click.echo(f"{authid!r} {'enabled' if enabled else 'disabled'}")
    if not enabled:
        _end_sessions(data_dir, realm_name, authid, "user disabled")


@user.command("enable")
@click.argument("authid")
@realm_option
@config_option
@data_dir_option
def enable(authid: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Allow the user to log in again."""
    _set_enabled(authid, True, realm, config_path, data_dir)


@user.command("disable")
@click.argument("authid")
@realm_option
@config_option
@data_dir_option
def disable(authid: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Refuse the user's logins and close its open sessions."""
    _set_enabled(authid, False, realm, config_path, data_dir)


@user.command("list")
@realm_option
@config_option
@data_dir_option
def list_users(realm: str | None, config_path: Path, data_dir: Path) -> None:
    """List users (never their secrets)."""
    config = load_or_exit(config_path)
    realm_name = _realm(config, realm) if realm or len(config.realms) == 1 else None
    users = _store(data_dir).list_users(realm_name)
    if not users:
        click.echo("no users")
        return
    click.echo(f"{'REALM':<16} {'AUTHID':<24} {'ROLE':<16} {'ENABLED':<8} {'METHODS':<22} KEYS")
    for u in users:
        methods = ",".join(u.methods) or "-"
        click.echo(
            f"{u.realm:<16} {u.authid:<24} {u.role:<16} {'yes' if u.enabled else 'no':<8} {methods:<22} {u.keys}"
        )
    # The store keeps every method's credentials (a password serves ticket, wampcra and scram); the table
    # lists what is stored, this line what of it no login can use with this config.
    stored = {m for u in users for m in u.methods} | ({"cryptosign"} if any(u.keys for u in users) else set())
    enabled = {m for t in config.transports for m in t.store_methods}
    unused = [m for m in STORE_METHODS if m in stored - enabled]
    if unused:
        click.echo(f"note: not enabled by any transport in {config_path}, so no login uses it: {', '.join(unused)}")


@click.group()
def key() -> None:
    """Manage users' Ed25519 public keys (WAMP-cryptosign)."""


def _check_pubkey(pubkey: str) -> str:
    pubkey = pubkey.lower()
    if len(pubkey) != 64:
        _fail("a public key is 64 hex characters (an Ed25519 verify key)")
    try:
        VerifyKey(bytes.fromhex(pubkey))
    except (ValueError, CryptoError):
        _fail(f"not an Ed25519 public key: {pubkey!r}")
    return pubkey


@key.command("add")
@click.argument("authid")
@click.argument("pubkey")
@click.option("--comment", default="", help="Free text shown by `key list` (e.g. the device).")
@realm_option
@config_option
@data_dir_option
def key_add(authid: str, pubkey: str, comment: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Let AUTHID log in with the private key of PUBKEY (hex)."""
    realm_name = _realm(load_or_exit(config_path), realm)
    pubkey = _check_pubkey(pubkey)
    _apply(lambda: _store(data_dir).add_key(realm_name, authid, pubkey, comment))
    click.echo(f"added key {pubkey} for {authid!r}")


@key.command("remove")
@click.argument("pubkey")
@realm_option
@config_option
@data_dir_option
def key_remove(pubkey: str, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """Revoke a key; its owner's open sessions are closed."""
    realm_name = _realm(load_or_exit(config_path), realm)
    removed = _apply(lambda: _store(data_dir).remove_key(realm_name, _check_pubkey(pubkey)))
    click.echo(f"removed key {removed.pubkey} of {removed.authid!r}")
    _end_sessions(data_dir, realm_name, removed.authid, "key revoked")


@key.command("list")
@click.argument("authid", required=False)
@realm_option
@config_option
@data_dir_option
def key_list(authid: str | None, realm: str | None, config_path: Path, data_dir: Path) -> None:
    """List public keys (of one user, or of the realm)."""
    realm_name = _realm(load_or_exit(config_path), realm)
    keys = _store(data_dir).list_keys(realm_name, authid)
    if not keys:
        click.echo("no keys")
        return
    for k in keys:
        click.echo(f"{k.authid:<24} {k.pubkey}  {k.comment}")
