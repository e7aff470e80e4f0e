"""The configuration reference in docs/ cannot drift from the schema, and documented URIs exist."""

from __future__ import annotations

import json
import re

from components import uris
from router import uris as router_uris
from router.config import schema
from tests.conftest import ROOT
from tests.unit.schema_keys import MISSING, schema_rows

DOCS = ROOT / "docs"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| (.*) \|$")


def documented_keys() -> dict[str, tuple[str, str, str]]:
    rows = {}
    text = (DOCS / "configuration.md").read_text()
    keys_section = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    for line in keys_section.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2).strip(), match.group(3).strip(), match.group(4).strip())
    return rows


def test_every_schema_key_is_documented_with_its_type_and_default() -> None:
    """Each key of the schema has a row in docs/configuration.md with the same type, required flag and default."""
    documented = documented_keys()
    for path, type_, required, default in schema_rows(schema()):
        assert path in documented, f"{path} is not documented in docs/configuration.md"
        doc_type, doc_default, description = documented[path]
        assert doc_type == type_ + (", required" if required else ""), path
        assert doc_default == ("—" if default is MISSING else f"`{json.dumps(default)}`"), path
        assert description, f"{path} has no description"


def test_no_documented_key_is_missing_from_the_schema() -> None:
    """docs/configuration.md lists no key the schema does not have."""
    known = {path for path, *_ in schema_rows(schema())}
    assert set(documented_keys()) - known == set()


def test_every_public_uri_is_documented() -> None:
    """Each URI of the framework (router.uris) and of the demo contract (components.uris) appears in
    docs/uris.md."""
    text = (DOCS / "uris.md").read_text()
    for module in (router_uris, uris):
        for name in module.__all__:
            value = getattr(module, name)
            for uri in value if isinstance(value, tuple) else [value]:
                if isinstance(uri, str):
                    assert f"`{uri}" in text, f"{module.__name__}.{name} ({uri}) is not documented in docs/uris.md"


def test_every_admin_uri_is_documented() -> None:
    """Each switchboard.admin.* procedure and the audit topic appear in docs/uris.md and the guide."""
    for doc in ("uris.md", "authorization.md"):
        text = (DOCS / doc).read_text()
        for uri in router_uris.ADMIN_PROCEDURES:
            assert f"`{uri}" in text, f"{uri} is not documented in docs/{doc}"
        assert f"`{router_uris.ADMIN_ON_CHANGE}`" in text
