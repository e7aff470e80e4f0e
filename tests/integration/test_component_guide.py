"""docs/components.md, followed to the letter: its files, its config, a real node, a real call."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from router.launch import StartError
from router.testkit import session, start_node
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

GUIDE = ROOT / "docs" / "components.md"
BLOCK = re.compile(r"```(python|json)\n(.*?)```", re.DOTALL)


def write_guide_files(target: Path) -> Path:
    """Write the guide's myapp/ files into ``target``; return the config path."""
    blocks = BLOCK.findall(GUIDE.read_text())
    app = target / "myapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    written = []
    for language, body in blocks:
        first = body.splitlines()[0]
        if language == "python" and first.startswith("# myapp/"):
            (target / first[2:]).write_text(body)
            written.append(first[2:])
        if language == "json" and body.lstrip().startswith("{"):
            (app / "switchboard.json").write_text(body)
            written.append("myapp/switchboard.json")
    assert sorted(written) == ["myapp/core.py", "myapp/session.py", "myapp/switchboard.json"]
    return app / "switchboard.json"


@pytest_twisted.ensureDeferred
async def test_the_guide_component_runs(reactor: Any, tmp_path: Path) -> None:
    """The guide's component, with the guide's config, answers com.example.hello and rejects bad input."""
    config = write_guide_files(tmp_path)
    node = await start_node(reactor, config, tmp_path / "data")
    try:
        async with session(reactor, node.url) as s:
            assert await s.call("com.example.hello", "Ann") == "Hello, Ann"
            with pytest.raises(ApplicationError) as caught:
                await s.call("com.example.hello", "")
            assert caught.value.error == "wamp.error.invalid_argument"
            assert caught.value.args[0] == "com.example.hello: name: must be a non-empty string"
            with pytest.raises(ApplicationError) as caught:
                await s.call("com.example.hello")
            assert caught.value.args[0] == "com.example.hello: missing a required argument: 'name'"
    finally:
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_the_guides_first_mistake_fails_with_the_documented_line(reactor: Any, tmp_path: Path) -> None:
    """The guide's config with `register` missing from the component's role does not start: the error is
    the line docs/components.md shows, word for word."""
    config = write_guide_files(tmp_path)
    document = json.loads(config.read_text())
    document["realms"][0]["roles"]["backend"]["allow"][0]["actions"] = ["publish"]
    config.write_text(json.dumps(document))
    documented = re.search(r"```text\nerror: (.*)\n```", GUIDE.read_text())
    assert documented is not None
    with pytest.raises(StartError) as caught:
        await start_node(reactor, config, tmp_path / "data")  # raises: there is no node to stop
    assert str(caught.value) == documented.group(1)
