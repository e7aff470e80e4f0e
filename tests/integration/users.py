"""Create users in a running node's store, with unique names so tests can share the node."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nacl.signing import SigningKey

from router.credentials import password_credentials
from router.launch import RunningNode
from router.store import UserStore


@dataclass
class TestUser:
    """A user in the store, with the secrets a client needs."""

    __test__ = False  # not a test class

    authid: str
    password: str
    privkey: str
    pubkey: str


def add_user(node: RunningNode, role: str = "user", prefix: str = "u") -> TestUser:
    """A fresh user with a password (ticket, wampcra, scram) and one Ed25519 key (cryptosign)."""
    authid = f"{prefix}_{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    seed = SigningKey.generate()
    pubkey = seed.verify_key.encode().hex()
    store = UserStore(node.store_path)
    try:
        store.add_user("demo", authid, role, password_credentials(password))
        store.add_key("demo", authid, pubkey, comment="test")
    finally:
        store.close()
    return TestUser(authid, password, bytes(seed).hex(), pubkey)


def credentials(method: str, user: TestUser, password: str | None = None) -> dict[str, str]:
    """Keyword arguments for router.testkit.session logging in as ``user`` with ``method``."""
    secret = password if password is not None else user.password
    if method == "ticket":
        return {"ticket": secret}
    if method == "wampcra":
        return {"secret": secret}
    if method == "scram":
        return {"password": secret, "kdf": "argon2id13"}
    if method == "cryptosign":
        return {"privkey": user.privkey if password is None else SigningKey.generate().encode().hex()}
    raise ValueError(method)
