"""``openinspect testing github-server``: the fake GitHub in the foreground, with its state in
a directory, printing the ``OPENINSPECT_GITHUB__*`` settings that point a server at it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from openinspect.testing.github.server import FakeGitHub

DEFAULT_USER = "octocat"
KEY_FILE = "app.pem"


def parse_repo_spec(spec: str) -> tuple[str, Path | None]:
    """``owner/name=PATH`` (import the git repo at PATH) or ``owner/name`` (empty)."""
    name, sep, path = spec.partition("=")
    if name.count("/") != 1 or not all(name.split("/")):
        raise ValueError(f"expected --repo owner/name=PATH, got {spec!r}")
    return name.strip(), Path(path).expanduser() if sep and path else None


def prepare(
    fake: FakeGitHub, repos: Sequence[tuple[str, Path | None]], users: Sequence[str]
) -> dict[str, str]:
    """Create what is missing (users, repos, one installation with every repo), write the App
    key into the data directory (0600), and return the settings as environment variables."""
    state = fake.state
    logins = list(users) or ([DEFAULT_USER] if not state.data.users else [])
    for login in logins:
        if state.user(login) is None:
            fake.add_user(login, name=login.capitalize())
    people = [u.login for u in state.data.users.values() if u.type == "User"]
    for full_name, source in repos:
        owner, _, name = full_name.partition("/")
        if state.repo(owner, name) is None:
            fake.create_repo(full_name, source=source, collaborators=dict.fromkeys(people, "push"))
    all_repos = [r.full_name for r in state.data.repos.values()]
    installation_ids = sorted(state.data.installations)
    if installation_ids:
        installation_id = installation_ids[0]
        if all_repos:
            state.extend_installation(installation_id, all_repos)
    else:
        installation_id = fake.add_installation(all_repos, account=people[0] if people else None)
    key_path = fake.data_dir / KEY_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(fake.app_private_key_pem())
    key_path.chmod(0o600)
    return {
        "OPENINSPECT_GITHUB__WEB_URL": fake.url,
        "OPENINSPECT_GITHUB__APP_ID": str(fake.app_id),
        "OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH": str(key_path),
        "OPENINSPECT_GITHUB__INSTALLATION_ID": str(installation_id),
        "OPENINSPECT_GITHUB__CLIENT_ID": fake.client_id,
        "OPENINSPECT_GITHUB__CLIENT_SECRET": fake.client_secret,
        "OPENINSPECT_GITHUB__WEBHOOK_SECRET": fake.webhook_secret,
    }


def serve(
    *,
    data_dir: Path,
    port: int,
    host: str = "127.0.0.1",
    repos: Sequence[str] = (),
    users: Sequence[str] = (),
    webhook_url: str | None = None,
    echo: Callable[[str], None] = lambda line: print(line, flush=True),
) -> None:
    """Run until Ctrl-C. Raises ValueError for a bad ``--repo`` before anything binds."""
    specs = [parse_repo_spec(spec) for spec in repos]
    fake = FakeGitHub(data_dir.expanduser().resolve(), host=host, port=port).bind()
    try:
        env = prepare(fake, specs, users)
        if webhook_url:
            fake.subscribe_webhooks(webhook_url)
    except BaseException:
        fake.stop()
        raise
    echo(f"Fake GitHub on {fake.url} (REST API {fake.api_url}), state in {fake.data_dir}")
    echo("Point an openinspect server at it with:")
    for key, value in env.items():
        echo(f"{key}={value}")
    echo(f"Control endpoints: {fake.url}/_fake/state (see openinspect.testing.github.control)")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this command ends
        fake.serve_forever()
