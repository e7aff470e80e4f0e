"""Password verifiers: what is stored, and that it matches what autobahn clients compute."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from autobahn.wamp import auth as wamp_auth

from router.credentials import (
    PASSWORD_METHODS,
    check_password,
    decoy_scram,
    decoy_wampcra,
    password_credentials,
    scram_credential,
    verify_ticket,
    wampcra_credential,
)

PASSWORD = "correct horse battery staple"


def test_password_credentials_hold_no_password() -> None:
    """Each method's verifier is derived; the password appears nowhere in it."""
    creds = password_credentials(PASSWORD)
    assert set(creds) == set(PASSWORD_METHODS)
    assert PASSWORD not in repr(creds)
    assert creds["ticket"]["hash"].startswith("$argon2id$")


def test_ticket_verification() -> None:
    """The right ticket verifies, a wrong or non-string one does not, and a missing credential never does."""
    stored = password_credentials(PASSWORD)["ticket"]
    assert verify_ticket(stored, PASSWORD)
    assert not verify_ticket(stored, PASSWORD + "x")
    assert not verify_ticket(stored, None)
    assert not verify_ticket(None, PASSWORD)


def test_wampcra_key_is_what_clients_derive() -> None:
    """The stored WAMP-CRA key equals autobahn's derive_key of the password with the stored salt."""
    stored = wampcra_credential(PASSWORD, salt="s4lt", iterations=1000, keylen=32)
    assert stored["key"] == wamp_auth.derive_key(PASSWORD, "s4lt", 1000, 32).decode()
    assert (stored["salt"], stored["iterations"], stored["keylen"]) == ("s4lt", 1000, 32)


def test_scram_verifier_matches_autobahn() -> None:
    """With the same salt and parameters, our StoredKey/ServerKey equal autobahn's derive_scram_credential."""
    salt = bytes(range(16))
    ours = scram_credential(PASSWORD, salt=salt, time_cost=4096, memory_kib=512)
    theirs = wamp_auth.derive_scram_credential("alice@example.com", PASSWORD, salt=salt)
    assert ours["salt"] == theirs["salt"]
    assert ours["stored_key"] == theirs["stored-key"]
    assert ours["server_key"] == theirs["server-key"]


def test_scram_stored_key_is_not_the_client_key() -> None:
    """StoredKey = SHA256(ClientKey): knowing it does not give the proof a client needs."""
    stored = scram_credential(PASSWORD, salt=b"0" * 16, time_cost=1, memory_kib=8)
    assert len(bytes.fromhex(stored["stored_key"])) == 32
    assert stored["stored_key"] != hmac.new(b"", b"Client Key", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("weak", ["", "short", "1234567"])
def test_weak_passwords_are_refused(weak: str) -> None:
    """Passwords under 8 characters are not stored."""
    with pytest.raises(ValueError, match="password too short"):
        check_password(weak)


def test_decoys_are_fixed_per_authid_and_look_like_real_credentials() -> None:
    """A decoy is the same for the same (secret, realm, authid), differs when any of them differs, and has
    the shape and default parameters of a real verifier."""
    secret = b"k" * 32
    for decoy, real in ((decoy_wampcra, wampcra_credential(PASSWORD)), (decoy_scram, scram_credential(PASSWORD))):
        first = decoy(secret, "demo", "bob")
        assert decoy(secret, "demo", "bob") == first
        others = [decoy(secret, "demo", "carol"), decoy(secret, "other", "bob"), decoy(b"j" * 32, "demo", "bob")]
        assert all(o["salt"] != first["salt"] for o in others)
        assert set(first) == set(real)
        assert {k: len(str(v)) for k, v in first.items()} == {k: len(str(v)) for k, v in real.items()}
        assert [v for k, v in first.items() if isinstance(v, int)] == [v for k, v in real.items() if isinstance(v, int)]
