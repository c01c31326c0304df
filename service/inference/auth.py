"""API keys: the one check every transport uses (REST's ``Authorization`` header, gRPC's
``authorization`` metadata), so that a key means the same on every route.

Keys are kept only as SHA-256 digests and compared with ``hmac.compare_digest`` against every
known digest, so the time taken says nothing about how much of a key was right, nor which key
matched; a key is never part of a message or a log line.
"""

import hashlib
import hmac
from collections.abc import Iterable
from types import MappingProxyType

from service.inference.errors import ServiceError

REALM = "mnist-mlp"
HOW_TO_SEND = "send the header 'Authorization: Bearer <key>'"


class Unauthorized(ServiceError, status_code=401, reason="unauthorized"):
    """No API key, or not one of the service's (RFC 6750: a 401 with a Bearer challenge)."""

    def __init__(self, message: str, reason: str, invalid_token: bool = False) -> None:
        super().__init__(message, reason)
        challenge = f'Bearer realm="{REALM}"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = MappingProxyType({"WWW-Authenticate": challenge})


class ApiKeys:
    """The keys that may use the guarded operations; ``check`` refuses any other caller."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[str]) -> None:
        digests = []
        for key in keys:
            if not key or key != key.strip() or any(character.isspace() for character in key):
                raise ValueError("an API key must be non-empty and contain no whitespace")
            digests.append(_digest(key))
        if not digests:
            raise ValueError("ApiKeys needs at least one key; without keys, guard nothing")
        self._digests = tuple(digests)

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._digests)} keys)"

    def check(self, authorization: str | None) -> None:
        """Pass if ``authorization`` is ``Bearer <a known key>``, else raise ``Unauthorized``."""
        if not authorization:
            raise Unauthorized(f"this operation needs an API key: {HOW_TO_SEND}", "missing_api_key")
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                f"the Authorization header is not a Bearer key: {HOW_TO_SEND}", "malformed_api_key"
            )
        presented = _digest(token)
        known = False
        for digest in self._digests:  # every digest, whichever matches
            known |= hmac.compare_digest(presented, digest)
        if not known:
            raise Unauthorized(
                "the API key is not one of this service's", "invalid_api_key", invalid_token=True
            )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
