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
    """Create what is missing (users, repos, one installation per account), write the App
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
    installations = _install_per_account(fake, people)
    key_path = fake.data_dir / KEY_FILE
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(fake.app_private_key_pem())
    key_path.chmod(0o600)
    # One account: pin its installation. With several, the server looks up each repo's.
    pinned = (
        {"OPENINSPECT_GITHUB__INSTALLATION_ID": str(installations[0])}
        if len(installations) == 1
        else {}
    )
    return {
        "OPENINSPECT_GITHUB__WEB_URL": fake.url,
        "OPENINSPECT_GITHUB__APP_ID": str(fake.app_id),
        "OPENINSPECT_GITHUB__APP_PRIVATE_KEY_PATH": str(key_path),
        **pinned,
        "OPENINSPECT_GITHUB__CLIENT_ID": fake.client_id,
        "OPENINSPECT_GITHUB__CLIENT_SECRET": fake.client_secret,
        "OPENINSPECT_GITHUB__WEBHOOK_SECRET": fake.webhook_secret,
    }


def _install_per_account(fake: FakeGitHub, people: Sequence[str]) -> list[int]:
    """Install the App once per account on that account's repos, as on GitHub (a token for
    ``acme/widgets`` can only come from the installation on ``acme``); with no repos at all, on
    the first user. Returns the installation ids."""
    state = fake.state
    wanted: dict[str, list[str]] = {}  # account → its repos
    for repo in state.data.repos.values():
        wanted.setdefault(repo.owner, []).append(repo.full_name)
    if not wanted and people:
        wanted[people[0]] = []
    existing = {inst.account.lower(): inst.id for inst in state.data.installations.values()}
    for account, names in wanted.items():
        if account.lower() not in existing:
            existing[account.lower()] = fake.add_installation(names, account=account)
        elif names:
            state.extend_installation(existing[account.lower()], names)
    return sorted(existing.values())


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
