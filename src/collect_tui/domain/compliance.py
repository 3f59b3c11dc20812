"""Compliance: may an outbound contact be made now, and if not, why not and when.

Pure functions of the facts passed in (stdlib + pydantic only, no I/O). The one entry
point for the queue and the account screen is :func:`outbound_decision`; the rules it
combines are public too (:func:`call_frequency_decision`, :func:`contact_window_decision`).
Inbound contacts are never checked: the agent may always log them (:func:`inbound_allowed`).

Interpretation decisions (US text: 12 CFR part 1006 and its Official Interpretations,
supplement I, as published in the eCFR):

* **Call frequency, 1006.14(b)(2)(i).** A call is presumed harassment when it is placed
  (A) more than seven times within seven consecutive days or (B) within seven consecutive
  days after a telephone conversation about the debt, "the date of the telephone
  conversation [being] the first day of the seven-consecutive-day period". The periods
  are counted in whole calendar *dates*, as every example of comment 14(b)(2)(i)-1 and
  14(b)(2)(ii)-1 does (conversation Friday Aug 14: no call "prior to Friday, August 21";
  calls Apr 1..7: the next is fine on Apr 8). Dates are the consumer's local dates (the
  ``tz`` argument, default UTC): Reg F does not name a time zone for 14(b), and
  1006.6(b)(1)(i) measures time at "the consumer's location", so the same calendar is
  used throughout. A proposed call is blocked if *any* window of ``period_days``
  consecutive dates that contains it would then hold more than ``max_attempts`` counted
  calls (windows reaching past ``at`` are checked too, so out-of-order histories never
  lead to a breach).
* **What counts** (1006.14(b)(3), comments 14(b)-1, 14(b)(2)(i)-3, 14(b)(3)(ii)-1):
  outbound calls that connect to the number (answered, rang, reached voicemail, or a
  ringless voicemail) count; unconnected calls (busy, not in service), calls placed with
  the person's prior consent, and calls to a number later found to be someone else's do
  not. Calls the consumer places do not count toward (A), but a conversation in them does
  start the (B) period (comment 14(b)(2)(i)-1.ii). Text messages and emails are not
  "telephone calls" (comment 14(b)-1) unless a rule says so (Massachusetts counts texts).
* **Prior consent, 1006.14(b)(3)(i), comment 14(b)(3)(i)-2.** A call placed within seven
  consecutive days of receiving consent (consent date = day 1) is excluded from both
  limits; the consent expires at the next telephone conversation.
* **Contact window, 1006.6(b)(1)(i).** Before 08:00 and after 21:00 local time at the
  consumer's location is inconvenient. The window is half-open, ``start <= t < end``, so
  21:00:00 itself is blocked (a conservative reading of "after 9:00 p.m."). It applies to
  every channel except a letter: comment 6(b)(1)(i)-1 says an email or text occurs when it
  is sent, and a visit is a communication. With several possible locations, the time must
  be convenient in all of them (comment 6(b)(1)(i)-2): see ``ContactSubject.other_time_zones``.
  Wall-clock times are compared, so DST days work on both sides of the change; an
  opening that falls in a DST gap opens at the end of the gap.
* **Validation period, 1006.34(b)(5) and 1006.38(d)(2).** The period ends 30 days after
  the consumer is assumed to receive the notice, i.e. five days after it is sent excluding
  Saturdays, Sundays and the legal public holidays of 5 U.S.C. 6103(a). A written dispute
  received on or before that date stops collection until it is marked ``verified``
  (``resolved`` alone does not lift it). An unverified dispute with no notice date on
  file blocks too, as the period cannot be computed.
* Other blocks: deceased (contact the estate, 1006.6(a)(4)), bankruptcy (automatic stay,
  11 U.S.C. 362(a)(6)), cease communication (1006.6(c)), represented by an attorney
  (1006.6(b)(2)), an open dispute, collection holds, a medium the consumer opted out of
  (1006.14(h)), a do-not-contact address. A time-barred debt is not blocked but carries
  a warning (1006.26(b): no suit or threat of suit).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from math import ceil, floor
from typing import Literal, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

Channel = Literal["call", "sms", "email", "letter", "visit"]
CHANNELS: tuple[Channel, ...] = ("call", "sms", "email", "letter", "visit")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Channels to which the inconvenient-time rule is applied (all but a letter, see above).
WINDOW_CHANNELS: frozenset[str] = frozenset({"call", "sms", "email", "visit"})

# How far ahead the next opening of a contact window is searched for (days).
_WINDOW_HORIZON_DAYS = 400
_FIXED_POINT_ROUNDS = 200


# --------------------------------------------------------------------------- helpers


def _require_aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _zone(tz: str | tzinfo | None) -> tzinfo:
    """A tzinfo from an IANA name, a tzinfo, or None (UTC)."""
    if tz is None:
        return UTC
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
    return tz


def _zone_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def _local_date(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def _naive_local(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _first_instant_at(day: date, wall: time, tz: tzinfo) -> datetime:
    """The earliest instant (UTC) at which the local clock on ``day`` reads ``wall`` or later.

    For an ambiguous wall time (clocks going back) this is its first occurrence; for a
    wall time skipped by a DST gap it is the instant the gap ends.
    """
    naive = datetime.combine(day, wall)
    candidates = sorted({naive.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)})
    for candidate in candidates:
        if _naive_local(candidate, tz) == naive:
            return candidate
    lo, hi = floor(candidates[0].timestamp()), ceil(candidates[-1].timestamp())
    if not (
        _naive_local(datetime.fromtimestamp(lo, UTC), tz)
        < naive
        <= _naive_local(datetime.fromtimestamp(hi, UTC), tz)
    ):
        return candidates[-1]
    while hi - lo > 1:  # the local clock is monotonic across a gap: bisect on seconds
        mid = (lo + hi) // 2
        if _naive_local(datetime.fromtimestamp(mid, UTC), tz) >= naive:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _day_start(day: date, tz: tzinfo) -> datetime:
    return _first_instant_at(day, time(0), tz)


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a contact may be made, and why not.

    ``reason`` is "allowed" (or a note) when allowed, a sentence for the agent when
    blocked. ``next_allowed_at`` (UTC) is the earliest moment the blocking rules would
    all allow it, None when unknown or indefinite. ``code`` names the blocking rule.
    """

    allowed: bool
    reason: str = "allowed"
    next_allowed_at: datetime | None = None
    warnings: tuple[str, ...] = ()
    code: str = ""

    @classmethod
    def allow(cls, reason: str = "allowed", warnings: Iterable[str] = ()) -> Decision:
        """An allowed decision."""
        return cls(True, reason, None, tuple(warnings))

    @classmethod
    def block(cls, code: str, reason: str, next_allowed_at: datetime | None = None) -> Decision:
        """A blocked decision."""
        nxt = next_allowed_at.astimezone(UTC) if next_allowed_at is not None else None
        return cls(False, reason, nxt, (), code)


