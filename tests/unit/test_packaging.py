"""What the wheel holds: every directory of Python code under router/ and components/ is a package."""

from __future__ import annotations

from tests.conftest import ROOT


def test_every_code_directory_is_a_regular_package() -> None:
    """setuptools' find_packages (pyproject.toml) skips a directory without __init__.py, and the router
    worker, which imports the installed wheel, would then fail to import it."""
    missing = [
        str(directory.relative_to(ROOT))
        for top in ("router", "components")
        for directory in [ROOT / top, *(ROOT / top).rglob("*")]
        if directory.is_dir()
        and directory.name != "__pycache__"
        and any(directory.glob("*.py"))
        and not (directory / "__init__.py").exists()
    ]
    assert missing == []
