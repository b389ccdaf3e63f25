"""Every setting of the serving API, read once from the environment.

The API is configured like the rest of PokeWatch: by environment variables, never
by code, so the same image runs on a laptop, in CI and in production. Each value is
validated here, at start-up, so a typo fails ``pokewatch serve`` with a one-line
message instead of surfacing as odd behaviour under traffic.

====================================== ========= ==========================================
variable                               default   meaning
====================================== ========= ==========================================
``POKEWATCH_API_KEYS``                 (none)    comma-separated client keys, role ``reader``
``POKEWATCH_API_ADMIN_KEYS``           (none)    comma-separated keys with role ``admin``
``POKEWATCH_API_KEY_FILE``             (none)    file, one ``<key> [reader|admin]`` per line
``POKEWATCH_RATE_LIMIT_PER_MINUTE``    60        sustained requests per minute, per key
``POKEWATCH_RATE_LIMIT_BURST``         10        requests a key may make back to back
``REDIS_URL``                          (none)    share the limiter's buckets in Redis
``POKEWATCH_RATE_LIMIT_ON_REDIS_ERROR`` open     ``open`` or ``closed`` when Redis is down
``POKEWATCH_CORS_ORIGINS``             (none)    comma-separated origins allowed by CORS
``POKEWATCH_CORS_ALLOW_CREDENTIALS``   false     let browsers send cookies/auth cross-origin
``POKEWATCH_MAX_BODY_BYTES``           16384     largest request body accepted (413 above)
``POKEWATCH_MAX_HEADER_BYTES``         16384     largest request line + headers (431 above)
``POKEWATCH_READ_TIMEOUT_SECONDS``     10        a request must arrive whole within this (408)
``POKEWATCH_KEEP_ALIVE_SECONDS``       5         idle keep-alive connections are closed after
``POKEWATCH_TRUSTED_PROXIES``          (none)    IPs/CIDRs whose ``X-Forwarded-For`` is believed
``POKEWATCH_RELOAD_CHECK_SECONDS``     10        how often a worker looks for a newer run (0: never)
``POKEWATCH_RUNS_DIR``                 runs/     run folders; the API serves ``runs/latest``
====================================== ========= ==========================================

Roles: a ``reader`` key may call every data route; only an ``admin`` key may ``POST
/reload``. Keys listed without a role (every key from before roles existed) are
readers, so after an upgrade the pipeline's reload key must be made an admin.

Why fail *open* by default when Redis is down: the limiter protects capacity, not
secrets. Authentication still applies with Redis down, and in ``open`` mode each
worker falls back to its own in-memory buckets, so a key is still limited (to at
most ``workers`` times its limit) instead of being unmetered. Failing closed would
turn a Redis restart into a full outage of a read-only API. Choose ``closed`` when
the limit is a contract (for example a paid quota) that must never be exceeded.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pokewatch import config
from pokewatch.errors import PokeWatchError

logger = logging.getLogger(__name__)

#: Shortest key accepted: ``pokewatch keys new`` makes 47-character keys; anything
#: this short is a placeholder or a password, not a key.
MIN_KEY_LENGTH = 16
_KEY_RE = re.compile(r"^[\x21-\x7e]+$")   # printable ASCII, no spaces
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_TRUE = {"1", "true", "yes", "on"}
#: What a key may do: a reader calls the data routes, an admin may also POST /reload.
READER, ADMIN = "reader", "admin"
ROLES = (READER, ADMIN)
_FALSE = {"0", "false", "no", "off", ""}


class ApiConfigError(PokeWatchError, ValueError):
    """A serving setting (environment variable or key file) is missing or invalid."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ApiConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _check_key(key: str, where: str) -> str:
    if not _KEY_RE.match(key):
        raise ApiConfigError(f"an API key in {where} has spaces or non-ASCII characters; "
                             "make one with 'pokewatch keys new'")
    if len(key) < MIN_KEY_LENGTH:
        raise ApiConfigError(f"an API key in {where} is shorter than {MIN_KEY_LENGTH} characters; "
                             "make one with 'pokewatch keys new'")
    return key


