"""The client address: the connection's peer, or what a trusted reverse proxy says, never what a client says."""

from __future__ import annotations

import pytest

from router.peers import MAX_ADDRESS_LENGTH, client_address, networks, peer_host

PROXIES = networks(["127.0.0.1", "10.0.0.0/8"])


def test_peer_host_strips_the_port() -> None:
    """Crossbar's peer strings become bare addresses; anything else is kept whole, bounded."""
    assert peer_host("tcp4:127.0.0.1:5678") == "127.0.0.1"
    assert peer_host("tcp6:::1:5678") == "::1"
    assert peer_host("unix") == "unix"
    assert peer_host("x" * 10_000) == "x" * MAX_ADDRESS_LENGTH
    assert peer_host(None) is None


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    """A client that sends X-Forwarded-For itself is still known by its own address."""
    headers = {"x-forwarded-for": "1.2.3.4", "x-real-ip": "5.6.7.8"}
    assert client_address("tcp4:192.0.2.7:5000", headers, PROXIES) == "192.0.2.7"
    assert client_address("tcp4:127.0.0.1:5000", headers, ()) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client() -> None:
    """Behind a trusted proxy the rightmost address that is not itself a trusted proxy is the client."""
    assert client_address("tcp4:127.0.0.1:1", {"X-Forwarded-For": "198.51.100.1"}, PROXIES) == "198.51.100.1"
    chain = {"x-forwarded-for": "6.6.6.6, 198.51.100.1, 10.1.2.3"}  # client-written 6.6.6.6 is not believed
    assert client_address("tcp4:127.0.0.1:1", chain, PROXIES) == "198.51.100.1"
    assert client_address("tcp4:10.0.0.5:1", {"x-real-ip": "198.51.100.9"}, PROXIES) == "198.51.100.9"


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-forwarded-for": "not an address"}, {"x-real-ip": "nope"}, {"x-forwarded-for": "127.0.0.1, 10.0.0.1"}],
)
def test_a_proxy_naming_no_usable_client_leaves_its_own_address(headers: dict[str, str]) -> None:
    """No header, garbage, or only proxies in the chain: the proxy's own address, never a guess."""
    assert client_address("tcp4:127.0.0.1:1", headers, PROXIES) == "127.0.0.1"


def test_bad_proxy_entries_are_refused() -> None:
    """A trusted_proxies entry that is no address or network is an error, not silently ignored."""
    with pytest.raises(ValueError, match="does not appear to be"):
        networks(["10.0.0.0/8", "proxy.example"])
