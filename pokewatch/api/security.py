"""API keys: generating them, recognising them and their role in constant time, naming them in logs.

A key is a bearer secret, so the server keeps only its SHA-256 digest and compares a
presented key's digest with *every* configured digest using ``hmac.compare_digest``.
Comparing fixed-length digests, without stopping at the first match, means neither
the response time nor the key's length tells an attacker how close a guess was.

Logs, metrics and Redis only ever see :func:`key_id`, a 12-hex-digit prefix of the
digest: enough to tell keys apart and to find a key's requests in the log (run
``pokewatch keys id`` on a key to get its id), useless for recovering the key.

Each key has a role (:data:`~pokewatch.api.settings.ROLES`): ``reader`` for the data
routes, ``admin`` for ``POST /reload`` as well. :meth:`KeyRing.is_secret` tells the
redactor (:mod:`pokewatch.redaction`) which text must never reach a log.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from pokewatch.api.settings import ADMIN, MIN_KEY_LENGTH, READER

#: Keys start with this tag so secret scanners and humans recognise them.
KEY_PREFIX = "pwk_"
KEY_ID_LENGTH = 12
#: Text shaped like a key of ours (even one this server does not know): never logged.
_KEY_SHAPE = re.compile(r"^pwk_[A-Za-z0-9_-]{16,}$")


def new_key() -> str:
    """A fresh random key: ``pwk_`` plus 32 random bytes, URL-safe base64 (47 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def key_id(key: str) -> str:
    """The short, non-secret name of a key used in logs: a SHA-256 hex prefix."""
    return _digest(key).hex()[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class KeyMatch:
    """A presented key this server knows: its log id and its role."""

    key_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


class KeyRing:
    """The configured keys, held only as digests, each with its role.

    Args:
        keys: the plain reader keys (from :func:`pokewatch.api.settings.load_keys`).
        admin_keys: the plain admin keys; a key in both lists is an admin.
    """

    def __init__(self, keys: tuple[str, ...] | list[str], admin_keys: tuple[str, ...] | list[str] = ()) -> None:
        roles = {k: READER for k in keys} | {k: ADMIN for k in admin_keys}
        self._digests = [(_digest(k), role) for k, role in roles.items()]

    def __len__(self) -> int:
        return len(self._digests)

    def lookup(self, presented: str | None) -> KeyMatch | None:
        """The id and role of ``presented`` if it is a configured key, else None.

        Every configured digest is compared, whatever matched, in constant time.
        """
        if not presented or not self._digests:
            return None
        digest = _digest(presented)
        role = None
        for known, known_role in self._digests:
            if hmac.compare_digest(digest, known):
                role = known_role
        return KeyMatch(digest.hex()[:KEY_ID_LENGTH], role) if role is not None else None

    def identify(self, presented: str | None) -> str | None:
        """The :func:`key_id` of ``presented`` if it is a configured key, else None."""
        match = self.lookup(presented)
        return match.key_id if match else None

    def is_secret(self, text: str) -> bool:
        """Whether ``text`` must be redacted: a configured key, or anything shaped like one."""
        if len(text) < MIN_KEY_LENGTH:   # no configured key is this short
            return False
        return bool(_KEY_SHAPE.match(text)) or self.lookup(text) is not None
