"""The compliance and cadence configuration: one TOML file, validated whole or refused.

Where it is read from, first found: ``--rules FILE``, ``$COLLECT_TUI_RULES``, then
``<user config dir>/collect-tui/rules.toml`` (platformdirs). No file: the built-in
defaults (:data:`~collect_tui.domain.compliance.BUILTIN_RULE_SETS`, the default cadence,
an SMS file sink, no SMTP server).

The file is parsed and validated in full before anything uses it; any problem raises one
:class:`ConfigError` naming the file, the line and the key, and nothing of the file is
applied. :func:`install` makes a loaded configuration the one the process uses
(:func:`active`); the queue's "contactable now", the outbound check, the cadence and the
delivery all read it from there. See README.md ("Compliance rules and cadence") for a
full example.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, time
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from collect_tui.domain.cadence import DEFAULT_CADENCE, DEFAULT_SEGMENT, Cadence, CadenceStep
from collect_tui.domain.compliance import (
    BUILTIN_RULE_SETS,
    WEEKDAY_NAMES,
    CallFrequencyRule,
    ContactWindow,
    RuleSet,
    effective_rules,
)

ENV_RULES = "COLLECT_TUI_RULES"
# Years of holidays computed around the current one (a long-running process stays right).
HOLIDAY_YEARS_BEFORE = 1
HOLIDAY_YEARS_AFTER = 2


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names file, line and key."""

    def __init__(self, path: Path | str, message: str, line: int | None = None, key: str = ""):
        self.path = Path(path)
        self.line = line
        self.key = key
        where = f"{path}" + (f", line {line}" if line else "") + (f", key '{key}'" if key else "")
        super().__init__(f"{where}: {message}")


def default_rules_path() -> Path:
    """``<user config dir>/collect-tui/rules.toml``."""
    return Path(platformdirs.user_config_dir("collect-tui", appauthor=False)) / "rules.toml"


# --- the file's schema --------------------------------------------------------------------


def _weekday(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    if isinstance(value, str):
        for index, name in enumerate(WEEKDAY_NAMES):
            if value.strip().lower() in (name.lower(), name[:3].lower()):
                return index
    raise ValueError(f"not a weekday: {value!r} (Monday..Sunday, or 0=Monday..6=Sunday)")


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(p) for p in value.strip().split(":"))
        if hours == 24 and minutes == 0:
            return time(23, 59, 59)
        if 0 <= hours < 24 and 0 <= minutes < 60:
            return time(hours, minutes)
    raise ValueError(f"not a time of day HH:MM: {value!r}")


class WindowConfig(BaseModel):
    """``{ start = "08:00", end = "21:00" }`` in the consumer's local time."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> time:
        return _clock(value)

    def to_window(self) -> ContactWindow:
        """The domain window (checks start < end)."""
        return ContactWindow(start=self.start, end=self.end)


class HolidayCalendar(BaseModel):
    """Public holidays of the ``holidays`` package: ``{ country = "BR", subdivision = "SP" }``."""

    model_config = ConfigDict(extra="forbid")

    country: str
    subdivision: str | None = None

    def dates(self, years: Sequence[int]) -> frozenset[date]:
        """The holiday dates in ``years``."""
        import holidays as holidays_package

        try:
            calendar = holidays_package.country_holidays(
                self.country, subdiv=self.subdivision, years=list(years)
            )
        except (NotImplementedError, KeyError) as exc:
            raise ValueError(f"the holidays package has no calendar for {self}: {exc}") from None
        return frozenset(calendar.keys())

    def __str__(self) -> str:
        return self.country + (f"-{self.subdivision}" if self.subdivision else "")


class FrequencyConfig(BaseModel):
    """Overrides of :class:`CallFrequencyRule` fields."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = None
    period_days: int | None = None
    conversation_quiet_days: int | None = None
    consent_days: int | None = None
    counts_text_messages: bool | None = None
    name: str | None = None


class JurisdictionConfig(BaseModel):
    """One ``[rules.<KEY>]`` table; unset fields keep the built-in rules of that key."""

    model_config = ConfigDict(extra="forbid")

    window: WindowConfig | None = None
    no_contact_days: list[int] | None = None
    day_windows: dict[str, WindowConfig] | None = None
    holiday_calendar: HolidayCalendar | None = None
    holidays: list[date] = Field(default_factory=list)
    call_frequency: FrequencyConfig | None = None
    sources: list[str] | None = None

    @field_validator("no_contact_days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_weekday(v) for v in value]
        return value

    @field_validator("day_windows", mode="before")
    @classmethod
    def _day_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(_weekday(k if not str(k).isdigit() else int(k))): v for k, v in value.items()
            }
        return value


