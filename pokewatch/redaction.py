"""Redaction of secrets in URLs, before a URL (or part of one) is logged or shown.

Why this exists: a client that puts its API key in a URL (``/cards?api_key=...``)
hands the key to every log line, proxy and browser history that sees the URL. The
API refuses such requests, but it still has to log them, and the log must not keep
the key. One module decides what counts as a secret in a URL, so that the access
log, error messages and (later) the HTTP client and the alerts redact the same way.

These are pure functions on strings: they never log, never raise on odd input, and
leave every character that is not a secret exactly as it was (no re-encoding), so a
redacted URL still reads like the one that was sent. A value counts as secret when
its parameter has a secret name (:data:`SECRET_PARAMETERS`), or when the caller's
``is_secret`` says so (for the API: the value is one of its keys, or looks like one).
"""
from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: Query parameter names whose values are secrets, whatever the value (compared lower-cased).
SECRET_PARAMETERS = frozenset({
    "api_key", "apikey", "api-key", "x-api-key", "key", "token", "access_token", "auth", "password",
    "secret",
})
#: What a secret is replaced with: plain ASCII, so the redacted query string stays a valid one.
REDACTED = "REDACTED"

SecretTest = Callable[[str], bool]


def _never(_: str) -> bool:
    return False


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter of this (decoded) name carries a secret by its name alone."""
    return name.strip().lower() in SECRET_PARAMETERS


def _split(part: str) -> tuple[str, str | None]:
    name, sep, value = part.partition("=")
    decode = urllib.parse.unquote_plus
    return decode(name), (decode(value) if sep else None)


def secret_parameters(query: str, is_secret: SecretTest | None = None) -> list[str]:
    """The names of the parameters of ``query`` that carry a secret, in order.

    Args:
        query: a raw query string (without the ``?``), as sent.
        is_secret: says whether a decoded value is a secret (default: none is, by value).

    Returns:
        The decoded names; a bare part (``?pwk_abc``) whose text is a secret is named by
        :data:`REDACTED`, so the name never repeats the secret.
    """
    is_secret = is_secret or _never
    found = []
    for part in filter(None, query.split("&")):
        name, value = _split(part)
        if is_secret(name):
            found.append(REDACTED)
        elif is_secret_parameter(name) or (value is not None and is_secret(value)):
            found.append(name)
    return found


def redact_query(query: str, is_secret: SecretTest | None = None) -> str:
    """``query`` with every secret value replaced by :data:`REDACTED`.

    Args:
        query: a raw query string (without the ``?``), as sent.
        is_secret: says whether a decoded value is a secret (default: only secret names count).

    Returns:
        The query string, unchanged except for the secrets: ``api_key=pwk_x&page=2``
        becomes ``api_key=REDACTED&page=2``; a part that is itself a secret becomes
        ``REDACTED``.
    """
    is_secret = is_secret or _never
    parts = []
    for part in query.split("&"):
        name, value = _split(part)
        raw_name = part.partition("=")[0]
        if part and is_secret(name):
            parts.append(REDACTED)
        elif value is not None and (is_secret_parameter(name) or is_secret(value)):
            parts.append(f"{raw_name}={REDACTED}")
        else:
            parts.append(part)
    return "&".join(parts)


def redact_path(path: str, is_secret: SecretTest | None = None) -> str:
    """``path`` with every segment that is a secret replaced by :data:`REDACTED`.

    Args:
        path: a URL path (``/cards/pwk_...``), decoded or not.
        is_secret: says whether a (decoded) segment is a secret; without one the path
            is returned as it is.
    """
    if is_secret is None:
        return path
    return "/".join(REDACTED if segment and is_secret(urllib.parse.unquote(segment)) else segment
                    for segment in path.split("/"))


def redact_url(url: str, is_secret: SecretTest | None = None) -> str:
    """``url`` without its password (``user:pw@``), and with secrets in its path and query redacted.

    Args:
        url: an absolute or relative URL.
        is_secret: says whether a decoded value or path segment is a secret.

    Returns:
        The redacted URL; :data:`REDACTED` alone when ``url`` cannot even be parsed.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:   # e.g. an unclosed IPv6 bracket: show nothing rather than guess
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, redact_path(parts.path, is_secret),
                                    redact_query(parts.query, is_secret), parts.fragment))
