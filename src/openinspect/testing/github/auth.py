"""Who is calling: ``Authorization: Bearer|token <t>`` for the API (an App JWT, an installation
token or a user token) and HTTP Basic for git, with GitHub's answers when it is refused."""

from __future__ import annotations

import base64
import binascii
import functools
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openinspect.testing.github.state import ANONYMOUS, ApiError, FakeState, Identity

JWT_MAX_LIFETIME_S = 600
JWT_LEEWAY_S = 60
BAD_CREDENTIALS = "Bad credentials"


@functools.lru_cache(maxsize=8)
def _public_key_of(private_pem: str) -> rsa.RSAPublicKey:
    # Loading an RSA private key checks it and takes ~0.1 s; every App request needs the key.
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


def _public_key(state: FakeState) -> rsa.RSAPublicKey:
    return _public_key_of(state.app.private_key_pem)


def _verify_jwt(state: FakeState, token: str) -> Identity:
    try:
        claims = jwt.decode(
            token,
            _public_key(state),
            algorithms=["RS256"],
            options={"require": ["exp", "iat", "iss"], "verify_iat": False},
            leeway=JWT_LEEWAY_S,
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires",
        ) from exc
    except jwt.PyJWTError as exc:
        raise ApiError(401, "A JSON web token could not be decoded") from exc
    if int(claims["exp"]) - int(claims["iat"]) > JWT_MAX_LIFETIME_S + JWT_LEEWAY_S:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
    if int(claims["iat"]) > time.time() + JWT_LEEWAY_S:
        raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time")
    if str(claims["iss"]) not in (str(state.app.id), state.app.client_id):
        raise ApiError(401, "Integration not found")
    return Identity("app", login=state.app.slug)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def api_identity(state: FakeState, authorization: str | None) -> Identity:
    """The caller of a REST request; raises ApiError(401) for bad or expired credentials."""
    if not authorization:
        return ANONYMOUS
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        return git_identity(state, authorization)
    if scheme.lower() not in ("bearer", "token") or not value:
        raise ApiError(401, BAD_CREDENTIALS)
    if looks_like_jwt(value):
        return _verify_jwt(state, value)
    identity = state.identify_token(value)
    if identity is None:
        raise ApiError(401, BAD_CREDENTIALS)
    return identity


def git_identity(state: FakeState, authorization: str | None) -> Identity:
    """The caller of a git request (HTTP Basic: ``x-access-token:<installation token>`` or
    ``<login>:<user token>``); raises ApiError(401) for credentials GitHub would refuse."""
    if not authorization:
        return ANONYMOUS
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return api_identity(state, authorization)
    if scheme.lower() != "basic":
        raise ApiError(401, BAD_CREDENTIALS)
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(401, BAD_CREDENTIALS) from exc
    # Any user name goes with a token as the password; a token alone as the user name works too.
    identity = state.identify_token(password or user)
    if identity is None:
        raise ApiError(401, BAD_CREDENTIALS)
    return identity


def describe(state: FakeState, authorization: str | None, *, git: bool = False) -> Identity | None:
    """For the request log: the identity, or None when the credentials were refused."""
    try:
        return (git_identity if git else api_identity)(state, authorization)
    except ApiError:
        return None
