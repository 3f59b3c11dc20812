"""Logs without secrets or debtors' personal data.

Two levels of cleaning:

* :func:`redact_secrets` hides credentials: passwords in URLs (``postgresql://u:***@h/db``),
  ``password=``/``client_secret=``/``*token=``/``api_key=`` values (also as JSON), and
  ``Authorization: Bearer``/``Basic`` credentials, plus any value registered with
  :func:`register_secret` (the database password, the Xero and SMTP/SMS secrets read from
  the environment). Error messages shown to people go through it.
* :func:`mask` also hides personal data: e-mail addresses and phone numbers. Every log
  record goes through it once :func:`configure_logging` ran (``cli.main`` calls it).

Only the standard library is used: any layer may import this module.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

HIDDEN = "***"
EMAIL_MASK = "<email>"
PHONE_MASK = "<phone>"
LOG_FILE_ENV = "COLLECT_TUI_LOG_FILE"
LOG_LEVEL_ENV = "COLLECT_TUI_LOG_LEVEL"
# Environment variables whose values are secrets wherever they show up.
SECRET_ENV_VARS = (
    "XERO_ACCESS_TOKEN",
    "XERO_CLIENT_SECRET",
    "COLLECT_TUI_SMTP_PASSWORD",
    "COLLECT_TUI_SMS_TOKEN",
    "PGPASSWORD",
)
URL_ENV_VARS = ("COLLECT_TUI_DB", "DATABASE_URL")
_MIN_SECRET = 4  # shorter values would mask ordinary words

_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s]+)@"
)
_SECRET_KEYS = (
    r"password|passwd|pwd|secret|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|token|"
    r"authorization|proxy-authorization|private[_-]?key|sslpassword"
)
_KEY_VALUE = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9])(?:{_SECRET_KEYS})(?![A-Za-z0-9]))"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?:(?:Bearer|Basic|Token|Digest)\s+)?[^\s\"'&,;)}\]]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(
    r"(?P<scheme>\b(?:Bearer|Basic|Digest))\s+(?P<value>[A-Za-z0-9\-._~+/=]{4,})",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ().\-]{5,}\d(?![\w:/-]|\.\d)")
_NOT_A_PHONE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d+\.\d+$")  # dates, decimal numbers

_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Hide ``value`` wherever it appears in a message or log line from now on."""
    if value and len(value.strip()) >= _MIN_SECRET:
        with _known_lock:
            _known.add(value.strip())


