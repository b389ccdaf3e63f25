"""API keys: generating them, recognising them in constant time, naming them in logs.

A key is a bearer secret, so the server keeps only its SHA-256 digest and compares a
presented key's digest with *every* configured digest using ``hmac.compare_digest``.
Comparing fixed-length digests, without stopping at the first match, means neither
the response time nor the key's length tells an attacker how close a guess was.

Logs, metrics and Redis only ever see :func:`key_id`, a 12-hex-digit prefix of the
digest: enough to tell keys apart and to find a key's requests in the log (run
``pokewatch keys id`` on a key to get its id), useless for recovering the key.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

#: Keys start with this tag so secret scanners and humans recognise them.
KEY_PREFIX = "pwk_"
KEY_ID_LENGTH = 12


def new_key() -> str:
    """A fresh random key: ``pwk_`` plus 32 random bytes, URL-safe base64 (47 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def key_id(key: str) -> str:
    """The short, non-secret name of a key used in logs: a SHA-256 hex prefix."""
    return _digest(key).hex()[:KEY_ID_LENGTH]


class KeyRing:
    """The configured keys, held only as digests.

    Args:
        keys: the plain keys (from :func:`pokewatch.api.settings.load_keys`).
    """

    def __init__(self, keys: tuple[str, ...] | list[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    def __len__(self) -> int:
        return len(self._digests)

    def identify(self, presented: str | None) -> str | None:
        """The :func:`key_id` of ``presented`` if it is a configured key, else None.

        Every configured digest is compared, whatever matched, in constant time.
        """
        if not presented or not self._digests:
            return None
        digest = _digest(presented)
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        return digest.hex()[:KEY_ID_LENGTH] if matched else None
