"""Canary: every private name and wrapped signature of Crossbar/autobahn/Twisted the seam relies on still
exists in the installed versions, and the version policy holds.

Each module of :mod:`router.seam` lists what it relies on in ``RELIED_ON`` (``(module, "Class.attribute")``
pairs or full dotted names) and the parameters of what it wraps or calls by position in ``SIGNATURES``. An
upgrade of crossbar, autobahn or Twisted that renames or drops one fails here, by name, instead of late in a
running router. The check is :func:`router.seam.missing`, the one the router worker runs on unverified
versions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from twisted.logger import LogEvent, globalLogPublisher

import router.seam
from router import seam
from router.seam import VERIFIED, UnverifiedVersion, check_versions, exists, missing, relied_on, split_module

# Collected before any test runs, so before any test installs a wrapper over a library function.
MODULES = {
    info.name: importlib.import_module(f"router.seam.{info.name}") for info in pkgutil.iter_modules(seam.__path__)
}
MISSING = {name: missing(module) for name, module in MODULES.items()}


def entries() -> list[tuple[str, str, str]]:
    return [(name, target, attr) for name, module in MODULES.items() for target, attr in relied_on(module)]


def signatures() -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (name, dotted, tuple(expected))
        for name, module in MODULES.items()
        for dotted, expected in getattr(module, "SIGNATURES", {}).items()
    ]


@pytest.fixture
def unverified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LogEvent]]:
    """A crossbar version the seam was not verified against, the policy undecided; yields the log events."""
    monkeypatch.setattr(router.seam.crossbar, "__version__", "99.0.0")
    monkeypatch.setattr(seam, "_decisions", {})
    monkeypatch.delenv(seam.UNVERIFIED_ENV, raising=False)
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)


def test_every_module_of_the_package_is_judged() -> None:
    """The policy's module list is exactly the package's modules, each with a non-empty RELIED_ON."""
    assert set(seam.MODULES) == set(MODULES)
    empty = [name for name, module in MODULES.items() if not getattr(module, "RELIED_ON", None)]
    assert empty == []


@pytest.mark.parametrize(("module", "target", "name"), entries())
def test_relied_on_name_exists(module: str, target: str, name: str) -> None:
    """The private name exists in the installed library."""
    assert exists(target, name), f"router.seam.{module} relies on {target}.{name}, which is gone"


@pytest.mark.parametrize(("module", "dotted", "expected"), signatures())
def test_wrapped_signature_is_unchanged(module: str, dotted: str, expected: tuple[str, ...]) -> None:
    """What the module wraps or calls by position takes the parameters it expects, in that order."""
    problems = [m for m in MISSING[module] if m.startswith(dotted)]
    assert problems == [], f"router.seam.{module}: {problems}"


@pytest.mark.parametrize(
    "dotted",
    [
        "crossbar.router.dealer.Dealer._add_invoke_request",
        "crossbar.router.dealer.Dealer._call",
        "crossbar.router.router.Router.authorize",
        "autobahn.wamp.serializer.Serializer.unserialize",
        "crossbar.router.router.Router._session_left",
        "crossbar.router.dealer.Dealer.processInvocationError",
    ],
)
def test_every_wrapped_method_of_the_issue_has_its_signature_listed(dotted: str) -> None:
    """The methods wrapped with positional arguments are among the checked signatures."""
    assert dotted in {d for _, d, _ in signatures()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_is_missing(module: str) -> None:
    """The run-time check finds nothing missing on the installed versions (so every module installs)."""
    assert MISSING[module] == []


def test_signed_names_are_relied_on() -> None:
    """Every name with a checked signature is also in its module's RELIED_ON (one list to read)."""
    unlisted = [
        f"router.seam.{module}: {dotted}"
        for module, dotted, _ in signatures()
        if split_module(dotted) not in relied_on(MODULES[module])
    ]
    assert unlisted == []