def register_url_password(url: str | None) -> None:
    """Register the password of a URL (``scheme://user:password@host/...``), if any."""
    if not url:
        return
    match = _URL_CREDENTIALS.search(url)
    if match:
        from urllib.parse import unquote

        register_secret(match.group("secret"))
        register_secret(unquote(match.group("secret")))


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the secrets the environment holds (see :data:`SECRET_ENV_VARS`)."""
    env = os.environ if environ is None else environ
    for name in SECRET_ENV_VARS:
        register_secret(env.get(name))
    for name in URL_ENV_VARS:
        register_url_password(env.get(name))


def _forget_secrets() -> None:
    """Forget the registered secrets (for tests)."""
    with _known_lock:
        _known.clear()


def _hide_value(match: re.Match[str]) -> str:
    return f"{match.group('key')}{match.group('sep')}{HIDDEN}"


def _hide_credentials(match: re.Match[str]) -> str:
    value = match.group("value")
    # A credential has digits, symbols or mixed case; "Basic authentication" is prose.
    looks_random = (
        any(not ch.isalpha() for ch in value)
        or (value.lower() != value and value.upper() != value)
        or len(value) >= 24
    )
    return f"{match.group('scheme')} {HIDDEN}" if looks_random else match.group(0)


def redact_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with passwords, tokens and keys replaced by ``***`` (personal data kept)."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{HIDDEN}@", text)
    text = _KEY_VALUE.sub(_hide_value, text)
    text = _AUTH_SCHEME.sub(_hide_credentials, text)
    with _known_lock:
        known = set(_known)
    known.update(s.strip() for s in secrets if s and len(s.strip()) >= _MIN_SECRET)
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = sum(ch.isdigit() for ch in found)
    if not 7 <= digits <= 15 or _NOT_A_PHONE.match(found):
        return found
    separated = found.startswith(("+", "(")) or any(ch in found for ch in " ().-")
    if not separated and digits < 10:  # a bare 7-9 digit number is more likely an id
        return found
    return PHONE_MASK


def mask(text: str) -> str:
    """``text`` without secrets, e-mail addresses or phone numbers (for logs)."""
    if not text:
        return text
    text = redact_secrets(text)
    text = _EMAIL.sub(EMAIL_MASK, text)
    return _PHONE.sub(_phone, text)


def _mask_arg(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, int | float) or value is None:
        return value
    return mask(str(value))


class MaskingFilter(logging.Filter):
    """Rewrites each record's message and arguments through :func:`mask`.

    The record's ``msg`` becomes the masked, fully formatted message and ``args`` is
    emptied, so no handler or formatter can see the clear text afterwards.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; never drops it."""
        mask_record(record)
        return True


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the message, arguments and any exception text of ``record`` in place."""
    if getattr(record, "_collect_tui_masked", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what there is, masked
        message = f"{record.msg} {record.args!r}"
    record.msg = mask(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    record._collect_tui_masked = True
    return record


class MaskingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, extras) is masked."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` and mask the result."""
        mask_record(record)
        return mask(super().format(record))

    def formatException(  # noqa: N802 - the logging API's name
        self, ei: Any
    ) -> str:
        """A traceback, masked."""
        return mask(super().formatException(ei))


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FILTER = MaskingFilter()
_installed = False
_previous_factory = logging.getLogRecordFactory()


def _masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    return mask_record(_previous_factory(*args, **kwargs))


def _masked_excepthook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(redact_secrets(text))


def configure_logging(
    *,
    level: int | str | None = None,
    log_file: str | os.PathLike[str] | None = None,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler | None:
    """Send every log record through :func:`mask`; returns the handler it added, if any.

    Installs a record factory (records are masked as they are made, whoever logs them
    and whichever handler they reach, Python's last-resort stderr output included), the
    masking filter on the root logger's handlers, and an excepthook that hides secrets in
    tracebacks; registers the secrets of the environment. With ``log_file`` (or
    ``$COLLECT_TUI_LOG_FILE``) or ``stream`` it adds a handler with a masking formatter
    (level ``$COLLECT_TUI_LOG_LEVEL``, default INFO); otherwise warnings reach stderr as
    before. Calling it again replaces that handler.
    """
    global _installed
    env = os.environ if environ is None else environ
    register_environment_secrets(env)
    if not _installed:
        logging.setLogRecordFactory(_masking_factory)
        sys.excepthook = _masked_excepthook
        _installed = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_collect_tui", False)]:
        root.removeHandler(old)
        old.close()
    path = log_file or env.get(LOG_FILE_ENV) or None
    handler: logging.Handler | None = None
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    elif stream is not None:
        handler = logging.StreamHandler(stream)
    if handler is not None:
        handler._collect_tui = True  # type: ignore[attr-defined]
        handler.setFormatter(MaskingFormatter(_FORMAT))
        root.addHandler(handler)
    for each in root.handlers:
        if _FILTER not in each.filters:
            each.addFilter(_FILTER)
    wanted = level or env.get(LOG_LEVEL_ENV) or ("INFO" if handler is not None else None)
    if wanted:
        root.setLevel(wanted.upper() if isinstance(wanted, str) else wanted)
    return handler


__all__ = [
    "HIDDEN",
    "MaskingFilter",
    "MaskingFormatter",
    "configure_logging",
    "mask",
    "mask_record",
    "redact_secrets",
    "register_environment_secrets",
    "register_secret",
    "register_url_password",
]
