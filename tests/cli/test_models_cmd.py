"""``openinspect models`` lists what the server can run, marks its default, and says where the
rest would come from; a client command, so it imports no server package."""

from __future__ import annotations

import json

from openinspect.testing.server import ServerProcess

from .helpers import cli, heavy, imported_modules


def test_models_lists_the_available_models_and_the_default(server: ServerProcess) -> None:
    done = cli("models", "--json", server=server, python_flags=("-X", "importtime"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert heavy(imported_modules(done.stderr)) == []
    listed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert listed and all(m["available"] for m in listed)
    ids = {m["id"] for m in listed}
    # The test server has an Anthropic key and a compatible server, but no OpenAI key.
    assert "anthropic:claude-sonnet-4-6" in ids and "openai:gpt-5" not in ids
    # The server's default (set by the test server) is a custom name under openai-compatible:*.
    assert not any(m["default"] for m in listed)

    everything = cli("models", "--all", "--json", server=server)
    assert "openai:gpt-5" in {json.loads(line)["id"] for line in everything.stdout.splitlines()}

    table = cli("models", server=server)
    assert table.returncode == 0, table.stderr
    assert "anthropic:claude-sonnet-4-6" in table.stdout and "openai:gpt-5 " not in table.stdout
    assert "openinspect models --all" in table.stdout
    assert "default: openai-compatible:scripted" in table.stdout
