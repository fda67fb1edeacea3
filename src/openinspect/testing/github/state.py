"""The fake GitHub's state and rules: users, repos, the App and its installations, tokens,
OAuth grants and pull requests, behind one lock, optionally persisted as ``state.json``.

Operations that GitHub can refuse raise ``ApiError`` with GitHub's status and message; the HTTP
layer turns it into GitHub's error JSON.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openinspect.testing.github import gitops
from openinspect.testing.github.records import (
    LEVELS,
    AppRec,
    DeviceGrantRec,
    EmailRec,
    InstallationRec,
    InstallationTokenRec,
    Level,
    OAuthCodeRec,
    Permission,
    RepoRec,
    StateData,
    UserRec,
    UserTokenRec,
)

STATE_FILE = "state.json"
REPOS_DIR = "repos"
DOCS = "https://docs.github.com/rest"
DEFAULT_INSTALLATION_PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "read",
    "actions": "read",
    "metadata": "read",
}
CODE_TTL_S = 600.0
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ0123456789"


class ApiError(Exception):
    """A refusal in GitHub's words: ``status``, ``message`` and optional validation ``errors``."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            data["errors"] = self.errors
        data["status"] = str(self.status)
        return data


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def validation_failed(**error: Any) -> ApiError:
    return ApiError(422, "Validation Failed", errors=[error])


def new_token(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))


@dataclass(frozen=True)
class Identity:
    """Who made a request. ``login`` is the user, or the App's bot for installation tokens."""

    kind: str  # anonymous | app | installation | user
    login: str | None = None
    installation_id: int | None = None
    repos: frozenset[str] = field(default_factory=frozenset)
    permissions: tuple[tuple[str, str], ...] = ()

    def may(self, permission: str, access: str = "write") -> bool:
        granted = dict(self.permissions).get(permission)
        return granted == "write" or (access == "read" and granted == "read")


ANONYMOUS = Identity("anonymous")


def generate_app(app_id: int = 31337, slug: str = "openinspect-fake") -> AppRec:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return AppRec(
        id=app_id,
        slug=slug,
        name="openinspect (fake)",
        client_id="Iv1." + secrets.token_hex(8),
        client_secret=secrets.token_hex(20),
        webhook_secret=secrets.token_hex(20),
        private_key_pem=pem,
    )