def inbound_allowed() -> Decision:
    """Logging an inbound contact (the consumer reached us) is always allowed."""
    return Decision.allow("inbound contacts may always be logged")


# --------------------------------------------------------------------------- call frequency


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A past telephone call (or, where a rule counts them, text message) about one debt.

    ``conversation``: the person was actually spoken to. ``connected=False``: busy
    signal / number not in service (not counted). ``voicemail``: a message was left
    (always counted). ``consented``: placed under prior consent, 1006.14(b)(3)(i) (not
    counted). ``wrong_number``: the number turned out not to be the person's (not
    counted, comment 14(b)(2)(i)-3). Inbound calls never count toward the cap, but a
    conversation in them starts the quiet period.
    """

    at: datetime
    conversation: bool
    direction: Literal["outbound", "inbound"] = "outbound"
    voicemail: bool = False
    connected: bool = True
    consented: bool = False
    wrong_number: bool = False
    medium: Literal["call", "sms"] = "call"

    def __post_init__(self) -> None:
        _require_aware(self.at, "CallEvent.at")
        if self.direction not in ("outbound", "inbound"):
            raise ValueError(f"CallEvent.direction must be outbound/inbound: {self.direction}")
        if self.medium not in ("call", "sms"):
            raise ValueError(f"CallEvent.medium must be call/sms: {self.medium}")


class CallFrequencyRule(BaseModel):
    """At most ``max_attempts`` counted calls in any ``period_days`` consecutive local
    dates, and none in the ``conversation_quiet_days`` dates starting with the date of a
    telephone conversation (0 disables it). ``consent_days``: how long prior consent
    exempts calls (0: no exemption). ``counts_text_messages``: texts count as attempts.
    """

    model_config = ConfigDict(frozen=True)

    max_attempts: int = 7
    period_days: int = 7
    conversation_quiet_days: int = 7
    consent_days: int = 7
    counts_text_messages: bool = False
    name: str = "US Regulation F 12 CFR 1006.14(b)(2)"

    @field_validator("max_attempts", "conversation_quiet_days", "consent_days")
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("period_days")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value


REG_F_CALL_FREQUENCY = CallFrequencyRule()


def _counts(event: CallEvent, rule: CallFrequencyRule) -> bool:
    return (
        event.direction == "outbound"
        and not event.consented
        and not event.wrong_number
        and (event.connected or event.voicemail or event.conversation)
        and (event.medium == "call" or rule.counts_text_messages)
    )


def _is_conversation(event: CallEvent) -> bool:
    return event.conversation and not event.wrong_number and event.medium == "call"


@dataclass(frozen=True)
class _FrequencyFacts:
    rule: CallFrequencyRule
    tz: tzinfo
    counted: Counter[date]
    conversations: tuple[tuple[datetime, date], ...]
    medium: Literal["call", "sms"]

    @classmethod
    def of(
        cls,
        history: Iterable[CallEvent],
        rule: CallFrequencyRule,
        tz: tzinfo,
        medium: Literal["call", "sms"],
    ) -> _FrequencyFacts:
        events = list(history)
        counted = Counter(_local_date(e.at, tz) for e in events if _counts(e, rule))
        conversations = tuple((e.at, _local_date(e.at, tz)) for e in events if _is_conversation(e))
        return cls(rule, tz, counted, conversations, medium)

    def blocker(self, moment: datetime, day: date) -> str | None:
        """Why a call at ``moment`` (local date ``day``) is blocked, or None."""
        rule = self.rule
        word = "call/text attempts" if rule.counts_text_messages else "call attempts"
        period = rule.period_days
        worst: tuple[int, date] | None = None
        # Every window of ``period`` days that holds ``day``: the counts of the days from
        # period - 1 before it to period - 1 after it, summed as the window slides.
        first = day - timedelta(days=period - 1)
        counts = [self.counted[first + timedelta(days=i)] for i in range(2 * period - 1)]
        n = sum(counts[:period])
        for offset in range(period):
            if offset:
                n += counts[offset + period - 1] - counts[offset - 1]
            if n + 1 > rule.max_attempts and (worst is None or n > worst[0]):
                worst = (n, first + timedelta(days=offset))
        if worst is not None:
            n, start = worst
            end = start + timedelta(days=period - 1)
            return (
                f"{n} {word} in the {period} days {start.isoformat()}..{end.isoformat()}; "
                f"limit {rule.max_attempts} ({rule.name})"
            )
        quiet = rule.conversation_quiet_days
        if self.medium == "call" and quiet > 0:
            latest = max(
                (
                    conv_day
                    for conv_at, conv_day in self.conversations
                    if conv_at <= moment and 0 <= (day - conv_day).days < quiet
                ),
                default=None,
            )
            if latest is not None:
                until = latest + timedelta(days=quiet)
                return (
                    f"telephone conversation on {latest.isoformat()}; no calls before "
                    f"{until.isoformat()} ({rule.name})"
                )
        return None

    def horizon(self, day: date) -> date:
        """A date after which nothing in the history can block any more."""
        days = [day, *self.counted, *(d for _, d in self.conversations)]
        return max(days) + timedelta(
            days=self.rule.period_days + self.rule.conversation_quiet_days + 1
        )


def _consent_applies(
    history: Sequence[CallEvent],
    at: datetime,
    consent_at: datetime | None,
    rule: CallFrequencyRule,
    tz: tzinfo,
) -> bool:
    if consent_at is None or rule.consent_days == 0:
        return False
    _require_aware(consent_at, "consent_at")
    if consent_at > at:
        return False
    if (_local_date(at, tz) - _local_date(consent_at, tz)).days >= rule.consent_days:
        return False
    # Comment 14(b)(3)(i)-2: consent expires at the next telephone conversation.
    return not any(_is_conversation(e) and consent_at < e.at <= at for e in history)


def call_frequency_decision(
    history: Iterable[CallEvent],
    at: datetime,
    rule: CallFrequencyRule | None = None,
    *,
    tz: str | tzinfo | None = None,
    consent_at: datetime | None = None,
    medium: Literal["call", "sms"] = "call",
) -> Decision:
    """May a call (or, with ``medium="sms"``, a counted text) be placed at ``at``?

    ``history``: the calls about this debt (any order; later ones are honoured too).
    ``tz``: the consumer's time zone, whose calendar dates the periods count (default
    UTC). ``consent_at``: when the consumer gave prior consent to be called
    (1006.14(b)(3)(i)). ``next_allowed_at`` is the start of the first local date on
    which the call would be allowed (None if ``max_attempts`` is 0).
    """
    _require_aware(at, "at")
    rule = rule or REG_F_CALL_FREQUENCY
    zone = _zone(tz)
    events = list(history)
    if medium == "sms" and not rule.counts_text_messages:
        return Decision.allow("text messages are not telephone calls for this rule")
    if _consent_applies(events, at, consent_at, rule, zone):
        assert consent_at is not None
        return Decision.allow(
            f"prior consent received {_local_date(consent_at, zone).isoformat()}: "
            "call excluded from the frequency limits (12 CFR 1006.14(b)(3)(i))"
        )
    facts = _FrequencyFacts.of(events, rule, zone, medium)
    day = _local_date(at, zone)
    reason = facts.blocker(at, day)
    if reason is None:
        return Decision.allow()
    next_at: datetime | None = None
    if rule.max_attempts > 0:
        candidate = day + timedelta(days=1)
        last = facts.horizon(day)
        while candidate <= last:
            start = _day_start(candidate, zone)
            if _local_date(start, zone) == candidate and facts.blocker(start, candidate) is None:
                next_at = start
                break
            candidate += timedelta(days=1)
    return Decision.block("call_frequency", reason, next_at)


# --------------------------------------------------------------------------- contact window


class ContactWindow(BaseModel):
    """Local wall-clock hours during which contact is allowed: ``start <= t < end``."""

    model_config = ConfigDict(frozen=True)

    start: time = time(8, 0)
    end: time = time(21, 0)

    @model_validator(mode="after")
    def _check(self) -> ContactWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("contact window times are local wall-clock times (no tzinfo)")
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before end {self.end}")
        return self

    def contains(self, wall: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        return self.start <= wall.replace(tzinfo=None, fold=0) < self.end

    def intersect(self, other: ContactWindow) -> ContactWindow | None:
        """The hours both windows allow, or None if they do not overlap."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return ContactWindow(start=start, end=end) if start < end else None


