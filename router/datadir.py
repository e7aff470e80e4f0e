"""
The data directory: its layout and who may read it.

It holds the user store (WAMP-CRA keys are enough to log in as their user), the control socket (it grants
the router's ``trusted`` role), the node key and the compiled config, so everything Switchboard creates in
it is owner-only, whichever command creates it first (``run`` or a ``user``/``key`` command). A directory
the user already had keeps its mode: it may be shared on purpose, and changing it is not ours to decide.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = [
    "OWNER_ONLY_UMASK",
    "control_socket_path",
    "crossbar_pid_path",
    "history_path",
    "kit_login_socket_path",
    "log_path",
    "node_dir",
    "open_private",
    "prepare",
    "rotated_log_path",
    "run_state_path",
    "store_path",
    "tls_dir",
    "touch_private",
]

#: The umask Switchboard runs Crossbar with: files 0600, directories 0700, unix sockets owner-only.
OWNER_ONLY_UMASK = 0o077


def store_path(data_dir: Path) -> Path:
    """Where a node with data directory ``data_dir`` keeps its users."""
    return data_dir / "users.sqlite3"


def history_path(data_dir: Path, realm: str) -> Path:
    """Where a node with data directory ``data_dir`` keeps the channel history of ``realm``
    (:mod:`router.channels`): one file per realm, so realms never share a topic's history."""
    return data_dir / f"history.{realm}.sqlite"


def tls_dir(data_dir: Path) -> Path:
    """The development certificate and key (``switchboard run --dev-tls``)."""
    return data_dir / "tls"


def control_socket_path(data_dir: Path) -> Path:
    """The node's control socket (grants the ``trusted`` role to whoever can connect to it).

    It lives in the node directory, which is always owner-only: Crossbar (Twisted) creates unix sockets
    with mode 0666, so in a data directory open to others anyone could connect.
    """
    return node_dir(data_dir) / "control.sock"


def kit_login_socket_path(data_dir: Path) -> Path:
    """The test-login socket of a node the pytest plugin started (:mod:`router.testkit.logins`): it grants
    any role of a realm to whoever can connect, so it too lives in the owner-only node directory. A node
    ``switchboard run`` starts never has one."""
    return node_dir(data_dir) / "kit-login.sock"


def log_path(data_dir: Path) -> Path:
    """The node's log: every run appends to it (see :mod:`router.logs`)."""
    return data_dir / "node.log"


def rotated_log_path(data_dir: Path, number: int) -> Path:
    """The ``number``-th rotated :func:`log_path` (``node.log.1`` is the newest; ``--log-keep`` of them)."""
    from router.logs import rotated_path  # router.logs opens its files with open_private, from here

    return rotated_path(log_path(data_dir), number)


def run_state_path(data_dir: Path) -> Path:
    """What ``switchboard run`` tells ``status`` and ``stop`` (its PID, URLs, start time; see
    :mod:`router.runstate`): there while it runs, removed when it stops cleanly."""
    return node_dir(data_dir) / "run.json"


def crossbar_pid_path(data_dir: Path) -> Path:
    """Crossbar's own pid file (JSON, ``{"pid": ...}``), written by the controller when it starts."""
    return node_dir(data_dir) / "node.pid"


def node_dir(data_dir: Path) -> Path:
    """Crossbar's node directory: compiled config, node key, pid file, control socket."""
    return data_dir / ".crossbar"


def prepare(data_dir: Path) -> str | None:
    """Create ``data_dir`` owner-only if it does not exist, an owner-only empty user store and node
    directory in it.

    An existing store (and its ``-wal``/``-shm``) is made owner-only. Returns a one-line warning when an
    existing ``data_dir`` is open to its group or others (its mode is left as it is), else None. SQLite
    gives the ``-wal`` and ``-shm`` files it creates the store's mode.
    """
    try:
        data_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    else:
        data_dir.chmod(0o700)  # mkdir's mode is filtered by the umask; ours is never wider than 0700
    # The store is ours and holds credentials: owner-only even if an older version left it readable.
    touch_private(store_path(data_dir))
    for suffix in ("", "-wal", "-shm"):
        store_file = store_path(data_dir).with_name(store_path(data_dir).name + suffix)
        if store_file.exists():
            store_file.chmod(0o600)
    # Switchboard's own runtime directory (never the user's): always owner-only, whatever it was before.
    node_dir(data_dir).mkdir(mode=0o700, exist_ok=True)
    node_dir(data_dir).chmod(0o700)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        return (
            f"warning: data directory {data_dir} is accessible to other users (mode {mode:04o}); "
            "its files are owner-only, but consider chmod 700"
        )
    return None


def touch_private(path: Path) -> None:
    """Create ``path`` empty and owner-only unless it exists (an existing file is left as it is)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


def open_private(path: Path, append: bool = False) -> int:
    """Open ``path`` for writing (truncated, or at its end with ``append``), created owner-only; a file
    descriptor for :func:`open`. An existing file is made owner-only too: it is written as ours.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600)
    os.fchmod(fd, 0o600)
    return fd