class StepConfig(BaseModel):
    """One cadence step as written in the file (see :class:`CadenceStep`)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    offset_days: int
    action: Literal["email", "sms", "call", "letter", "escalate"]
    template: str | None = None
    suspend_on: list[Literal["promise", "dispute"]] | None = None
    description: str = ""


class SegmentConfig(BaseModel):
    """``[cadence.<segment>]`` with its ``steps``."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepConfig]


class CreditorConfig(BaseModel):
    """Who collects: named in every message (consumer codes require it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "Your Company Ltd"
    address: str = "(creditor address not configured)"
    tax_id: str = "(tax id not configured)"
    phone: str = ""
    email: str = ""
    website: str = ""


class SmtpConfig(BaseModel):
    """The SMTP server for email steps. The password comes from ``password_env``."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str = "COLLECT_TUI_SMTP_PASSWORD"
    sender: str = Field(alias="from")
    reply_to: str | None = None
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @property
    def password(self) -> str | None:
        """The password from the environment (never stored in the file)."""
        return os.environ.get(self.password_env) or None


class SmsConfig(BaseModel):
    """SMS provider: ``file`` (append JSON lines to ``path``) or ``http`` (POST JSON)."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["file", "http"] = "file"
    path: Path | None = None
    url: str | None = None
    token_env: str = "COLLECT_TUI_SMS_TOKEN"
    sender: str = ""
    timeout_seconds: float = Field(15.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("the SMS provider url must start with https:// or http://")
        return value

    @model_validator(mode="after")
    def _http_needs_url(self) -> SmsConfig:
        if self.provider == "http" and not self.url:
            raise ValueError("provider = 'http' needs a url")
        return self

    def sink_path(self) -> Path:
        """Where the file sink writes (default: the user data dir)."""
        if self.path is not None:
            return self.path.expanduser()
        data = Path(platformdirs.user_data_dir("collect-tui", appauthor=False))
        return data / "sms-outbox.jsonl"


class DeliveryConfig(BaseModel):
    """Message delivery settings."""

    model_config = ConfigDict(extra="forbid")

    templates_dir: Path | None = None
    enabled: bool = True

    @field_validator("templates_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_dir():
            raise ValueError(f"no such folder: {value}")
        return value


class RulesFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    replace_builtin_rules: bool = False
    rules: dict[str, JurisdictionConfig] = Field(default_factory=dict)
    cadence: dict[str, SegmentConfig] = Field(default_factory=dict)
    creditor: CreditorConfig = Field(default_factory=CreditorConfig)
    smtp: SmtpConfig | None = None
    sms: SmsConfig = Field(default_factory=SmsConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("rules")
    @classmethod
    def _keys(cls, value: dict[str, JurisdictionConfig]) -> dict[str, JurisdictionConfig]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?|DEFAULT", key):
                raise ValueError(
                    f"a jurisdiction is a country code ('US', 'BR'), a country and region "
                    f"('US-MA') or DEFAULT, not {key!r}"
                )
        return value


# --- the loaded configuration --------------------------------------------------------------


class ComplianceConfig:
    """Everything the file configures, resolved: rule sets, cadences, creditor, channels."""

    def __init__(
        self,
        rule_sets: Mapping[str, RuleSet],
        cadences: Mapping[str, Cadence],
        creditor: CreditorConfig,
        smtp: SmtpConfig | None,
        sms: SmsConfig,
        delivery: DeliveryConfig,
        source: Path | None = None,
        holiday_calendars: Mapping[str, HolidayCalendar] | None = None,
    ) -> None:
        self.rule_sets = dict(rule_sets)
        self.cadences = dict(cadences)
        self.creditor = creditor
        self.smtp = smtp
        self.sms = sms
        self.delivery = delivery
        self.source = source
        self.holiday_calendars = dict(holiday_calendars or {})
        self._effective: dict[tuple[str, str | None], RuleSet] = {}

    def rules_for(self, country: str, region: str | None = None) -> RuleSet:
        """The effective rules for a consumer (country combined with region, stricter wins)."""
        key = (country, region)
        found = self._effective.get(key)
        if found is None:
            found = self._effective[key] = effective_rules(country, region, self.rule_sets)
        return found

    def describe(self) -> str:
        """One line: where the rules came from."""
        return f"rules from {self.source}" if self.source else "built-in rules"


def default_config() -> ComplianceConfig:
    """The built-in defaults (no file)."""
    return ComplianceConfig(
        rule_sets=BUILTIN_RULE_SETS,
        cadences={DEFAULT_SEGMENT: DEFAULT_CADENCE},
        creditor=CreditorConfig(),
        smtp=None,
        sms=SmsConfig(),
        delivery=DeliveryConfig(),
    )


def _holiday_years(today: date | None) -> list[int]:
    year = (today or date.today()).year
    return list(range(year - HOLIDAY_YEARS_BEFORE, year + HOLIDAY_YEARS_AFTER + 1))


def _at(loc: tuple[Any, ...], build: Any) -> Any:
    """``build()``, a domain validation failure reported at the key path ``loc``."""
    try:
        return build()
    except (ValidationError, ValueError) as exc:
        raise _Located(loc, _first_message(exc)) from None


def _rule_set(
    key: str, entry: JurisdictionConfig, base: RuleSet | None, years: list[int]
) -> RuleSet:
    here = ("rules", key)
    data: dict[str, Any] = {} if base is None else dict(base)
    data["name"] = key.upper()
    if entry.window is not None:
        data["window"] = _at((*here, "window"), entry.window.to_window)
    if entry.no_contact_days is not None:
        data["weekend_days"] = frozenset(entry.no_contact_days)
    if entry.day_windows is not None:
        data["day_windows"] = {
            int(k): _at((*here, "day_windows"), w.to_window) for k, w in entry.day_windows.items()
        }
    holidays = set(entry.holidays)
    calendar = entry.holiday_calendar
    if calendar is not None:
        holidays |= _at((*here, "holiday_calendar"), lambda: calendar.dates(years))
    if holidays or calendar is not None:
        data["holidays"] = frozenset(holidays)
    if entry.call_frequency is not None:
        current = dict(base.call_frequency) if base is not None else {}
        current.update(entry.call_frequency.model_dump(exclude_none=True))
        data["call_frequency"] = _at(
            (*here, "call_frequency"), lambda: CallFrequencyRule(**current)
        )
    if entry.sources is not None:
        data["sources"] = tuple(entry.sources)
    return _at(here, lambda: RuleSet(**data))


def build_config(
    raw: Mapping[str, Any], *, source: Path | None = None, today: date | None = None
) -> ComplianceConfig:
    """Validate the parsed TOML and resolve it (raises ValidationError / ValueError)."""
    parsed = RulesFile.model_validate(raw)
    years = _holiday_years(today)
    rule_sets: dict[str, RuleSet] = {} if parsed.replace_builtin_rules else dict(BUILTIN_RULE_SETS)
    calendars: dict[str, HolidayCalendar] = {}
    for key, entry in parsed.rules.items():
        upper = key.upper()
        base = None if parsed.replace_builtin_rules else BUILTIN_RULE_SETS.get(upper)
        rule_sets[upper] = _rule_set(key, entry, base, years)
        if entry.holiday_calendar is not None:
            calendars[upper] = entry.holiday_calendar
    if "DEFAULT" not in rule_sets:
        rule_sets["DEFAULT"] = BUILTIN_RULE_SETS["DEFAULT"]
    cadences: dict[str, Cadence] = {DEFAULT_SEGMENT: DEFAULT_CADENCE}
    for segment, seg in parsed.cadence.items():
        steps = []
        for index, step in enumerate(seg.steps):
            data = step.model_dump(exclude_none=True)
            if step.suspend_on is not None:
                data["suspend_on"] = frozenset(step.suspend_on)
            try:
                steps.append(CadenceStep(**data))
            except ValidationError as exc:
                sub = exc.errors()[0]["loc"]
                raise _Located(
                    ("cadence", segment, "steps", index, *sub), _first_message(exc)
                ) from None
        try:
            cadences[segment] = Cadence(steps=tuple(steps))
        except ValidationError as exc:
            raise _Located(("cadence", segment, "steps"), _first_message(exc)) from None
    return ComplianceConfig(
        rule_sets=rule_sets,
        cadences=cadences,
        creditor=parsed.creditor,
        smtp=parsed.smtp,
        sms=parsed.sms,
        delivery=parsed.delivery,
        source=source,
        holiday_calendars=calendars,
    )


class _Located(ValueError):
    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


def _first_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return str(error["msg"]).removeprefix("Value error, ")
    return str(exc)


def resolve_rules_path(path: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The file to read and whether it was asked for explicitly (then it must exist)."""
    if path:
        return Path(path).expanduser(), True
    env = os.environ.get(ENV_RULES, "").strip()
    if env:
        return Path(env).expanduser(), True
    return default_rules_path(), False