def test_the_canary_notices_a_missing_name_and_a_changed_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """missing() reports a name that is gone and a method whose parameters changed (it can fail)."""
    from crossbar.router.dealer import Dealer

    module = ModuleType("fake")
    module.RELIED_ON = ["crossbar.router.dealer.Dealer._no_such_attribute"]  # type: ignore[attr-defined]
    module.SIGNATURES = {  # type: ignore[attr-defined]
        "crossbar.router.dealer.Dealer.processCall": ("self", "session", "call"),
        "crossbar.router.dealer.Dealer._no_such_method": ("self",),
    }
    assert missing(module) == [
        "crossbar.router.dealer.Dealer._no_such_attribute",
        "crossbar.router.dealer.Dealer._no_such_method",
    ]

    def processCall(self: Any, session: Any, call: Any, extra: Any) -> None:
        """A newer signature."""

    monkeypatch.setattr(Dealer, "processCall", processCall)
    assert missing(module)[1] == (
        "crossbar.router.dealer.Dealer.processCall(self, session, call) != (self, session, call, extra)"
    )


def test_versions_are_the_verified_ones() -> None:
    """The installed crossbar, autobahn and Twisted are exactly the versions the seam was verified against
    (skipped while trying others with SWITCHBOARD_UNVERIFIED=1, as `tox -e upgrade` does)."""
    import os

    if os.environ.get(seam.UNVERIFIED_ENV) == "1" and seam.installed_versions() != VERIFIED:
        pytest.skip(f"trying unverified versions: {seam.installed_versions()}")
    check_versions()


def test_other_versions_are_refused(unverified: list[LogEvent]) -> None:
    """With any other crossbar version and no SWITCHBOARD_UNVERIFIED, every module refuses, in one line."""
    with pytest.raises(UnverifiedVersion, match=r"crossbar 99\.0\.0 \(verified: 26\.10\.1\)") as raised:
        seam.allowed("calls")
    assert "\n" not in str(raised.value)
    assert VERIFIED["crossbar"] != "99.0.0"


def test_speedups_follow_the_same_policy(unverified: list[LogEvent], monkeypatch: pytest.MonkeyPatch) -> None:
    """speedups.install() refuses unverified versions like every other module (no quiet switch-off)."""
    from router.seam import speedups

    was_installed = speedups.installed()
    speedups.uninstall()
    try:
        with pytest.raises(UnverifiedVersion):
            speedups.install()
        assert not speedups.installed()
    finally:
        monkeypatch.undo()
        if was_installed:
            speedups.install()


def test_unverified_versions_install_what_is_intact(
    unverified: list[LogEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SWITCHBOARD_UNVERIFIED=1 a module whose names all exist is used; one missing a name is skipped
    with a warning naming the module and the name; the decision is taken once."""
    monkeypatch.setenv(seam.UNVERIFIED_ENV, "1")
    monkeypatch.setattr(MODULES["denials"], "RELIED_ON", ["crossbar.router.dealer.Dealer._gone_in_99"])
    assert seam.allowed("calls")
    assert not seam.allowed("denials")
    assert not seam.allowed("denials")
    warnings = [e for e in unverified if e.get("log_namespace") == "switchboard.seam"]
    assert len(warnings) == 1
    assert warnings[0]["module"] == "denials"
    assert "Dealer._gone_in_99" in warnings[0]["gone"]
    assert warnings[0]["log_level"].name == "warn"


def test_verified_versions_use_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the verified versions every module is used, without looking at the environment."""
    monkeypatch.setattr(seam, "_decisions", {})
    monkeypatch.delenv(seam.UNVERIFIED_ENV, raising=False)
    assert all(seam.allowed(name) for name in seam.MODULES)


def test_roles_refuse_when_skipped(unverified: list[LogEvent], monkeypatch: pytest.MonkeyPatch) -> None:
    """The live role helpers raise (instead of failing half way) where the policy skips their module."""
    from router.seam import roles

    monkeypatch.setenv(seam.UNVERIFIED_ENV, "1")
    monkeypatch.setattr(roles, "RELIED_ON", ["crossbar.router.router.Router._gone_in_99"])
    with pytest.raises(UnverifiedVersion, match=r"router\.seam\.roles"):
        roles.realm_router(object())


def test_relied_on_is_read_from_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """relied_on() normalises dotted names and pairs alike."""
    module: Any = ModuleType("fake")
    module.RELIED_ON = [("crossbar.router.router", "Router._roles"), "crossbar.router.dealer.Dealer._call"]
    assert relied_on(module) == [
        ("crossbar.router.router", "Router._roles"),
        ("crossbar.router.dealer", "Dealer._call"),
    ]
