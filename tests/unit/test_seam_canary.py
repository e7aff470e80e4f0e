"""Canary: every private name of Crossbar/autobahn the seam relies on still exists in the installed versions.

Each module of :mod:`router.seam` lists what it relies on in ``RELIED_ON``, as ``(module, "Class.attribute")``
pairs or full dotted names. An upgrade of crossbar or autobahn that renames or drops one fails here, by
name, instead of late in a running router.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings
from typing import Any

import pytest

import router.seam
from router.seam import VERIFIED, UnverifiedVersion, check_versions


def relied_on() -> list[tuple[str, str, str]]:
    found = []
    for info in pkgutil.iter_modules(router.seam.__path__):
        module = importlib.import_module(f"router.seam.{info.name}")
        for entry in getattr(module, "RELIED_ON", []):
            target, name = entry if isinstance(entry, tuple) else split_module(entry)
            found.append((info.name, target, name))
    return found


def split_module(dotted: str) -> tuple[str, str]:
    """``"pkg.mod.Class.attr"`` -> ``("pkg.mod", "Class.attr")``: the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return ".".join(parts[:cut]), ".".join(parts[cut:])
    raise AssertionError(f"no module in {dotted!r}")


def exists(target: str, dotted: str) -> bool:
    """Whether ``dotted`` resolves in module ``target``; an instance attribute counts if the class sets it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # crossbar's import chain warns about itself
        obj: Any = importlib.import_module(target)
    *path, last = dotted.split(".")
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    if hasattr(obj, last):
        return True
    assignment = re.compile(rf"self\.{re.escape(last)}\s*(:[^=\n]*)?=[^=]")
    return inspect.isclass(obj) and assignment.search(inspect.getsource(obj)) is not None


def test_the_seam_lists_what_it_relies_on() -> None:
    """The authorization module (at least) declares its private names, so the canary has something to check."""
    modules = {module for module, _, _ in relied_on()}
    assert "authorization" in modules


@pytest.mark.parametrize(("module", "target", "name"), relied_on())
def test_relied_on_name_exists(module: str, target: str, name: str) -> None:
    """The private name exists in the installed library."""
    assert exists(target, name), f"router.seam.{module} relies on {target}.{name}, which is gone"


def test_versions_are_the_verified_ones() -> None:
    """The installed crossbar and autobahn are exactly the versions the seam was verified against."""
    check_versions()


def test_other_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """With any other crossbar version the seam refuses to install (the worker then does not start)."""
    import crossbar

    monkeypatch.setattr(crossbar, "__version__", "99.0.0")
    with pytest.raises(UnverifiedVersion, match=r"99\.0\.0"):
        check_versions()
    assert VERIFIED["crossbar"] != "99.0.0"
