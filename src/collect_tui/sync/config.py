"""Where to sync from and with which credentials: the target (stored) and the secrets (never).

The target (source, base URL, tenant, limits) is plain configuration: the CLI remembers the
last one in the database so the app's "sync now" uses the same. Secrets come only from the
environment or from files readable by their owner alone (0600), and are never stored or logged:

* ``XERO_ACCESS_TOKEN``: a bearer token obtained elsewhere;
* ``XERO_CLIENT_ID`` with ``XERO_CLIENT_SECRET`` (or ``XERO_CLIENT_SECRET_FILE``): a custom
  connection (client credentials grant), or with ``XERO_REFRESH_TOKEN_FILE`` the refresh-token
  grant (the file is rotated in place, 0600);
* nothing, against a sandbox on the loopback interface: a dummy token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from collect_tui.logsafe import register_secret
from collect_tui.sync.protocol import ConnectorError, TokenProvider
from collect_tui.sync.ratelimit import RateLimiter
from collect_tui.sync.xero import (
    XERO_TOKEN_URL,
    ClientCredentialsTokenProvider,
    RefreshTokenProvider,
    StaticTokenProvider,
    XeroConnector,
    load_secret,
)

SOURCES = ("xero",)
SANDBOX_TOKEN = "sandbox-dummy-token"
SANDBOX_TENANT = "sandbox"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(ConnectorError):
    """The sync target or its credentials are missing or wrong (one line, no secrets)."""


@dataclass(frozen=True)
class SyncTarget:
    """An accounting system to sync with (no secrets)."""

    source: str
    base_url: str
    tenant: str = ""
    minute_limit: int | None = None
    day_limit: int | None = None

    @property
    def loopback(self) -> bool:
        """True for a server on this machine (the sandbox)."""
        return is_loopback(self.base_url)

    @property
    def tenant_id(self) -> str:
        """The tenant to send: the configured one, else the sandbox's on the loopback."""
        return self.tenant or (SANDBOX_TENANT if self.loopback else "")

    def to_json(self) -> str:
        """The target as JSON (for the settings table)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SyncTarget:
        """A target stored by :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            source=str(data["source"]),
            base_url=str(data["base_url"]),
            tenant=str(data.get("tenant") or ""),
            minute_limit=data.get("minute_limit"),
            day_limit=data.get("day_limit"),
        )


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in LOOPBACK or host.startswith("127.")


def check_target(target: SyncTarget) -> None:
    """Refuse an unknown source or a base URL that is not http(s)."""
    if target.source not in SOURCES:
        raise ConfigError(f"unknown source {target.source!r}; known: {', '.join(SOURCES)}")
    parts = urlsplit(target.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--base-url must be an http(s) URL such as "
            f"http://127.0.0.1:8765/api.xro/2.0, not {target.base_url!r}"
        )
    if parts.scheme == "http" and not target.loopback:
        raise ConfigError("refusing plain http to a remote server: use https")
    for name, value in (("minute", target.minute_limit), ("day", target.day_limit)):
        if value is not None and value < 1:
            raise ConfigError(f"the {name} limit must be at least 1")


def token_provider(target: SyncTarget, environ: Mapping[str, str] | None = None) -> TokenProvider:
    """Credentials for ``target`` from the environment or 0600 files (see the module doc)."""
    env = os.environ if environ is None else environ
    access = env.get("XERO_ACCESS_TOKEN", "").strip()
    register_secret(access)  # hidden from any message or log line from now on
    if access:
        return StaticTokenProvider(access)
    client_id = env.get("XERO_CLIENT_ID", "").strip()
    token_url = env.get("XERO_TOKEN_URL", "").strip() or (
        _loopback_token_url(target.base_url) if target.loopback else XERO_TOKEN_URL
    )
    if client_id:
        secret = load_secret(
            "XERO_CLIENT_SECRET", env.get("XERO_CLIENT_SECRET_FILE") or None, environ=env
        )
        register_secret(secret.get_secret_value())
        refresh_file = env.get("XERO_REFRESH_TOKEN_FILE", "").strip()
        if refresh_file:
            return RefreshTokenProvider(token_url, client_id, secret, refresh_file)
        return ClientCredentialsTokenProvider(token_url, client_id, secret)
    if target.loopback:
        return StaticTokenProvider(SANDBOX_TOKEN)
    raise ConfigError(
        "no Xero credentials: set XERO_CLIENT_ID and XERO_CLIENT_SECRET (or "
        "XERO_CLIENT_SECRET_FILE, a file readable only by you), add XERO_REFRESH_TOKEN_FILE "
        "for the refresh-token grant, or set XERO_ACCESS_TOKEN"
    )


def _loopback_token_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/connect/token"


def make_connector(
    target: SyncTarget,
    *,
    environ: Mapping[str, str] | None = None,
    page_size: int = 1000,
    timeout: float = 60.0,
) -> XeroConnector:
    """A connector for ``target``.

    Client-side limits: the target's, else Xero's published 60 a minute and 5,000 a day for a
    remote server; a sandbox on the loopback is not limited unless asked (its own limits
    answer with 429 like Xero's).
    """
    check_target(target)
    limiter: RateLimiter | None
    if target.minute_limit is not None or target.day_limit is not None or not target.loopback:
        limiter = RateLimiter(
            per_minute=target.minute_limit or 60, per_day=target.day_limit or 5000
        )
    else:
        limiter = None
    return XeroConnector(
        target.base_url,
        target.tenant_id or None,
        token_provider(target, environ),
        rate_limiter=limiter,
        page_size=page_size,
        timeout=timeout,
    )


__all__ = [
    "SANDBOX_TENANT",
    "SANDBOX_TOKEN",
    "SOURCES",
    "ConfigError",
    "SyncTarget",
    "check_target",
    "is_loopback",
    "make_connector",
    "token_provider",
]
