"""Wire schemas of sign-in, tokens and users (separate from the store's records)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from openinspect.api.schemas import Trimmed
from openinspect.domain.models import Role, User
from openinspect.people.links import CODE_MAX_CHARS
from openinspect.store.identities import Identity
from openinspect.store.users import ApiToken, TokenKind

NAME_MAX = 200
EMAIL_MAX = 320
TOKEN_DAYS_MAX = 3650
# Patterns spell out the characters they refuse: regex engines disagree on what ``\\s`` is (JSON
# Schema's, like JavaScript's, leaves out U+0085, which Python and pydantic's engine count), so a
# client reading the OpenAPI document and the server would disagree on such input. ``_SPACE``
# holds every character ``str.strip`` removes (and a few invisible ones), so a value the document
# allows is still allowed once trimmed (see ``api.schemas.Trimmed``).
_SPACE = "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200f\\u2028-\\u202f\\u205f\\u3000\\ufeff"
_EMAIL_PART = rf"[^@{_SPACE}<>\"',;]+"
_EMAIL_RE = re.compile(rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")
_EMAIL_PATTERN = rf"^ *{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART} *$"
_NAME_PATTERN = rf"^[^<>\r\n\t\x00]*[^{_SPACE}<>][^<>\r\n\t\x00]*$"
_BAD_NAME_CHARS = set("<>\n\r\t\x00")


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    git_name: str
    git_email: str
    role: Role
    created_at: datetime
    github_login: str | None = None
    avatar_url: str | None = None

    @classmethod
    def of(cls, user: User, identity: Identity | None = None) -> UserOut:
        return cls(
            **user.model_dump(),
            github_login=identity.login if identity else None,
            avatar_url=identity.avatar_url if identity else None,
        )


class UserList(BaseModel):
    users: list[UserOut]


class RoleUpdate(BaseModel):
    role: Role


class UserCreate(BaseModel):
    """A person an admin adds (then mints them a sign-in link)."""

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=_NAME_PATTERN), Trimmed]
    email: Annotated[
        str, Field(min_length=3, max_length=EMAIL_MAX, pattern=_EMAIL_PATTERN), Trimmed
    ]
    role: Role = "member"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _clean_email(value)


class LoginLinkOut(BaseModel):
    url: str = Field(description="Open it in a browser to sign in; it works once. Shown once.")
    expires_at: datetime
    user: UserOut


class LoginLinkRedeem(BaseModel):
    code: Annotated[
        str, Field(min_length=1, max_length=CODE_MAX_CHARS, pattern=r"^[A-Za-z0-9_-]+$"), Trimmed
    ]


class MeUpdate(BaseModel):
    """The name and email written into the commits of your prompts."""

    git_name: (
        Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=_NAME_PATTERN), Trimmed]
        | None
    ) = None
    git_email: (
        Annotated[str, Field(min_length=3, max_length=EMAIL_MAX, pattern=_EMAIL_PATTERN), Trimmed]
        | None
    ) = None

    @field_validator("git_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)

    @field_validator("git_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _clean_email(value)


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value or any(c in _BAD_NAME_CHARS for c in value):
        raise ValueError("a name is non-empty text without <, >, or control characters")
    return value


def _clean_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL_RE.match(value):
        raise ValueError("expected an email address such as ada@example.com")
    return value


class TokenOut(BaseModel):
    id: str
    name: str
    kind: TokenKind
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    current: bool = Field(False, description="The token this request was made with.")

    @classmethod
    def of(cls, token: ApiToken, current_id: str | None = None) -> TokenOut:
        return cls(
            **token.model_dump(include=set(cls.model_fields) - {"current"}),
            current=token.id == current_id,
        )


class TokenList(BaseModel):
    tokens: list[TokenOut]


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    expires_in_days: int | None = Field(
        None, ge=1, le=TOKEN_DAYS_MAX, description="Days until it expires; never when omitted."
    )


class TokenCreated(BaseModel):
    token: str = Field(description="The token itself. Shown this once; only a hash is kept.")
    info: TokenOut


class Provider(BaseModel):
    id: Literal["github"]
    name: str
    login_url: str = Field(description="Send the browser here (GET) to sign in.")
    device_url: str = Field(description="Device flow for command lines (POST).")


class Providers(BaseModel):
    providers: list[Provider] = Field(description="Enabled sign-in methods; empty when none.")
    token_login: bool = Field(True, description="An API token can always be pasted instead.")


class DeviceStart(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    interval_s: float
    expires_in_s: float


class DeviceTokenRequest(BaseModel):
    device_code: str = Field(min_length=1, max_length=200)
    name: str | None = Field(
        None, max_length=NAME_MAX, description="Name of the token minted (default the CLI's)."
    )


class SignedIn(BaseModel):
    token: str
    user: UserOut