class FakeState:
    """All mutable state, guarded by one re-entrant lock. ``root`` holds the bare repos (and
    ``state.json`` when ``persist``)."""

    def __init__(self, root: Path, *, persist: bool) -> None:
        self.root = root
        self.persist = persist
        self.lock = threading.RLock()
        path = root / STATE_FILE
        if persist and path.exists():
            self.data = StateData.model_validate_json(path.read_text())
        else:
            self.data = StateData(app=generate_app())
        self.save()

    # ------------------------------------------------------------------ persistence

    def save(self) -> None:
        if not self.persist:
            return
        with self.lock:
            text = self.data.model_dump_json(indent=1)
        tmp = self.root / f".{STATE_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        tmp.replace(self.root / STATE_FILE)

    @contextmanager
    def change(self) -> Iterator[StateData]:
        """Mutate under the lock, then persist."""
        with self.lock:
            yield self.data
            self.save()

    def next_id(self) -> int:
        with self.lock:
            self.data.next_id += 1
            return self.data.next_id

    @property
    def app(self) -> AppRec:
        return self.data.app

    # ------------------------------------------------------------------ users and repos

    def add_user(
        self,
        login: str,
        *,
        name: str | None = None,
        emails: list[EmailRec] | None = None,
        orgs: list[str] | None = None,
        kind: str = "User",
    ) -> UserRec:
        with self.change() as data:
            key = login.lower()
            if key in data.users:
                raise ValueError(f"user {login!r} exists already")
            user = UserRec(
                id=self.next_id(),
                login=login,
                name=name,
                emails=emails or [],
                orgs=list(orgs or []),
                type="Organization" if kind == "Organization" else "User",
                created_at=time.time(),
            )
            data.users[key] = user
            for org in user.orgs:
                if org.lower() not in data.users:
                    data.users[org.lower()] = UserRec(
                        id=self.next_id(), login=org, type="Organization", created_at=time.time()
                    )
            return user

    def user(self, login: str) -> UserRec | None:
        with self.lock:
            return self.data.users.get(login.lower())

    def require_user(self, login: str) -> UserRec:
        user = self.user(login)
        if user is None:
            raise ValueError(f"no user {login!r}; add it with add_user() first")
        return user

    def bare_path(self, repo: RepoRec) -> Path:
        return self.root / REPOS_DIR / repo.owner.lower() / f"{repo.name.lower()}.git"

    def create_repo(
        self,
        full_name: str,
        *,
        source: Path | None,
        private: bool,
        default_branch: str,
        collaborators: dict[str, Permission],
    ) -> RepoRec:
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"expected 'owner/name', got {full_name!r}")
        name = name.removesuffix(".git")
        with self.lock:
            if full_name.lower() in self.data.repos:
                raise ValueError(f"repository {full_name!r} exists already")
            if owner.lower() not in self.data.users:
                self.add_user(owner, kind="Organization")
            for login in collaborators:
                self.require_user(login)
            now = time.time()
            repo = RepoRec(
                id=self.next_id(),
                owner=self.data.users[owner.lower()].login,
                name=name,
                private=private,
                default_branch=default_branch,
                collaborators={k.lower(): v for k, v in collaborators.items()},
                created_at=now,
                pushed_at=now,
            )
        gitops.create_bare(self.bare_path(repo), default_branch, source)
        with self.change() as data:
            data.repos[repo.key] = repo
        return repo

    def repo(self, owner: str, name: str) -> RepoRec | None:
        with self.lock:
            return self.data.repos.get(f"{owner}/{name.removesuffix('.git')}".lower())

    def require_repo(self, full_name: str) -> RepoRec:
        owner, _, name = full_name.partition("/")
        repo = self.repo(owner, name)
        if repo is None:
            raise ValueError(f"no repository {full_name!r}; create it with create_repo() first")
        return repo

    def installation_of(self, repo: RepoRec) -> InstallationRec | None:
        with self.lock:
            return next((i for i in self.data.installations.values() if repo.key in i.repos), None)

    def level(self, identity: Identity, repo: RepoRec) -> Level:
        """What ``identity`` may do with ``repo``: none, pull, push or admin."""
        public: Level = "none" if repo.private else "pull"
        if identity.kind == "user" and identity.login is not None:
            login = identity.login.lower()
            if login == repo.owner.lower():
                return "admin"
            granted: Level = repo.collaborators.get(login, "none")
            return granted if LEVELS[granted] >= LEVELS[public] else public
        if identity.kind == "installation":
            if repo.key in identity.repos:
                return "push" if identity.may("contents") else "pull"
            return public
        if identity.kind == "anonymous":
            return public
        return "none"

    # ------------------------------------------------------------------ the App's tokens

    def add_installation(
        self, repos: list[str], account: str | None, permissions: dict[str, str] | None
    ) -> InstallationRec:
        found = [self.require_repo(r) for r in repos]
        owner = account or (found[0].owner if found else None)
        if owner is None:
            raise ValueError("an installation needs repos or an account")
        with self.change() as data:
            inst = InstallationRec(
                id=self.next_id(),
                account=owner,
                repos=[r.key for r in found],
                permissions=dict(permissions or DEFAULT_INSTALLATION_PERMISSIONS),
                created_at=time.time(),
            )
            data.installations[inst.id] = inst
            return inst

    def mint_installation_token(
        self, installation_id: int, names: list[str] | None, permissions: dict[str, str] | None
    ) -> InstallationTokenRec:
        with self.change() as data:
            inst = data.installations.get(installation_id)
            if inst is None:
                raise not_found()
            repos = list(inst.repos)
            if names is not None:
                wanted = [
                    f"{inst.account}/{n}".lower() if "/" not in n else n.lower() for n in names
                ]
                if any(w not in inst.repos for w in wanted):
                    raise ApiError(
                        422,
                        "There is at least one repository that does not exist or is not "
                        "accessible to the parent installation.",
                    )
                repos = wanted
            granted = dict(inst.permissions)
            if permissions:
                for perm, access in permissions.items():
                    have = granted.get(perm)
                    if have is None or (access == "write" and have != "write"):
                        raise ApiError(
                            422,
                            f"The permissions requested are not granted to this installation "
                            f"({perm}: {access}).",
                        )
                granted = {"metadata": "read", **permissions}
            rec = InstallationTokenRec(
                token=new_token("ghs_"),
                installation_id=inst.id,
                repos=repos,
                permissions=granted,
                expires_at=time.time() + data.settings.installation_token_ttl_s,
            )
            data.installation_tokens[rec.token] = rec
            return rec

    def expire_installation_tokens(self) -> None:
        with self.change() as data:
            for rec in data.installation_tokens.values():
                rec.expires_at = min(rec.expires_at, time.time() - 1)

    # ------------------------------------------------------------------ user tokens and OAuth

    def mint_user_token(self, login: str, scopes: list[str] | None = None) -> UserTokenRec:
        user = self.require_user(login)
        with self.change() as data:
            now = time.time()
            ttl = data.settings.user_token_ttl_s
            rec = UserTokenRec(
                token=new_token("ghu_" if ttl is not None else "gho_"),
                login=user.login,
                scopes=list(scopes or []),
                expires_at=now + ttl if ttl is not None else None,
                refresh_token=new_token("ghr_") if ttl is not None else None,
                refresh_expires_at=(
                    now + data.settings.refresh_token_ttl_s if ttl is not None else None
                ),
            )
            data.user_tokens[rec.token] = rec
            return rec

    def refresh_user_token(self, refresh_token: str) -> UserTokenRec | None:
        with self.change() as data:
            old = next(
                (t for t in data.user_tokens.values() if t.refresh_token == refresh_token), None
            )
            if old is None or (old.refresh_expires_at or 0) < time.time():
                return None
            del data.user_tokens[old.token]  # a refresh revokes the old pair
            return self.mint_user_token(old.login, old.scopes)

    def expire_user_token(self, token: str) -> None:
        with self.change() as data:
            rec = data.user_tokens.get(token)
            if rec is None:
                raise ValueError("no such user token")
            rec.expires_at = time.time() - 1

    def new_code(
        self, login: str, client_id: str, redirect_uri: str | None, scopes: list[str]
    ) -> str:
        with self.change() as data:
            code = secrets.token_hex(10)
            data.codes[code] = OAuthCodeRec(
                code=code,
                login=login,
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                expires_at=time.time() + CODE_TTL_S,
            )
            return code

    def take_code(self, code: str) -> OAuthCodeRec | None:
        """Codes are single-use: taking one removes it."""
        with self.change() as data:
            rec = data.codes.pop(code, None)
            return rec if rec is not None and rec.expires_at > time.time() else None

    def new_device_grant(self, client_id: str, scopes: list[str]) -> DeviceGrantRec:
        with self.change() as data:
            half = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            grant = DeviceGrantRec(
                device_code=secrets.token_hex(20),
                user_code=f"{half[:4]}-{half[4:]}",
                client_id=client_id,
                scopes=scopes,
                expires_at=time.time() + data.settings.device_expires_s,
                interval_s=data.settings.device_interval_s,
            )
            data.devices[grant.device_code] = grant
            return grant

    def decide_device(self, user_code: str, login: str | None) -> None:
        """Approve (``login``) or deny (None) the grant showing ``user_code``."""
        if login is not None:
            self.require_user(login)
        with self.change() as data:
            grant = next(
                (g for g in data.devices.values() if g.user_code == user_code.upper()), None
            )
            if grant is None:
                raise ValueError(f"no pending device sign-in with user code {user_code!r}")
            grant.login = login
            grant.denied = login is None

    # ------------------------------------------------------------------ identities

    def identify_token(self, token: str) -> Identity | None:
        """The identity of an installation or user token, or None if unknown or expired."""
        now = time.time()
        with self.lock:
            inst_token = self.data.installation_tokens.get(token)
            if inst_token is not None:
                if inst_token.expires_at <= now:
                    return None
                return Identity(
                    "installation",
                    login=self.app.bot_login,
                    installation_id=inst_token.installation_id,
                    repos=frozenset(inst_token.repos),
                    permissions=tuple(sorted(inst_token.permissions.items())),
                )
            user_token = self.data.user_tokens.get(token)
            if user_token is not None:
                if user_token.expires_at is not None and user_token.expires_at <= now:
                    return None
                return Identity("user", login=user_token.login)
        return None

    def extend_installation(self, installation_id: int, repos: list[str]) -> InstallationRec:
        found = [self.require_repo(r) for r in repos]
        with self.change() as data:
            inst = data.installations[installation_id]
            inst.repos = sorted({*inst.repos, *(r.key for r in found)})
            return inst