DEFAULT_WINDOW = ContactWindow()


def _window_for_day(
    day: date,
    window: ContactWindow,
    weekend_days: Collection[int],
    holidays: Collection[date],
    day_windows: Mapping[int, ContactWindow],
) -> tuple[ContactWindow | None, str]:
    if day in holidays:
        return None, f"{day.isoformat()} is a no-contact holiday"
    if day.weekday() in weekend_days:
        return None, f"{WEEKDAY_NAMES[day.weekday()]} is a no-contact day"
    return day_windows.get(day.weekday(), window), ""


def contact_window_decision(
    at: datetime,
    tz: str | tzinfo,
    window: ContactWindow | None = None,
    *,
    weekend_days: Collection[int] = frozenset(),
    holidays: Collection[date] = frozenset(),
    day_windows: Mapping[int, ContactWindow] | None = None,
) -> Decision:
    """Is ``at`` inside the contact window in the consumer's local time ``tz``?

    ``weekend_days``: weekdays (Monday=0 .. Sunday=6) with no contact at all;
    ``holidays``: local dates with no contact; ``day_windows``: per-weekday hours that
    replace ``window`` (e.g. Saturday 08:00-14:00). ``next_allowed_at`` is the next
    opening, in UTC (None if none within ~13 months).
    """
    _require_aware(at, "at")
    zone = _zone(tz)
    window = window or DEFAULT_WINDOW
    per_day = day_windows or {}
    local = at.astimezone(zone)
    today = local.date()
    todays, why = _window_for_day(today, window, weekend_days, holidays, per_day)
    if todays is not None and todays.contains(local.time()):
        return Decision.allow()
    if todays is not None:
        edge = (
            f"before {todays.start:%H:%M}"
            if local.time() < todays.start
            else f"at or after {todays.end:%H:%M}"
        )
        why = f"{local:%H:%M} local time ({_zone_name(zone)}) is {edge}"
    next_at: datetime | None = None
    for offset in range(_WINDOW_HORIZON_DAYS):
        day = today + timedelta(days=offset)
        hours, _ = _window_for_day(day, window, weekend_days, holidays, per_day)
        if hours is None:
            continue
        opening = _first_instant_at(day, hours.start, zone)
        opened = opening.astimezone(zone)
        if opening > at and opened.date() == day and hours.contains(opened.time()):
            next_at = opening
            break
    return Decision.block("contact_window", f"outside contact hours: {why}", next_at)