def load_config(
    path: str | os.PathLike[str] | None = None, *, today: date | None = None
) -> ComplianceConfig:
    """Read and validate the rules file (see the module docstring for where from).

    Returns the built-in defaults when no file was given and the default one does not
    exist. Raises :class:`ConfigError` (file, line, key) for anything wrong.
    """
    file, explicit = resolve_rules_path(path)
    if not file.exists():
        if explicit:
            raise ConfigError(file, "no such file")
        return default_config()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot read the file: {exc}") from None
    return parse_config(text, file, today=today)


def parse_config(text: str, file: Path | str, *, today: date | None = None) -> ComplianceConfig:
    """Validate TOML ``text`` (as read from ``file``, for messages)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(match.group(1)) if match else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(file, f"not valid TOML: {message}", line) from None
    try:
        return build_config(raw, source=Path(file), today=today)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(first["loc"])
        message = _message(first)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConfigError(file, message, locate(text, loc), _dotted(loc)) from None
    except _Located as exc:
        raise ConfigError(file, str(exc), locate(text, exc.loc), _dotted(exc.loc)) from None


def _message(error: Mapping[str, Any]) -> str:
    text = str(error["msg"]).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown key (check the spelling; see README.md for the keys)"
    if error.get("type") == "missing":
        return "required key is missing"
    value = error.get("input")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text += f" (got {value!r})"
    return text


def _dotted(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


# --- locating a key's line -------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEYVAL = re.compile(
    r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*="
)


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_\-]+)", text)
    return [a or b or c for a, b, c in parts]


def locate(text: str, loc: Sequence[Any]) -> int | None:
    """The line (1-based) that best matches the key path ``loc``: the longest prefix of it
    written as a table header, a key, or an element of an array of tables or an inline
    array of tables. Approximate for exotic layouts; None if nothing matches.
    """
    positions: dict[tuple[Any, ...], int] = {}
    array_counts: dict[tuple[Any, ...], int] = {}
    table: tuple[Any, ...] = ()
    open_array: tuple[tuple[Any, ...], int] | None = None  # path, bracket depth
    array_index = -1
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0] if '"' not in line and "'" not in line else line
        if open_array is not None:
            path, depth = open_array
            for char in stripped:
                if char == "{" and depth == 1:
                    array_index += 1
                    positions.setdefault((*path, array_index), number)
                if char in "[{":
                    depth += 1
                elif char in "]}":
                    depth -= 1
            open_array = (path, depth) if depth > 0 else None
            continue
        header = _HEADER.match(line)
        if header:
            keys = tuple(_split_key(header.group(2)))
            for length in range(1, len(keys)):
                positions.setdefault(keys[:length], number)
            if header.group(1) == "[[":
                index = array_counts.get(keys, -1) + 1
                array_counts[keys] = index
                positions.setdefault(keys, number)
                table = (*keys, index)
            else:
                table = keys
            positions.setdefault(table, number)
            continue
        keyval = _KEYVAL.match(line)
        if keyval:
            path = (*table, *_split_key(keyval.group(1)))
            positions.setdefault(path, number)
            rest = line[keyval.end() :]
            depth = 0
            index = -1
            for char in rest:
                if char == "{" and depth == 1:
                    index += 1
                    positions.setdefault((*path, index), number)
                if char in "[{":
                    depth += 1
                elif char in "]}":
                    depth -= 1
            if depth > 0 and rest.lstrip().startswith("["):
                open_array, array_index = (path, depth), index
    for length in range(len(loc), 0, -1):
        found = positions.get(tuple(loc[:length]))
        if found is not None:
            return found
    return None


# --- the process-wide configuration ----------------------------------------------------------

_lock = threading.Lock()
_active: ComplianceConfig | None = None


def install(config: ComplianceConfig) -> None:
    """Make ``config`` the configuration the whole process uses."""
    global _active
    with _lock:
        _active = config


def active() -> ComplianceConfig:
    """The installed configuration, or the built-in defaults."""
    global _active
    with _lock:
        if _active is None:
            _active = default_config()
        return _active


def reset() -> None:
    """Forget the installed configuration (tests)."""
    global _active
    with _lock:
        _active = None