def load_keys(env: Mapping[str, str]) -> dict[str, str]:
    """Client keys and their roles from ``POKEWATCH_API_KEYS`` (readers),
    ``POKEWATCH_API_ADMIN_KEYS`` (admins) and ``POKEWATCH_API_KEY_FILE``, in that order.

    A key file has one ``<key> [role]`` per line (role ``reader`` or ``admin``, default
    ``reader``) and ``#`` comment lines. A key given twice keeps its highest role.

    Returns:
        Each key, in order of first appearance, with its role.

    Raises:
        ApiConfigError: the key file is missing or unreadable, a key is malformed, or a
            role is unknown (the message names the line, never the key).
    """
    keys: dict[str, str] = {}

    def add(key: str, role: str) -> None:
        keys[key] = ADMIN if ADMIN in (role, keys.get(key)) else READER

    for name, role in (("POKEWATCH_API_KEYS", READER), ("POKEWATCH_API_ADMIN_KEYS", ADMIN)):
        for key in env.get(name, "").split(","):
            if key.strip():
                add(_check_key(key.strip(), name), role)
    key_file = env.get("POKEWATCH_API_KEY_FILE", "").strip()
    if key_file:
        path = Path(key_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ApiConfigError(f"POKEWATCH_API_KEY_FILE={key_file} cannot be read "
                                 f"({exc.__class__.__name__}); check the path and permissions") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"key file {key_file} line {number}"
            fields = line.split()
            if len(fields) > 2 or (len(fields) == 2 and fields[1] not in ROLES):
                raise ApiConfigError(f"{where} is not '<key> [reader|admin]'; roles are {', '.join(ROLES)} "
                                     "(the default is reader)")
            add(_check_key(fields[0], where), fields[1] if len(fields) == 2 else READER)
    return keys


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    """``POKEWATCH_TRUSTED_PROXIES``: addresses or networks (CIDR) of the reverse proxies."""
    entries = tuple(e.strip() for e in env.get("POKEWATCH_TRUSTED_PROXIES", "").split(",") if e.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ApiConfigError(
                f"POKEWATCH_TRUSTED_PROXIES entry {entry!r} is not an IP address or network (CIDR); list "
                "only your reverse proxies, e.g. 127.0.0.1 or 10.0.0.0/8 ('*' would let any client "
                "choose its own address)") from None
    return entries


@dataclass(frozen=True)
class ServerLimits:
    """How much and how slowly a client may send before the server hangs up.

    Attributes:
        max_header_bytes: request line plus headers; more gets 431 and the connection closed.
        read_timeout_seconds: a request (line, headers and body) must have arrived whole
            this long after its first byte, or after the connection opened; else 408 and
            the connection closed. This is what ends slowloris connections.
        keep_alive_seconds: an idle keep-alive connection is closed after this long.
    """

    max_header_bytes: int = 16_384
    read_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerLimits:
        """Read ``POKEWATCH_MAX_HEADER_BYTES``, ``POKEWATCH_READ_TIMEOUT_SECONDS`` and
        ``POKEWATCH_KEEP_ALIVE_SECONDS``.

        Raises:
            ApiConfigError: a value is not a whole number or is below its minimum.
        """
        env = os.environ if env is None else env
        return cls(max_header_bytes=_int(env, "POKEWATCH_MAX_HEADER_BYTES", 16_384, minimum=1024),
                   read_timeout_seconds=_int(env, "POKEWATCH_READ_TIMEOUT_SECONDS", 10, minimum=1),
                   keep_alive_seconds=_int(env, "POKEWATCH_KEEP_ALIVE_SECONDS", 5, minimum=1))


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in env.get("POKEWATCH_CORS_ORIGINS", "").split(",")
                    if o.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN_RE.match(origin):
            raise ApiConfigError(f"CORS origin {origin!r} is not scheme://host[:port] "
                                 "(no path, no trailing slash), e.g. https://dashboard.example.com")
    return origins


@dataclass(frozen=True)
class ApiSettings:
    """The API's configuration; build it with :meth:`from_env`."""

    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 10
    redis_url: str | None = None
    fail_open: bool = True
    cors_origins: tuple[str, ...] = ()
    cors_allow_credentials: bool = False
    max_body_bytes: int = 16_384
    reload_check_seconds: float = 10.0
    runs_dir: Path = field(default_factory=config.runs_dir)
    trusted_proxies: tuple[str, ...] = ()
    limits: ServerLimits = field(default_factory=ServerLimits)

    def __post_init__(self) -> None:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ApiConfigError(
                "POKEWATCH_CORS_ORIGINS='*' cannot be combined with POKEWATCH_CORS_ALLOW_CREDENTIALS="
                "true: any web page could then make credentialed calls; list the origins instead")
        if self.rate_limit_per_minute < 1 or self.rate_limit_burst < 1:
            raise ApiConfigError("the rate limit and its burst must both be at least 1")

    @property
    def refill_per_second(self) -> float:
        return self.rate_limit_per_minute / 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        """Read and validate every setting (see the module docstring for the variables).

        Raises:
            ApiConfigError: a variable is malformed, a key file is unreadable or has an
                unknown role, a trusted proxy is not an address, or CORS combines a wildcard
                origin with credentials.
        """
        env = os.environ if env is None else env
        policy = env.get("POKEWATCH_RATE_LIMIT_ON_REDIS_ERROR", "open").strip().lower() or "open"
        if policy not in ("open", "closed"):
            raise ApiConfigError(f"POKEWATCH_RATE_LIMIT_ON_REDIS_ERROR={policy!r}; use open or closed")
        runs = env.get("POKEWATCH_RUNS_DIR", "").strip()
        keys = load_keys(env)
        if env.get("FORWARDED_ALLOW_IPS", "").strip() and "POKEWATCH_TRUSTED_PROXIES" not in env:
            logger.warning("FORWARDED_ALLOW_IPS is no longer read: X-Forwarded-For is believed only from "
                           "POKEWATCH_TRUSTED_PROXIES (now: from no one); set that to your proxy's address")
        return cls(
            api_keys=tuple(k for k, role in keys.items() if role == READER),
            admin_keys=tuple(k for k, role in keys.items() if role == ADMIN),
            rate_limit_per_minute=_int(env, "POKEWATCH_RATE_LIMIT_PER_MINUTE", 60, minimum=1),
            rate_limit_burst=_int(env, "POKEWATCH_RATE_LIMIT_BURST", 10, minimum=1),
            redis_url=env.get("REDIS_URL", "").strip() or None,
            fail_open=policy == "open",
            cors_origins=_origins(env),
            cors_allow_credentials=_bool(env, "POKEWATCH_CORS_ALLOW_CREDENTIALS", False),
            max_body_bytes=_int(env, "POKEWATCH_MAX_BODY_BYTES", 16_384, minimum=64),
            reload_check_seconds=_int(env, "POKEWATCH_RELOAD_CHECK_SECONDS", 10, minimum=0),
            runs_dir=Path(runs).expanduser().resolve() if runs else config.runs_dir(),
            trusted_proxies=_trusted_proxies(env),
            limits=ServerLimits.from_env(env),
        )