# --------------------------------------------------------------------------- jurisdictions


class RuleSet(BaseModel):
    """The contact rules of one jurisdiction ("US", "US-MA", "BR", ...).

    ``weekend_days`` are weekdays (Monday=0) with no contact, ``day_windows`` per-weekday
    hours replacing ``window``, ``holidays`` local dates with no contact (year-specific:
    callers add them with ``model_copy(update=...)``), ``sources`` the citations.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    window: ContactWindow = DEFAULT_WINDOW
    weekend_days: frozenset[int] = frozenset()
    day_windows: dict[int, ContactWindow] = {}
    holidays: frozenset[date] = frozenset()
    call_frequency: CallFrequencyRule = REG_F_CALL_FREQUENCY
    sources: tuple[str, ...] = ()

    @field_validator("weekend_days")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if any(not 0 <= d <= 6 for d in value):
            raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
        return value

    @field_validator("day_windows")
    @classmethod
    def _day_keys(cls, value: dict[int, ContactWindow]) -> dict[int, ContactWindow]:
        if any(not 0 <= d <= 6 for d in value):
            raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
        return value


def _dominates(a: CallFrequencyRule, b: CallFrequencyRule) -> bool:
    return (
        a.max_attempts <= b.max_attempts
        and a.period_days >= b.period_days
        and a.conversation_quiet_days >= b.conversation_quiet_days
        and a.consent_days <= b.consent_days
        and (a.counts_text_messages or not b.counts_text_messages)
    )


def _stricter_frequency(a: CallFrequencyRule, b: CallFrequencyRule) -> CallFrequencyRule:
    if _dominates(a, b):
        return a
    if _dominates(b, a):
        return b
    # min of the caps over the longest period: every shorter window lies inside a longer
    # one, so this never allows what either rule forbids (it may be stricter than both).
    return CallFrequencyRule(
        max_attempts=min(a.max_attempts, b.max_attempts),
        period_days=max(a.period_days, b.period_days),
        conversation_quiet_days=max(a.conversation_quiet_days, b.conversation_quiet_days),
        consent_days=min(a.consent_days, b.consent_days),
        counts_text_messages=a.counts_text_messages or b.counts_text_messages,
        name=f"{a.name}; {b.name}",
    )


def _stricter_rule_set(a: RuleSet, b: RuleSet) -> RuleSet:
    window = a.window.intersect(b.window)
    if window is None:
        raise ValueError(f"contact windows of {a.name} and {b.name} do not overlap")
    weekend = set(a.weekend_days | b.weekend_days)
    day_windows: dict[int, ContactWindow] = {}
    for weekday in sorted(set(a.day_windows) | set(b.day_windows)):
        if weekday in weekend:
            continue
        hours = a.day_windows.get(weekday, a.window).intersect(b.day_windows.get(weekday, b.window))
        if hours is None:
            weekend.add(weekday)
        elif hours != window:
            day_windows[weekday] = hours
    sources = tuple(dict.fromkeys((*a.sources, *b.sources)))
    return RuleSet(
        name=f"{a.name}+{b.name}",
        window=window,
        weekend_days=frozenset(weekend),
        day_windows=day_windows,
        holidays=a.holidays | b.holidays,
        call_frequency=_stricter_frequency(a.call_frequency, b.call_frequency),
        sources=sources,
    )


@overload
def stricter(a: RuleSet, b: RuleSet) -> RuleSet: ...
@overload
def stricter(a: CallFrequencyRule, b: CallFrequencyRule) -> CallFrequencyRule: ...
@overload
def stricter(a: ContactWindow, b: ContactWindow) -> ContactWindow: ...
def stricter(
    a: RuleSet | CallFrequencyRule | ContactWindow, b: RuleSet | CallFrequencyRule | ContactWindow
) -> RuleSet | CallFrequencyRule | ContactWindow:
    """The combination of two rules that never allows what either forbids.

    Caps: the smaller cap over the longer period, the longer quiet period; windows: the
    later start and the earlier end; no-contact days and holidays: the union.
    """
    if isinstance(a, RuleSet) and isinstance(b, RuleSet):
        return _stricter_rule_set(a, b)
    if isinstance(a, CallFrequencyRule) and isinstance(b, CallFrequencyRule):
        return _stricter_frequency(a, b)
    if isinstance(a, ContactWindow) and isinstance(b, ContactWindow):
        window = a.intersect(b)
        if window is None:
            raise ValueError("contact windows do not overlap")
        return window
    raise TypeError(f"cannot combine {type(a).__name__} with {type(b).__name__}")


MA_CALL_FREQUENCY = CallFrequencyRule(
    max_attempts=2,
    period_days=7,
    conversation_quiet_days=0,
    consent_days=0,
    counts_text_messages=True,
    name="Massachusetts 940 CMR 7.04(1)(f)",
)

# A deliberately short table. Add jurisdictions with their sources; check them with counsel.
BUILTIN_RULE_SETS: dict[str, RuleSet] = {
    # 12 CFR 1006.6(b)(1)(i): 08:00-21:00 local time; 1006.14(b)(2): 7 calls / 7 days and
    # 7 days after a conversation. No weekend or holiday ban in federal law.
    "US": RuleSet(
        name="US",
        sources=("12 CFR 1006.6(b)(1)(i)", "12 CFR 1006.14(b)(2)"),
    ),
    # 940 CMR 7.04(1)(f) (creditors; 209 CMR 18.16(1)(d) says the same for debt
    # collectors): no more than two telephone communications, texts and recorded messages
    # included, in each seven-day period to the debtor's residence or mobile number.
    # effective_rules("US", "MA") combines it with Reg F.
    "US-MA": RuleSet(
        name="US-MA",
        call_frequency=MA_CALL_FREQUENCY,
        sources=("940 CMR 7.04(1)(f)", "209 CMR 18.16(1)(d)"),
    ),
    # Brazil: the CDC (Lei 8.078/1990) arts. 42 and 71 forbid collection that embarrasses
    # the consumer or interferes with work, rest or leisure, without fixed hours. Hours
    # follow Sao Paulo's Lei 15.426/2014 (Mon-Fri 08-20, Sat 08-14, no Sundays or
    # holidays), the common market practice. No statutory call cap: house limit, no
    # conversation quiet period.
    "BR": RuleSet(
        name="BR",
        window=ContactWindow(start=time(8), end=time(20)),
        day_windows={5: ContactWindow(start=time(8), end=time(14))},
        weekend_days=frozenset({6}),
        call_frequency=CallFrequencyRule(
            max_attempts=7,
            period_days=7,
            conversation_quiet_days=0,
            consent_days=0,
            name="house policy (CDC arts. 42, 71: no statutory cap)",
        ),
        sources=("Lei 8.078/1990 arts. 42, 71", "SP Lei 15.426/2014 (hours)"),
    ),
    # Any other country: a house default modelled on the US federal rules.
    "DEFAULT": RuleSet(
        name="DEFAULT",
        call_frequency=CallFrequencyRule(name="house default (modelled on US Reg F)"),
        sources=("house policy",),
    ),
}


def effective_rules(
    country: str,
    region: str | None = None,
    rule_sets: Mapping[str, RuleSet] | None = None,
) -> RuleSet:
    """The rules for a consumer in ``country`` (ISO code) and ``region`` ("MA" or "US-MA").

    The country's rules (or ``DEFAULT``) combined by :func:`stricter` with the region's,
    when the table has them.
    """
    table = BUILTIN_RULE_SETS if rule_sets is None else rule_sets
    key = country.strip().upper()
    base = table.get(key) or table.get("DEFAULT") or BUILTIN_RULE_SETS["DEFAULT"]
    if region:
        region_key = region.strip().upper()
        if not region_key.startswith(f"{key}-"):
            region_key = f"{key}-{region_key}"
        regional = table.get(region_key)
        if regional is not None:
            return stricter(base, regional)
    return base


# --------------------------------------------------------------------------- subject


def _aware_or_none(value: datetime | None, what: str) -> datetime | None:
    if value is not None:
        _require_aware(value, what)
    return value


class CollectionHold(BaseModel):
    """A hold on collection: on the whole account, or on one invoice.

    ``until``: None = indefinite; a date = through the end of that local date; a datetime
    (timezone-aware) = until that instant.
    """

    model_config = ConfigDict(frozen=True)

    reason: str
    until: datetime | date | None = None
    invoice_id: int | None = None

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime | date | None) -> datetime | date | None:
        if isinstance(value, datetime):
            _require_aware(value, "CollectionHold.until")
        return value

    def ends_at(self, tz: tzinfo) -> datetime | None:
        """The instant (UTC) the hold ends, None if indefinite."""
        if self.until is None:
            return None
        if isinstance(self.until, datetime):
            return self.until.astimezone(UTC)
        return _day_start(self.until + timedelta(days=1), tz)

    def active(self, at: datetime, tz: tzinfo) -> bool:
        """Whether the hold is in force at ``at``."""
        end = self.ends_at(tz)
        return end is None or at < end

    def describe(self) -> str:
        """The hold in words."""
        until = "no end date" if self.until is None else f"until {self.until.isoformat()}"
        target = f"invoice {self.invoice_id} " if self.invoice_id is not None else ""
        return f"{target}collection hold: {self.reason} ({until})"


class DisputeInfo(BaseModel):
    """A written dispute: when it was received and whether verification was sent."""

    model_config = ConfigDict(frozen=True)

    received_on: date
    verified: bool = False
    resolved: bool = False


class ContactSubject(BaseModel):
    """What compliance needs to know about the consumer of one debt.

    ``time_zone``: IANA name of the consumer's location; ``other_time_zones``: other
    places the consumer might be (the window must be open in all). ``do_not_contact``:
    addresses (phone numbers, emails, postal addresses) never to use; ``channel_opt_outs``:
    media the consumer asked us not to use (1006.14(h)). ``call_consent_at``: prior
    consent to calls (1006.14(b)(3)(i)). ``validation_period_end`` overrides the date
    computed from ``validation_notice_sent_on`` (e.g. the one printed on the notice).
    """

    model_config = ConfigDict(frozen=True)

    time_zone: str = "UTC"
    other_time_zones: tuple[str, ...] = ()
    country: str = "US"
    region: str | None = None
    cease_communication: bool = False
    dispute_open: bool = False
    bankruptcy: bool = False
    deceased: bool = False
    time_barred: bool = False
    attorney_represented: bool = False
    holds: tuple[CollectionHold, ...] = ()
    do_not_contact: frozenset[str] = frozenset()
    channel_opt_outs: frozenset[Channel] = frozenset()
    validation_notice_sent_on: date | None = None
    validation_period_end: date | None = None
    disputes: tuple[DisputeInfo, ...] = ()
    call_consent_at: datetime | None = None

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("other_time_zones")
    @classmethod
    def _tzs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            _zone(name)
        return value

    @field_validator("call_consent_at")
    @classmethod
    def _consent_aware(cls, value: datetime | None) -> datetime | None:
        return _aware_or_none(value, "ContactSubject.call_consent_at")

    @property
    def zone(self) -> tzinfo:
        """The consumer's primary time zone."""
        return _zone(self.time_zone)

    @property
    def zones(self) -> tuple[tzinfo, ...]:
        """Every time zone the consumer might be in, primary first."""
        names = dict.fromkeys((self.time_zone, *self.other_time_zones))
        return tuple(_zone(name) for name in names)


