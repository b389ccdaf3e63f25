"""Redaction of secrets, before a URL, a header, a message or a stored body is logged or shown.

Why this exists: a key in a URL (``/cards?api_key=...``), a header or an error message
reaches every log line, proxy and run folder that sees it. One module decides what
counts as a secret and how it is masked, so that the API's access log, the HTTP client
of the price sources (its logs, errors and raw archive) and the run alerts redact the
same way. Three kinds of input, three entry points:

* **one URL, exactly** (:func:`redact_url`, :func:`redact_query`, :func:`redact_path`;
  the API's access lines): secret values become :data:`REDACTED` and every other
  character is left as it was (no re-encoding), so a redacted URL still reads like the
  one that was sent. A value counts as secret when its parameter has a secret name
  (:data:`SECRET_PARAMETERS`), or when the caller's ``is_secret`` says so (for the API:
  the value is one of its keys, or looks like one);
* **free text** (:func:`redact_text`, :func:`redact_headers`, :func:`redact_bytes`;
  messages, log records and what the HTTP client stores): credentials registered with
  :func:`register_secret` are masked wherever they appear, and so are values of secret
  parameters, bearer tokens and a URL's user-info, with :data:`MASK`. Third-party
  loggers that print URLs (urllib3) get the same through :func:`install_log_filter`,
  which the HTTP client calls when it is first used: importing this module changes
  nothing;
* **a URL that is itself the secret** (a webhook: its path is its password):
  :func:`origin_only` shows only scheme and host, :func:`redact_secret_url` removes
  the URL and its parts from a message.

These functions never log and never raise on odd input.
"""
from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping

logger = logging.getLogger(__name__)

#: Query parameter names whose values are secrets, whatever the value (compared lower-cased).
SECRET_PARAMETERS = frozenset({
    "api_key", "apikey", "api-key", "x-api-key", "key", "token", "access_token", "access-token", "auth",
    "password", "secret", "signature", "sig",
})
#: What a secret in a redacted URL is replaced with: a plain word, so the query string stays a
#: valid one and the access line says what happened.
REDACTED = "REDACTED"
#: What a secret in free text, a header or a stored body is replaced with (logs, errors, raw archives).
MASK = "***"
#: Headers whose whole value is a credential.
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie",
                               "set-cookie"})
#: Third-party loggers that print request URLs (urllib3 logs every request line at DEBUG).
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests")

SecretTest = Callable[[str], bool]


# -- one URL, exactly: the API's access lines ----------------------------------------------------------
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


# -- free text: messages, headers, log records, stored bodies ---------------------------------------
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:" + "|".join(re.escape(name) for name in sorted(SECRET_PARAMETERS, key=len, reverse=True))
    + r")=)[^&#;\s\"']*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_URL_USERINFO = re.compile(r"(?i)(https?://)[^/@\s:]+:[^/@\s]+@")

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_FILTERS_LOCK = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a credential so :func:`redact_text` and :func:`redact_bytes` mask it wherever it appears.

    Values shorter than 4 characters are ignored: masking them would garble ordinary text.
    """
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials masked by :data:`MASK`.

    Masked: registered secrets (:func:`register_secret`) and ``secrets`` wherever they
    appear, values of secret parameters (``?api_key=...``), bearer tokens, and a URL's
    user-info (``https://user:pw@`` becomes ``https://***@``).

    Args:
        text: any text: a message, a URL, a log line.
        secrets: more values to mask in this text only.
    """
    if not text:
        return text
    with _SECRETS_LOCK:
        known = set(_SECRETS)
    known.update(s for s in secrets if s)
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SECRET_PARAM.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    return _URL_USERINFO.sub(rf"\1{MASK}@", text)


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers safe to log or store: credential headers are masked whole, the others redacted as text."""
    return {k: MASK if k.lower() in SENSITIVE_HEADERS else redact_text(str(v)) for k, v in (headers or {}).items()}


def redact_bytes(body: bytes) -> bytes:
    """``body`` with every registered secret masked (a response echoing its key is stored without it)."""
    with _SECRETS_LOCK:
        known = set(_SECRETS)
    for secret in known:
        token = secret.encode()
        if token in body:
            body = body.replace(token, MASK.encode())
    return body


class RedactingFilter(logging.Filter):
    """Masks secrets (:func:`redact_text`) in the records of a logger that prints URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not ours to fix
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(names: Iterable[str] = URL_LOGGERS) -> None:
    """Put a :class:`RedactingFilter` on each named logger, once (calling again changes nothing).

    The HTTP client calls it when it is created, before it sends anything; call it from
    a logging set-up to cover those loggers earlier.
    """
    with _FILTERS_LOCK:
        for name in names:
            target = logging.getLogger(name)
            if not any(isinstance(f, RedactingFilter) for f in target.filters):
                target.addFilter(RedactingFilter())


# -- a URL that is itself the secret (webhooks) --------------------------------------------------------
def origin_only(url: str) -> str:
    """``scheme://host[:port]/***``: enough to tell such URLs apart, never the secret path or query."""
    try:
        parts = urllib.parse.urlsplit(str(url))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:   # an unclosed IPv6 bracket, a port out of range
        return f"?://?/{MASK}"
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}/{MASK}"


def redact_secret_url(text: str, url: str) -> str:
    """``text`` with ``url``, and its path and query wherever they appear alone, replaced by ``/***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return text.replace(url, f"/{MASK}") if url else text
    for secret in (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query):
        if secret and secret != "/":
            text = text.replace(secret, f"/{MASK}")
    return text
