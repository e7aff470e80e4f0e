"""
Turn a password into what each auth method needs to verify it, and nothing more.

| method  | stored                                                   | client proves                         |
|---------|----------------------------------------------------------|---------------------------------------|
| ticket  | argon2id hash (argon2-cffi; m=19 MiB, t=2, p=1)          | sends the password; we verify the hash |
| wampcra | PBKDF2-HMAC-SHA256 key + salt, iterations, keylen        | derives the key, signs the challenge  |
| scram   | argon2id-13 salt/params + StoredKey, ServerKey (hex)     | SCRAM proof (RFC 5802 with argon2id)  |

The WAMP-CRA key is what the protocol's salted mode is for: the password never leaves the client and never
reaches the disk, but the key itself is enough to sign a challenge, so the database must stay private (as
with any password file). SCRAM's stored keys are not enough to log in.

Everything here is CPU-bound by design (that is the point of a KDF): the router calls it from a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from base64 import b64encode
from typing import Any

import argon2
from argon2.low_level import Type, hash_secret
from autobahn.wamp import auth as wamp_auth

__all__ = [
    "PASSWORD_METHODS",
    "decoy_bytes",
    "decoy_scram",
    "decoy_wampcra",
    "password_credentials",
    "scram_credential",
    "verify_ticket",
    "wampcra_credential",
]

#: The methods a password serves; ``user add`` stores a verifier for each.
PASSWORD_METHODS = ("ticket", "wampcra", "scram")

MIN_PASSWORD_LENGTH = 8

# OWASP's minimum for argon2id (m=19 MiB, t=2, p=1): ~25 ms of one core per login. RFC 9106's
# low-memory profile (m=64 MiB, t=3, p=4) cost ~210 ms of CPU per login here, capping a 2-core router at
# ~10 ticket logins/s. The parameters live in each hash, so a later change still verifies old hashes.
_TICKET_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32, salt_len=16)

# PBKDF2 runs in the client too (crypto-js in autobahn-js is slow): 100k iterations is a compromise.
WAMPCRA_ITERATIONS = 100_000
WAMPCRA_KEYLEN = 32

# SCRAM's argon2id runs in the client as well; parallelism must be 1 (autobahn's client fixes it).
SCRAM_TIME_COST = 2
SCRAM_MEMORY_KIB = 19_456  # OWASP's minimum recommendation for argon2id


def password_credentials(password: str) -> dict[str, dict[str, Any]]:
    """Verifiers of ``password`` for every password method (ticket, wampcra, scram)."""
    check_password(password)
    return {
        "ticket": {"hash": _TICKET_HASHER.hash(password)},
        "wampcra": wampcra_credential(password),
        "scram": scram_credential(password),
    }


def check_password(password: str) -> None:
    """Raise ValueError for a password too weak to store."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")


def verify_ticket(credential: dict[str, Any] | None, ticket: object) -> bool:
    """Whether ``ticket`` matches the stored hash; with no credential, spend the same time and say no."""
    candidate = ticket if isinstance(ticket, str) else ""
    stored = credential["hash"] if credential is not None else _decoy_ticket_hash()
    try:
        return bool(_TICKET_HASHER.verify(stored, candidate)) and credential is not None
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


_DECOY_TICKET_HASH: str | None = None


def _decoy_ticket_hash() -> str:
    global _DECOY_TICKET_HASH
    if _DECOY_TICKET_HASH is None:
        _DECOY_TICKET_HASH = _TICKET_HASHER.hash(os.urandom(16).hex())
    return _DECOY_TICKET_HASH


def wampcra_credential(
    password: str, salt: str | None = None, iterations: int = WAMPCRA_ITERATIONS, keylen: int = WAMPCRA_KEYLEN
) -> dict[str, Any]:
    """The salted WAMP-CRA key exactly as clients derive it (autobahn's ``derive_key``: base64 text)."""
    salt = salt if salt is not None else os.urandom(16).hex()
    key = wamp_auth.derive_key(password, salt, iterations, keylen)
    return {"key": key.decode("ascii"), "salt": salt, "iterations": iterations, "keylen": keylen}


def decoy_wampcra(node_secret: bytes, realm: str, authid: str) -> dict[str, Any]:
    """The WAMP-CRA credential shown for ``authid`` when no such user may log in.

    Derived from ``node_secret`` (see :func:`decoy_bytes`): asking twice gives the same salt, as for a real
    user, and its shape and default parameters are those of :func:`wampcra_credential`.
    """
    material = decoy_bytes(node_secret, "wampcra", realm, authid, 16 + WAMPCRA_KEYLEN)
    return {
        "key": b64encode(material[16:]).decode("ascii"),
        "salt": material[:16].hex(),
        "iterations": WAMPCRA_ITERATIONS,
        "keylen": WAMPCRA_KEYLEN,
    }


def decoy_bytes(node_secret: bytes, method: str, realm: str, authid: str, size: int) -> bytes:
    """``size`` bytes (at most 64) that only the holder of ``node_secret`` can tell from random, fixed per
    (method, realm, authid): a keyed BLAKE2b, so a long authid costs one pass over it and nothing is kept."""
    digest = hashlib.blake2b(key=node_secret, digest_size=size, person=b"sb-decoy")
    for part in (method, realm, authid):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def scram_credential(
    password: str, salt: bytes | None = None, time_cost: int = SCRAM_TIME_COST, memory_kib: int = SCRAM_MEMORY_KIB
) -> dict[str, Any]:
    """SCRAM (argon2id-13) verifier: salt and parameters, StoredKey and ServerKey, all hex.

    The salted password is the argon2id hash *text* (unpadded base64), as autobahn's client computes it.
    """
    salt = salt if salt is not None else os.urandom(16)
    encoded = hash_secret(
        password.encode("utf-8"),
        salt,
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=1,
        hash_len=32,
        type=Type.ID,
        version=19,
    )
    salted_password = encoded.split(b"$")[-1]
    client_key = hmac.new(salted_password, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted_password, b"Server Key", hashlib.sha256).digest()
    return {
        "kdf": "argon2id-13",
        "salt": salt.hex(),
        "iterations": time_cost,
        "memory": memory_kib,
        "stored_key": hashlib.sha256(client_key).hexdigest(),
        "server_key": server_key.hex(),
    }


def decoy_scram(node_secret: bytes, realm: str, authid: str) -> dict[str, Any]:
    """The SCRAM verifier shown for ``authid`` when no such user may log in (fixed per authid, like
    :func:`decoy_wampcra`), with the default parameters of :func:`scram_credential`."""
    material = decoy_bytes(node_secret, "scram", realm, authid, 16 + 32)
    return {
        "kdf": "argon2id-13",
        "salt": material[:16].hex(),
        "iterations": SCRAM_TIME_COST,
        "memory": SCRAM_MEMORY_KIB,
        "stored_key": material[16:].hex(),
        "server_key": decoy_bytes(node_secret, "scram-server", realm, authid, 32).hex(),
    }