# --------------------------------------------------------------------------- validation period


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@cache
def us_legal_public_holidays(year: int) -> frozenset[date]:
    """The legal public holidays of 5 U.S.C. 6103(a) in ``year``, with their observed
    days (6103(b): Saturday -> Friday, Sunday -> Monday) also included.
    """
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11)]
    fixed.append(date(year, 12, 25))
    days = set(fixed)
    for day in fixed:
        if day.weekday() == 5:
            days.add(day - timedelta(days=1))
        elif day.weekday() == 6:
            days.add(day + timedelta(days=1))
    days |= {
        _nth_weekday(year, 1, 0, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _last_weekday(year, 5, 0),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    }
    if date(year + 1, 1, 1).weekday() == 5:  # next New Year's Day observed on Dec 31
        days.add(date(year, 12, 31))
    return frozenset(days)


def validation_period_end(sent_on: date, *, holidays: Collection[date] = ()) -> date:
    """Last day of the validation period for a notice sent on ``sent_on``.

    12 CFR 1006.34(b)(5): 30 days after receipt, receipt assumed five days (excluding
    Saturdays, Sundays and 5 U.S.C. 6103(a) holidays, plus ``holidays``) after sending.
    """
    received = sent_on
    business_days = 0
    while business_days < 5:
        received += timedelta(days=1)
        if (
            received.weekday() < 5
            and received not in us_legal_public_holidays(received.year)
            and received not in holidays
        ):
            business_days += 1
    return received + timedelta(days=30)


# --------------------------------------------------------------------------- addresses


def _normalize_address(address: str, channel: str) -> str:
    if channel in ("call", "sms"):
        return re.sub(r"\D", "", address)
    return " ".join(address.casefold().split())


def _same_address(a: str, b: str, channel: str) -> bool:
    na, nb = _normalize_address(a, channel), _normalize_address(b, channel)
    if not na or not nb:
        return False
    if na == nb:
        return True
    if channel in ("call", "sms"):  # "+1 617 555 0100" is "(617) 555-0100"
        short, long_ = sorted((na, nb), key=len)
        return len(short) >= 8 and long_.endswith(short)
    return False


# --------------------------------------------------------------------------- entry point

_Check = Callable[[datetime], Decision | None]


def _flag_checks(subject: ContactSubject) -> list[_Check]:
    flags = [
        (
            subject.deceased,
            "deceased",
            "consumer deceased: contact only the estate's representative (12 CFR 1006.6(a)(4))",
        ),
        (
            subject.bankruptcy,
            "bankruptcy",
            "bankruptcy on file: automatic stay, no collection (11 U.S.C. 362(a)(6))",
        ),
        (
            subject.cease_communication,
            "cease_communication",
            "consumer asked us to cease communication (12 CFR 1006.6(c))",
        ),
        (
            subject.attorney_represented,
            "attorney",
            "consumer represented by an attorney: contact the attorney (12 CFR 1006.6(b)(2))",
        ),
    ]
    blocks = [Decision.block(code, reason) for flag, code, reason in flags if flag]
    return [lambda _t, block=block: block for block in blocks]


def _dispute_checks(subject: ContactSubject) -> tuple[list[_Check], list[str]]:
    checks: list[_Check] = []
    warnings: list[str] = []
    end = subject.validation_period_end
    if end is None and subject.validation_notice_sent_on is not None:
        end = validation_period_end(subject.validation_notice_sent_on)
    blocking: str | None = None
    for dispute in sorted(subject.disputes, key=lambda d: d.received_on):
        if dispute.verified:
            continue
        received = dispute.received_on.isoformat()
        if end is None:
            blocking = blocking or (
                f"dispute received {received} and no validation notice date on file: "
                "collection stopped until verification is sent (12 CFR 1006.38(d)(2))"
            )
        elif dispute.received_on <= end:
            blocking = blocking or (
                f"dispute received {received} within the validation period (ends "
                f"{end.isoformat()}): collection stopped until verification is sent "
                "(12 CFR 1006.38(d)(2))"
            )
        elif not dispute.resolved:
            warnings.append(
                f"unresolved dispute received {received} (after the validation period): "
                "answer it before demanding payment"
            )
    if blocking is not None:
        validation_block = Decision.block("validation_dispute", blocking)
        checks.append(lambda _t: validation_block)
    if subject.dispute_open:
        open_dispute = Decision.block(
            "dispute", "open dispute on file: resolve it before further collection"
        )
        checks.append(lambda _t: open_dispute)
    return checks, warnings


def _hold_check(subject: ContactSubject, invoice_ids: Collection[int] | None) -> _Check:
    zone = subject.zone
    account_holds = [h for h in subject.holds if h.invoice_id is None]
    invoice_holds = [h for h in subject.holds if h.invoice_id is not None]
    wanted = set(invoice_ids) if invoice_ids else set()

    def release(holds: Sequence[CollectionHold], moment: datetime) -> datetime | None:
        ends = [h.ends_at(zone) for h in holds if h.active(moment, zone)]
        return None if None in ends else max(e for e in ends if e is not None)

    def check(moment: datetime) -> Decision | None:
        active = [h for h in account_holds if h.active(moment, zone)]
        if active:
            return Decision.block("hold", active[0].describe(), release(active, moment))
        if not wanted:
            return None
        held = {
            i: [h for h in invoice_holds if h.invoice_id == i and h.active(moment, zone)]
            for i in wanted
        }
        if all(held.values()):
            first = held[min(held)][0]
            releases = [release(hs, moment) for hs in held.values()]
            known = [r for r in releases if r is not None]
            return Decision.block("hold", first.describe(), min(known) if known else None)
        return None

    return check


def _hold_warnings(
    subject: ContactSubject, at: datetime, invoice_ids: Collection[int] | None
) -> list[str]:
    zone = subject.zone
    wanted = set(invoice_ids) if invoice_ids else None
    return [
        f"{h.describe()}: do not demand it"
        for h in subject.holds
        if h.invoice_id is not None
        and h.active(at, zone)
        and (wanted is None or h.invoice_id in wanted)
    ]


def outbound_decision(
    subject: ContactSubject,
    channel: Channel,
    address: str | None,
    at: datetime,
    history: Iterable[CallEvent] = (),
    rules: RuleSet | None = None,
    *,
    invoice_ids: Collection[int] | None = None,
) -> Decision:
    """May we contact ``subject`` through ``channel`` at ``address`` at ``at``?

    Checks, in this order, the first blocking one being reported: deceased, bankruptcy,
    cease communication, attorney, validation-period dispute, open dispute, holds,
    channel opt-out, do-not-contact address, contact window (every channel but a letter,
    in every zone of the subject), call frequency (calls; texts too where the rules count
    them). ``history``: the calls about this debt. ``rules``: default
    ``effective_rules(subject.country, subject.region)``. ``invoice_ids``: the invoices
    this contact is about (invoice holds block only when they cover all of them; None =
    the whole account, invoice holds then only warn). ``next_allowed_at`` is the earliest
    moment every check allows (None if a block is indefinite). Inbound contacts need no
    check (:func:`inbound_allowed`).
    """
    _require_aware(at, "at")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")
    rules = rules or effective_rules(subject.country, subject.region)
    events = list(history)

    checks: list[_Check] = _flag_checks(subject)
    dispute_checks, warnings = _dispute_checks(subject)
    checks += dispute_checks
    checks.append(_hold_check(subject, invoice_ids))

    if channel in subject.channel_opt_outs:
        opt_out = Decision.block(
            "channel_opt_out",
            f"consumer asked not to be contacted by {channel} (12 CFR 1006.14(h))",
        )
        checks.append(lambda _t: opt_out)
    if address is not None and any(
        _same_address(banned, address, channel) for banned in subject.do_not_contact
    ):
        dnc = Decision.block("do_not_contact", f"{address} is on the do-not-contact list")
        checks.append(lambda _t: dnc)

    if channel in WINDOW_CHANNELS:
        for zone in subject.zones:

            def window_check(moment: datetime, zone: tzinfo = zone) -> Decision | None:
                decision = contact_window_decision(
                    moment,
                    zone,
                    rules.window,
                    weekend_days=rules.weekend_days,
                    holidays=rules.holidays,
                    day_windows=rules.day_windows,
                )
                return None if decision.allowed else decision

            checks.append(window_check)

    frequency = rules.call_frequency
    if channel == "call" or (channel == "sms" and frequency.counts_text_messages):
        medium: Literal["call", "sms"] = "call" if channel == "call" else "sms"

        def frequency_check(moment: datetime) -> Decision | None:
            decision = call_frequency_decision(
                events,
                moment,
                frequency,
                tz=subject.zone,
                consent_at=subject.call_consent_at,
                medium=medium,
            )
            return None if decision.allowed else decision

        checks.append(frequency_check)

    if subject.time_barred:
        warnings.append(
            "time-barred debt: do not sue or threaten suit, or imply it (12 CFR 1006.26(b))"
        )
    warnings += _hold_warnings(subject, at, invoice_ids)

    blockers = [d for d in (check(at) for check in checks) if d is not None]
    if not blockers:
        return Decision.allow(warnings=warnings)
    first = blockers[0]
    return Decision(
        False, first.reason, _next_allowed(checks, at, blockers), tuple(warnings), first.code
    )


def _next_allowed(
    checks: Sequence[_Check], at: datetime, blockers: Sequence[Decision]
) -> datetime | None:
    """The earliest moment every check allows: jump to the latest of the blockers' own
    ``next_allowed_at`` until none blocks (each jump skips only blocked time)."""
    moment = at
    for _ in range(_FIXED_POINT_ROUNDS):
        nexts = [d.next_allowed_at for d in blockers]
        if any(n is None for n in nexts):
            return None
        target = max(n for n in nexts if n is not None)
        if target <= moment:
            return None
        moment = target
        blockers = [d for d in (check(moment) for check in checks) if d is not None]
        if not blockers:
            return moment.astimezone(UTC)
    return None
