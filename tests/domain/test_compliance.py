"""Compliance rules: call frequency (Reg F 1006.14(b)(2)), contact window, flags, holds."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collect_tui.domain.compliance import (
    BUILTIN_RULE_SETS,
    CallEvent,
    CallFrequencyRule,
    CollectionHold,
    ContactSubject,
    ContactWindow,
    Decision,
    DisputeInfo,
    RuleSet,
    call_frequency_decision,
    contact_window_decision,
    effective_rules,
    inbound_allowed,
    outbound_decision,
    stricter,
    us_legal_public_holidays,
    validation_period_end,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
SP = ZoneInfo("America/Sao_Paulo")
REG_F = CallFrequencyRule()


def ny(month: int, day: int, hour: int = 12, minute: int = 0, *, fold: int = 0) -> datetime:
    """A New York wall-clock time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=NY, fold=fold)


def utc(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def calls(days: list[int], month: int = 3, hour: int = 10, **flags: bool) -> list[CallEvent]:
    """One unanswered outbound call per listed day (a day may repeat)."""
    return [CallEvent(ny(month, d, hour), False, **flags) for d in days]


# --------------------------------------------------------------------------- call frequency

FREQUENCY_CASES = [
    # (history days, proposed day, allowed?, next allowed day (local midnight) or None)
    pytest.param([1, 2, 3, 4, 5, 6, 7], 7, False, 8, id="8th-on-day-7-blocked"),
    pytest.param([1, 2, 3, 4, 5, 6, 7], 8, True, None, id="day-8-window-2..8-has-6"),
    pytest.param([1, 2, 3, 4, 5, 6], 7, True, None, id="7th-in-7-days-allowed"),
    pytest.param([2, 2, 3, 4, 5, 6, 7], 8, False, 9, id="day-8-window-2..8-has-7"),
    pytest.param([2, 2, 3, 4, 5, 6, 7], 9, True, None, id="day-9-window-3..9-has-5"),
    pytest.param([2, 2, 3, 4, 5, 6, 7], 1, False, 9, id="earlier-day-window-1..7-full"),
    pytest.param([5, 6, 7, 8, 9, 10, 11], 4, True, None, id="later-calls-window-4..10-has-6"),
    pytest.param([5, 6, 7, 8, 9, 10, 11], 6, False, 12, id="later-calls-window-5..11-full"),
    pytest.param([1, 1, 1, 1, 1, 1, 1], 7, False, 8, id="seven-on-day-1-block-through-7"),
    pytest.param([], 1, True, None, id="empty-history"),
]


@pytest.mark.parametrize(("days", "proposed", "allowed", "next_day"), FREQUENCY_CASES)
def test_seven_in_seven_consecutive_days(
    days: list[int], proposed: int, allowed: bool, next_day: int | None
) -> None:
    decision = call_frequency_decision(calls(days), ny(3, proposed, 15), tz=NY)
    assert decision.allowed is allowed
    if allowed:
        assert decision.next_allowed_at is None
    else:
        assert decision.code == "call_frequency"
        assert "1006.14(b)(2)" in decision.reason
        assert next_day is not None
        assert decision.next_allowed_at == ny(3, next_day, 0).astimezone(UTC)


def test_reason_names_the_window_and_the_count() -> None:
    decision = call_frequency_decision(calls([1, 2, 3, 4, 5, 6, 7]), ny(3, 7, 15), tz=NY)
    assert decision.reason.startswith("7 call attempts in the 7 days 2026-03-01..2026-03-07")


def test_reg_f_example_eight_calls_in_seven_days() -> None:
    """Comment 14(b)(2)(ii)-1.i: Apr 1 one call, Apr 2, 3 and 6 two each, the 8th on Apr 7."""
    history = calls([1, 2, 2, 3, 3, 6, 6], month=4)
    assert not call_frequency_decision(history, ny(4, 7), tz=NY).allowed
    assert call_frequency_decision(calls([1, 2, 3, 6, 6], month=4), ny(4, 7), tz=NY).allowed


COUNTING_CASES = [
    # (history, allowed on day 7?) with six counted calls on days 1..6 plus one extra event
    pytest.param(
        CallEvent(ny(3, 7, 9), False, direction="inbound"), True, id="inbound-not-counted"
    ),
    pytest.param(CallEvent(ny(3, 7, 9), False, voicemail=True), False, id="voicemail-counted"),
    pytest.param(
        CallEvent(ny(3, 7, 9), False, connected=False, voicemail=True),
        False,
        id="voicemail-counted-even-if-flagged-unconnected",
    ),
    pytest.param(CallEvent(ny(3, 7, 9), False, connected=False), True, id="busy-not-counted"),
    pytest.param(CallEvent(ny(3, 7, 9), False, consented=True), True, id="consented-not-counted"),
    pytest.param(CallEvent(ny(3, 7, 9), False, wrong_number=True), True, id="wrong-number"),
    pytest.param(CallEvent(ny(3, 7, 9), False, medium="sms"), True, id="text-not-a-call"),
    pytest.param(CallEvent(ny(3, 7, 9), False), False, id="plain-call-counted"),
]


@pytest.mark.parametrize(("extra", "allowed"), COUNTING_CASES)
def test_what_counts_toward_the_cap(extra: CallEvent, allowed: bool) -> None:
    history = [*calls([1, 2, 3, 4, 5, 6]), extra]
    assert call_frequency_decision(history, ny(3, 7, 15), tz=NY).allowed is allowed


def test_texts_count_when_the_rule_says_so() -> None:
    ma = BUILTIN_RULE_SETS["US-MA"].call_frequency
    history = [CallEvent(ny(3, 2), False, medium="sms"), CallEvent(ny(3, 3), False)]
    assert not call_frequency_decision(history, ny(3, 4), ma, tz=NY).allowed
    assert not call_frequency_decision(history, ny(3, 4), ma, tz=NY, medium="sms").allowed
    assert call_frequency_decision(history[:1], ny(3, 4), ma, tz=NY, medium="sms").allowed
    # Under Reg F a text is never checked against the call limits.
    full = calls([1, 2, 3, 4, 5, 6, 7])
    assert call_frequency_decision(full, ny(3, 7), tz=NY, medium="sms").allowed


QUIET_CASES = [
    # conversation at, proposed at, allowed?
    pytest.param(ny(3, 1, 23), ny(3, 1, 23, 30), False, id="same-evening"),
    pytest.param(ny(3, 1, 23), ny(3, 7, 23, 59), False, id="day-7-last-minute"),
    pytest.param(ny(3, 1, 23), ny(3, 8, 0, 0), True, id="day-8-midnight-local"),
    pytest.param(ny(3, 1, 23), ny(3, 1, 22), True, id="earlier-the-same-day"),
    pytest.param(ny(8, 14, 15), ny(8, 20, 20), False, id="reg-f-example-aug-20"),
    pytest.param(ny(8, 14, 15), ny(8, 21, 8), True, id="reg-f-example-aug-21"),
]


@pytest.mark.parametrize(("spoke_at", "proposed", "allowed"), QUIET_CASES)
def test_no_call_within_seven_days_after_a_conversation(
    spoke_at: datetime, proposed: datetime, allowed: bool
) -> None:
    history = [CallEvent(spoke_at, True)]
    decision = call_frequency_decision(history, proposed, tz=NY)
    assert decision.allowed is allowed
    if not allowed:
        assert "telephone conversation on" in decision.reason


def test_conversation_day_1_at_23h_reopens_day_8_at_local_midnight() -> None:
    decision = call_frequency_decision([CallEvent(ny(3, 1, 23), True)], ny(3, 2, 9), tz=NY)
    assert not decision.allowed
    assert decision.next_allowed_at == ny(3, 8, 0).astimezone(UTC) == utc(3, 8, 5)


def test_calendar_days_depend_on_the_time_zone() -> None:
    """23:00 in New York is already the next day in UTC: the default tz counts UTC days."""
    history = [CallEvent(ny(3, 1, 23), True)]
    assert call_frequency_decision(history, ny(3, 8, 0, 30), tz=NY).allowed
    assert not call_frequency_decision(history, ny(3, 8, 0, 30)).allowed


def test_inbound_conversation_starts_the_quiet_period() -> None:
    """Comment 14(b)(2)(i)-1.ii: consumer calls in Thursday Aug 13; next call Aug 20."""
    history = [CallEvent(ny(8, 13, 10), True, direction="inbound")]
    assert not call_frequency_decision(history, ny(8, 19, 10), tz=NY).allowed
    assert call_frequency_decision(history, ny(8, 20, 10), tz=NY).allowed


def test_prior_consent_excludes_the_call() -> None:
    """Comment 14(b)(3)(i)-3.i/ii: "call back on Monday"; consent ends at the next talk."""
    friday = ny(4, 3, 10)
    history = [CallEvent(friday, True)]
    consent = friday + timedelta(minutes=5)
    assert not call_frequency_decision(history, ny(4, 6, 10), tz=NY).allowed
    monday = call_frequency_decision(history, ny(4, 6, 10), tz=NY, consent_at=consent)
    assert monday.allowed and "1006.14(b)(3)(i)" in monday.reason
    history.append(CallEvent(ny(4, 6, 10), True, consented=True))
    assert not call_frequency_decision(history, ny(4, 8, 10), tz=NY, consent_at=consent).allowed
    # Consent lasts seven days counting the day it was given.
    quiet = [CallEvent(ny(4, 3, 9), False)]
    assert call_frequency_decision(quiet, ny(4, 9, 20), tz=NY, consent_at=consent).allowed
    late = call_frequency_decision(
        calls([4, 5, 6, 7, 8, 9, 10], month=4), ny(4, 10, 20), tz=NY, consent_at=consent
    )
    assert not late.allowed


def test_calendar_days_across_dst_changes() -> None:
    # Spring forward (2026-03-08): local midnight is still EST.
    spring = call_frequency_decision([CallEvent(ny(3, 1, 23), True)], ny(3, 5), tz=NY)
    assert spring.next_allowed_at == utc(3, 8, 5)
    # Fall back (2026-11-01): local midnight is still EDT.
    fall = call_frequency_decision([CallEvent(ny(10, 25, 23, 30), True)], ny(10, 30), tz=NY)
    assert fall.next_allowed_at == utc(11, 1, 4)
    # The repeated 01:30 on Nov 1 (second time, EST) is still Nov 1.
    history = [*calls([27, 28, 29, 30, 31], month=10), CallEvent(ny(11, 1, 1, 30, fold=1), False)]
    history.append(CallEvent(ny(11, 1, 1, 30, fold=0), False))
    assert not call_frequency_decision(history, ny(11, 2, 0, 0), tz=NY).allowed
    assert call_frequency_decision(history, ny(11, 3, 0, 0), tz=NY).allowed


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CallEvent(datetime(2026, 3, 1, 10), False)
    with pytest.raises(ValueError, match="timezone-aware"):
        call_frequency_decision([], datetime(2026, 3, 1, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        contact_window_decision(datetime(2026, 3, 1, 10), NY)


def test_a_zero_cap_never_reopens() -> None:
    rule = CallFrequencyRule(max_attempts=0)
    decision = call_frequency_decision([], utc(3, 1), rule)
    assert not decision.allowed and decision.next_allowed_at is None


def test_call_event_positional_construction_still_works() -> None:
    event = CallEvent(utc(3, 1), True)
    assert (event.direction, event.voicemail, event.connected) == ("outbound", False, True)
    with pytest.raises(AttributeError):
        event.conversation = False  # type: ignore[misc]


# --------------------------------------------------------------------------- contact window

WINDOW_CASES = [
    # (moment, allowed?, next opening or None)
    pytest.param(ny(3, 4, 7, 59), False, ny(3, 4, 8), id="07:59-blocked"),
    pytest.param(ny(3, 4, 8, 0), True, None, id="08:00-allowed"),
    pytest.param(ny(3, 4, 20, 59), True, None, id="20:59-allowed"),
    pytest.param(ny(3, 4, 21, 0), False, ny(3, 5, 8), id="21:00-blocked"),
    pytest.param(ny(3, 4, 23, 30), False, ny(3, 5, 8), id="late-night"),
    # Spring forward, 2026-03-08: EST (UTC-5) before 02:00, EDT (UTC-4) after.
    pytest.param(utc(3, 7, 12, 59), False, utc(3, 7, 13), id="eve-of-spring-07:59-EST"),
    pytest.param(utc(3, 7, 13), True, None, id="eve-of-spring-08:00-EST"),
    pytest.param(utc(3, 8, 6), False, utc(3, 8, 12), id="spring-01:00-EST"),
    pytest.param(utc(3, 8, 11, 59), False, utc(3, 8, 12), id="spring-07:59-EDT"),
    pytest.param(utc(3, 8, 12), True, None, id="spring-08:00-EDT"),
    pytest.param(utc(3, 9, 0, 59), True, None, id="spring-20:59-EDT"),
    pytest.param(utc(3, 9, 1), False, utc(3, 9, 12), id="spring-21:00-EDT"),
    # Fall back, 2026-11-01: 01:00-02:00 happens twice.
    pytest.param(utc(11, 1, 5, 30), False, utc(11, 1, 13), id="fall-01:30-EDT"),
    pytest.param(utc(11, 1, 6, 30), False, utc(11, 1, 13), id="fall-01:30-EST"),
    pytest.param(utc(11, 1, 12, 59), False, utc(11, 1, 13), id="fall-07:59-EST"),
    pytest.param(utc(11, 1, 13), True, None, id="fall-08:00-EST"),
    pytest.param(utc(11, 2, 1, 59), True, None, id="fall-20:59-EST"),
    pytest.param(utc(11, 2, 2), False, utc(11, 2, 13), id="fall-21:00-EST"),
    pytest.param(utc(10, 31, 12), True, None, id="eve-of-fall-08:00-EDT"),
]


@pytest.mark.parametrize(("moment", "allowed", "opening"), WINDOW_CASES)
def test_contact_window_edges_and_dst(
    moment: datetime, allowed: bool, opening: datetime | None
) -> None:
    decision = contact_window_decision(moment, "America/New_York")
    assert decision.allowed is allowed
    assert decision.next_allowed_at == (opening.astimezone(UTC) if opening else None)
    if not allowed:
        assert decision.code == "contact_window"
        assert decision.next_allowed_at is not None
        assert decision.next_allowed_at.tzinfo == UTC


def test_window_opening_inside_a_dst_gap_opens_when_the_gap_ends() -> None:
    window = ContactWindow(start=time(2, 30), end=time(21))
    decision = contact_window_decision(utc(3, 8, 6), NY, window)
    assert decision.next_allowed_at == utc(3, 8, 7)  # 03:00 EDT, the first moment >= 02:30
    assert contact_window_decision(utc(3, 8, 7), NY, window).allowed


def test_window_reason_is_readable() -> None:
    early = contact_window_decision(ny(3, 4, 7, 59), NY)
    assert early.reason == (
        "outside contact hours: 07:59 local time (America/New_York) is before 08:00"
    )
    late = contact_window_decision(ny(3, 4, 21), NY)
    assert "at or after 21:00" in late.reason


def test_weekend_days_holidays_and_day_windows() -> None:
    br = BUILTIN_RULE_SETS["BR"]

    def check(moment: datetime, holidays: frozenset[date] = frozenset()) -> Decision:
        return contact_window_decision(
            moment,
            SP,
            br.window,
            weekend_days=br.weekend_days,
            holidays=holidays,
            day_windows=br.day_windows,
        )

    saturday = datetime(2026, 3, 7, 13, 59, tzinfo=SP)
    assert check(saturday).allowed
    closed = check(saturday.replace(hour=14, minute=0))
    assert not closed.allowed
    assert closed.next_allowed_at == datetime(2026, 3, 9, 8, tzinfo=SP)
    sunday = check(datetime(2026, 3, 8, 10, tzinfo=SP))
    assert "Sunday is a no-contact day" in sunday.reason
    weekday_evening = check(datetime(2026, 3, 9, 20, tzinfo=SP))
    assert not weekday_evening.allowed
    holiday = check(datetime(2026, 4, 21, 10, tzinfo=SP), frozenset({date(2026, 4, 21)}))
    assert "holiday" in holiday.reason
    assert holiday.next_allowed_at == datetime(2026, 4, 22, 8, tzinfo=SP)


def test_every_day_blocked_has_no_next_opening() -> None:
    decision = contact_window_decision(utc(3, 4, 12), UTC, weekend_days=frozenset(range(7)))
    assert not decision.allowed and decision.next_allowed_at is None


def test_window_validation() -> None:
    with pytest.raises(ValueError):
        ContactWindow(start=time(21), end=time(8))
    with pytest.raises(ValueError, match="unknown time zone"):
        contact_window_decision(utc(3, 4, 12), "Mars/Olympus_Mons")


# --------------------------------------------------------------------------- jurisdictions


def test_stricter_rule_wins_for_massachusetts() -> None:
    rules = effective_rules("US", "MA")
    assert effective_rules("us", "US-MA") == rules
    freq = rules.call_frequency
    assert (freq.max_attempts, freq.period_days, freq.conversation_quiet_days) == (2, 7, 7)
    assert freq.counts_text_messages
    assert "940 CMR 7.04(1)(f)" in freq.name and "1006.14(b)(2)" in freq.name
    subject = ContactSubject(time_zone="America/New_York", country="US", region="MA")
    history = calls([2, 4])
    blocked = outbound_decision(subject, "call", "6175550100", ny(3, 6, 10), history)
    assert not blocked.allowed and "limit 2" in blocked.reason
    assert blocked.next_allowed_at == ny(3, 9, 8).astimezone(UTC)  # window 3..9 has 1 call
    text = outbound_decision(subject, "sms", "6175550100", ny(3, 6, 10), history)
    assert not text.allowed
    federal = ContactSubject(time_zone="America/New_York")
    assert outbound_decision(federal, "call", "6175550100", ny(3, 6, 10), history).allowed


def test_effective_rules_fallbacks() -> None:
    assert effective_rules("US") is BUILTIN_RULE_SETS["US"]
    assert effective_rules("US", "TX") is BUILTIN_RULE_SETS["US"]
    assert effective_rules("FR").name == "DEFAULT"
    assert effective_rules("BR").window == ContactWindow(start=time(8), end=time(20))
    custom = {"XX": RuleSet(name="XX", window=ContactWindow(start=time(9), end=time(17)))}
    assert effective_rules("XX", rule_sets=custom).name == "XX"
    assert effective_rules("YY", rule_sets=custom).name == "DEFAULT"


STRICTER_WINDOW_CASES = [
    pytest.param((time(8), time(21)), (time(9), time(20)), (time(9), time(20)), id="nested"),
    pytest.param((time(8), time(20)), (time(9), time(21)), (time(9), time(20)), id="overlap"),
    pytest.param((time(8), time(21)), (time(8), time(21)), (time(8), time(21)), id="equal"),
]


@pytest.mark.parametrize(("a", "b", "expected"), STRICTER_WINDOW_CASES)
def test_stricter_window_is_the_intersection(
    a: tuple[time, time], b: tuple[time, time], expected: tuple[time, time]
) -> None:
    wa, wb = ContactWindow(start=a[0], end=a[1]), ContactWindow(start=b[0], end=b[1])
    assert stricter(wa, wb) == ContactWindow(start=expected[0], end=expected[1])
    assert stricter(wb, wa) == stricter(wa, wb)


def test_stricter_rule_sets() -> None:
    a = RuleSet(
        name="A",
        window=ContactWindow(start=time(9), end=time(21)),
        weekend_days=frozenset({6}),
        holidays=frozenset({date(2026, 12, 25)}),
    )
    combined = stricter(BUILTIN_RULE_SETS["BR"], a)
    assert combined.window == ContactWindow(start=time(9), end=time(20))
    assert combined.weekend_days == {6}
    assert combined.day_windows == {5: ContactWindow(start=time(9), end=time(14))}
    assert combined.holidays == {date(2026, 12, 25)}
    late_saturday = RuleSet(name="B", day_windows={5: ContactWindow(start=time(15), end=time(18))})
    assert 5 in stricter(BUILTIN_RULE_SETS["BR"], late_saturday).weekend_days
    with pytest.raises(ValueError, match="do not overlap"):
        stricter(
            RuleSet(name="X", window=ContactWindow(start=time(8), end=time(10))),
            RuleSet(name="Y", window=ContactWindow(start=time(11), end=time(12))),
        )


def test_stricter_call_frequency() -> None:
    tight = CallFrequencyRule(max_attempts=3, period_days=7, conversation_quiet_days=7)
    assert stricter(REG_F, tight) is tight
    other = CallFrequencyRule(max_attempts=2, period_days=3, conversation_quiet_days=0)
    combined = stricter(REG_F, other)
    assert (combined.max_attempts, combined.period_days, combined.conversation_quiet_days) == (
        2,
        7,
        7,
    )
    with pytest.raises(TypeError):
        stricter(REG_F, ContactWindow())  # type: ignore[call-overload]


# --------------------------------------------------------------------------- flags and holds

FLAG_CASES = [
    pytest.param({"deceased": True}, "deceased", id="deceased"),
    pytest.param({"bankruptcy": True}, "bankruptcy", id="bankruptcy"),
    pytest.param({"cease_communication": True}, "cease_communication", id="cease"),
    pytest.param({"attorney_represented": True}, "attorney", id="attorney"),
    pytest.param({"dispute_open": True}, "dispute", id="dispute-open"),
    pytest.param({"channel_opt_outs": {"call"}}, "channel_opt_out", id="opt-out"),
    pytest.param({"do_not_contact": {"+1 (617) 555-0100"}}, "do_not_contact", id="dnc"),
    pytest.param({"holds": [CollectionHold(reason="legal review")]}, "hold", id="hold"),
    pytest.param(
        {"deceased": True, "cease_communication": True, "dispute_open": True},
        "deceased",
        id="first-reason-wins",
    ),
    pytest.param(
        {"cease_communication": True, "do_not_contact": {"6175550100"}},
        "cease_communication",
        id="flags-before-addresses",
    ),
]


@pytest.mark.parametrize(("flags", "code"), FLAG_CASES)
def test_flags_block_outreach(flags: dict[str, object], code: str) -> None:
    subject = ContactSubject(time_zone="America/New_York", **flags)  # type: ignore[arg-type]
    decision = outbound_decision(subject, "call", "16175550100", ny(3, 4, 10))
    assert not decision.allowed
    assert decision.code == code
    assert decision.reason
    assert decision.next_allowed_at is None


def test_do_not_contact_matches_per_address() -> None:
    subject = ContactSubject(do_not_contact={"+1 617-555-0100", "Debtor@Example.com"})
    at = utc(3, 4, 15)
    assert not outbound_decision(subject, "sms", "(617) 555 0100", at).allowed
    assert outbound_decision(subject, "sms", "(617) 555 0199", at).allowed
    assert not outbound_decision(subject, "email", " debtor@example.COM", at).allowed
    assert outbound_decision(subject, "email", "other@example.com", at).allowed
    assert outbound_decision(subject, "call", None, at).allowed


def test_channels_and_the_window() -> None:
    """The window applies to every channel but a letter; frequency only to calls."""
    subject = ContactSubject(time_zone="America/New_York")
    night = ny(3, 4, 3)
    assert outbound_decision(subject, "letter", "1 Main St", night).allowed
    for channel in ("call", "sms", "email", "visit"):
        decision = outbound_decision(subject, channel, "x", night)  # type: ignore[arg-type]
        assert decision.code == "contact_window"
        assert decision.next_allowed_at == ny(3, 4, 8).astimezone(UTC)
    full = calls([1, 2, 3, 4])
    full += calls([4, 4, 4], hour=11)
    assert outbound_decision(subject, "email", "a@b.c", ny(3, 4, 12), full).allowed
    assert not outbound_decision(subject, "call", "1", ny(3, 4, 12), full).allowed
    with pytest.raises(ValueError, match="unknown channel"):
        outbound_decision(subject, "fax", "1", ny(3, 4, 12))  # type: ignore[arg-type]


def test_window_must_be_open_in_every_possible_location() -> None:
    """Comment 6(b)(1)(i)-2.i: Eastern mobile number, Pacific address: 11:00-21:00 ET."""
    subject = ContactSubject(
        time_zone="America/Los_Angeles", other_time_zones=("America/New_York",)
    )
    decision = outbound_decision(subject, "call", "1", ny(3, 4, 10))
    assert not decision.allowed
    assert decision.next_allowed_at == ny(3, 4, 11).astimezone(UTC)
    assert outbound_decision(subject, "call", "1", ny(3, 4, 20, 59)).allowed
    assert not outbound_decision(subject, "call", "1", ny(3, 4, 21)).allowed


def test_time_barred_debt_is_allowed_with_a_warning() -> None:
    subject = ContactSubject(time_barred=True)
    decision = outbound_decision(subject, "call", "1", utc(3, 4, 15))
    assert decision.allowed
    assert any("time-barred" in w and "suit" in w for w in decision.warnings)


HOLD_CASES = [
    # (hold, moment, allowed?, next allowed)
    pytest.param(
        CollectionHold(reason="promise to pay", until=date(2026, 3, 10)),
        ny(3, 10, 20),
        False,
        ny(3, 11, 8),
        id="date-hold-through-its-last-day",
    ),
    pytest.param(
        CollectionHold(reason="promise to pay", until=date(2026, 3, 10)),
        ny(3, 11, 8),
        True,
        None,
        id="date-hold-expired",
    ),
    pytest.param(
        CollectionHold(reason="callback", until=ny(3, 10, 14, 30)),
        ny(3, 10, 14),
        False,
        ny(3, 10, 14, 30),
        id="datetime-hold",
    ),
    pytest.param(
        CollectionHold(reason="callback", until=ny(3, 10, 14, 30)),
        ny(3, 10, 14, 30),
        True,
        None,
        id="datetime-hold-ends-at-until",
    ),
    pytest.param(
        CollectionHold(reason="fraud review"), ny(3, 10, 14), False, None, id="indefinite"
    ),
    pytest.param(
        CollectionHold(reason="night hold", until=ny(3, 10, 22)),
        ny(3, 10, 20),
        False,
        ny(3, 11, 8),
        id="hold-ends-outside-window",
    ),
]


@pytest.mark.parametrize(("hold", "moment", "allowed", "next_at"), HOLD_CASES)
def test_holds_expire(
    hold: CollectionHold, moment: datetime, allowed: bool, next_at: datetime | None
) -> None:
    subject = ContactSubject(time_zone="America/New_York", holds=[hold])
    decision = outbound_decision(subject, "call", "1", moment)
    assert decision.allowed is allowed
    assert decision.next_allowed_at == (next_at.astimezone(UTC) if next_at else None)
    if not allowed:
        assert decision.code == "hold" and hold.reason in decision.reason


def test_invoice_holds() -> None:
    hold = CollectionHold(reason="billing error", invoice_id=7, until=date(2026, 3, 20))
    subject = ContactSubject(holds=[hold])
    at = utc(3, 4, 15)
    only_held = outbound_decision(subject, "call", "1", at, invoice_ids=[7])
    assert not only_held.allowed and "invoice 7" in only_held.reason
    assert only_held.next_allowed_at == utc(3, 21, 8)
    mixed = outbound_decision(subject, "call", "1", at, invoice_ids=[7, 8])
    assert mixed.allowed and any("invoice 7" in w for w in mixed.warnings)
    whole = outbound_decision(subject, "call", "1", at)
    assert whole.allowed and whole.warnings
    assert not outbound_decision(subject, "call", "1", at, invoice_ids=[8]).warnings
    with pytest.raises(ValueError, match="timezone-aware"):
        CollectionHold(reason="x", until=datetime(2026, 3, 1, 10))


def test_next_allowed_combines_every_rule() -> None:
    """A hold ending on Saturday in Brazil reopens on Monday at 08:00."""
    hold = CollectionHold(reason="promise", until=date(2026, 3, 6))  # a Friday
    subject = ContactSubject(time_zone="America/Sao_Paulo", country="BR", holds=[hold])
    decision = outbound_decision(subject, "call", "1", datetime(2026, 3, 5, 10, tzinfo=SP))
    assert decision.code == "hold"
    # Saturday 08:00-14:00 is open in BR.
    assert decision.next_allowed_at == datetime(2026, 3, 7, 8, tzinfo=SP).astimezone(UTC)
    sunday_hold = CollectionHold(reason="promise", until=date(2026, 3, 7))
    subject = subject.model_copy(update={"holds": (sunday_hold,)})
    decision = outbound_decision(subject, "call", "1", datetime(2026, 3, 5, 10, tzinfo=SP))
    assert decision.next_allowed_at == datetime(2026, 3, 9, 8, tzinfo=SP).astimezone(UTC)
    # A conversation reopens calls on day 8 at local midnight, the window at 08:00.
    subject = ContactSubject(time_zone="America/New_York")
    history = [CallEvent(ny(3, 1, 23), True)]
    decision = outbound_decision(subject, "call", "1", ny(3, 2, 10), history)
    assert decision.code == "call_frequency"
    assert decision.next_allowed_at == ny(3, 8, 8).astimezone(UTC)


def test_inbound_is_always_allowed() -> None:
    decision = inbound_allowed()
    assert decision.allowed and decision.next_allowed_at is None


# --------------------------------------------------------------------------- validation period


def test_validation_period_end() -> None:
    # Mon 2026-03-02 + 5 business days = Mon 03-09, + 30 days.
    assert validation_period_end(date(2026, 3, 2)) == date(2026, 4, 8)
    # Memorial Day (Mon 2026-05-25) is skipped: receipt Fri 05-29.
    assert validation_period_end(date(2026, 5, 21)) == date(2026, 6, 28)
    holidays = us_legal_public_holidays(2026)
    assert {date(2026, 7, 3), date(2026, 7, 4), date(2026, 11, 26), date(2026, 1, 19)} <= holidays


DISPUTE_CASES = [
    # (dispute, subject extras, allowed?)
    pytest.param(DisputeInfo(received_on=date(2026, 4, 8)), {}, False, id="last-day-of-period"),
    pytest.param(DisputeInfo(received_on=date(2026, 3, 3)), {}, False, id="early-in-period"),
    pytest.param(DisputeInfo(received_on=date(2026, 3, 3), verified=True), {}, True, id="verified"),
    pytest.param(
        DisputeInfo(received_on=date(2026, 3, 3), resolved=True), {}, False, id="resolved-only"
    ),
    pytest.param(DisputeInfo(received_on=date(2026, 4, 9)), {}, True, id="after-period"),
    pytest.param(
        DisputeInfo(received_on=date(2026, 4, 9)),
        {"validation_period_end": date(2026, 4, 10)},
        False,
        id="end-date-from-notice",
    ),
    pytest.param(
        DisputeInfo(received_on=date(2026, 4, 9)),
        {"validation_notice_sent_on": None},
        False,
        id="no-notice-on-file",
    ),
]


@pytest.mark.parametrize(("dispute", "extras", "allowed"), DISPUTE_CASES)
def test_validation_period_dispute(
    dispute: DisputeInfo, extras: dict[str, object], allowed: bool
) -> None:
    fields: dict[str, object] = {"validation_notice_sent_on": date(2026, 3, 2), **extras}
    subject = ContactSubject(disputes=[dispute], **fields)  # type: ignore[arg-type]
    decision = outbound_decision(subject, "letter", "1 Main St", utc(4, 20, 15))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.code == "validation_dispute"
        assert "1006.38(d)(2)" in decision.reason
        assert decision.next_allowed_at is None
    elif not dispute.verified:
        assert any("unresolved dispute" in w for w in decision.warnings)


# --------------------------------------------------------------------------- properties

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/Sao_Paulo"]
# Windows around the 2026 New York DST changes.
BASES = [utc(2, 25), utc(10, 20)]
SPAN_MINUTES = 21 * 24 * 60

rules_st = st.builds(
    CallFrequencyRule,
    max_attempts=st.sampled_from(range(9)),
    period_days=st.sampled_from(range(1, 9)),
    conversation_quiet_days=st.sampled_from(range(9)),
)
event_st = st.tuples(
    st.integers(0, SPAN_MINUTES),  # minutes after the base
    st.sampled_from([False, False, False, True]),  # conversation
    st.sampled_from(["outbound", "outbound", "outbound", "inbound"]),
    st.booleans(),  # voicemail
    st.sampled_from([True, True, True, False]),  # connected
    st.sampled_from([False, False, False, True]),  # consented
)


def _event(base: datetime, spec: tuple[int, bool, str, bool, bool, bool]) -> CallEvent:
    minutes, conversation, direction, voicemail, connected, consented = spec
    return CallEvent(
        base + timedelta(minutes=minutes),
        conversation,
        direction,  # type: ignore[arg-type]
        voicemail,
        connected,
        consented,
    )


def _counted(event: CallEvent) -> bool:
    return (
        event.direction == "outbound"
        and not event.consented
        and not event.wrong_number
        and (event.connected or event.voicemail or event.conversation)
    )


def _assert_within_cap(events: list[CallEvent], rule: CallFrequencyRule, tz: tzinfo) -> None:
    per_day = Counter(e.at.astimezone(tz).date() for e in events if _counted(e))
    for day in per_day:
        for back in range(rule.period_days):
            start = day - timedelta(days=back)
            window = [start + timedelta(days=i) for i in range(rule.period_days)]
            total = sum(per_day[d] for d in window)
            assert total <= rule.max_attempts, (start, total, rule)


def _assert_quiet(events: list[CallEvent], rule: CallFrequencyRule, tz: tzinfo) -> None:
    for i, placed in enumerate(events):
        if placed.direction != "outbound":
            continue
        placed_day = placed.at.astimezone(tz).date()
        for earlier in events[:i]:
            if earlier.conversation and earlier.at <= placed.at:
                gap = (placed_day - earlier.at.astimezone(tz).date()).days
                assert not 0 <= gap < rule.conversation_quiet_days, (earlier, placed, rule)


def _greedy(proposals: list[CallEvent], rule: CallFrequencyRule, tz: tzinfo) -> list[CallEvent]:
    history: list[CallEvent] = []
    for event in proposals:
        if event.direction == "inbound":
            history.append(event)  # inbound contacts are always logged
        elif call_frequency_decision(history, event.at, rule, tz=tz).allowed:
            history.append(event)
    return history


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    specs=st.lists(event_st, max_size=40),
    rule=rules_st,
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(BASES),
)
def test_greedy_chronological_calls_never_breach_the_rule(
    specs: list[tuple[int, bool, str, bool, bool, bool]],
    rule: CallFrequencyRule,
    zone: str,
    base: datetime,
) -> None:
    tz = ZoneInfo(zone)
    proposals = sorted((_event(base, s) for s in specs), key=lambda e: e.at)
    history = _greedy(proposals, rule, tz)
    _assert_within_cap(history, rule, tz)
    _assert_quiet(history, rule, tz)


@PROPERTY_SETTINGS
@given(
    specs=st.lists(event_st, max_size=40),
    rule=rules_st,
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(BASES),
)
def test_calls_in_any_order_never_exceed_the_cap(
    specs: list[tuple[int, bool, str, bool, bool, bool]],
    rule: CallFrequencyRule,
    zone: str,
    base: datetime,
) -> None:
    tz = ZoneInfo(zone)
    history = _greedy([_event(base, s) for s in specs], rule, tz)
    _assert_within_cap(history, rule, tz)


@PROPERTY_SETTINGS
@given(
    specs=st.lists(event_st, max_size=30),
    rule=rules_st,
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(BASES),
    minutes=st.integers(0, SPAN_MINUTES),
    fraction=st.floats(0, 1, exclude_max=True),
)
def test_next_allowed_at_is_the_earliest_allowed_moment(
    specs: list[tuple[int, bool, str, bool, bool, bool]],
    rule: CallFrequencyRule,
    zone: str,
    base: datetime,
    minutes: int,
    fraction: float,
) -> None:
    tz = ZoneInfo(zone)
    history = [_event(base, s) for s in specs]
    at = base + timedelta(minutes=minutes)
    decision = call_frequency_decision(history, at, rule, tz=tz)
    if decision.allowed:
        return
    if decision.next_allowed_at is None:
        assert rule.max_attempts == 0
        return
    nxt = decision.next_allowed_at
    assert nxt > at
    assert nxt.astimezone(tz).time() == time(0)
    assert call_frequency_decision(history, nxt, rule, tz=tz).allowed
    just_before = nxt - timedelta(microseconds=1)
    between = min(at + (nxt - at) * fraction, just_before)
    assert not call_frequency_decision(history, between, rule, tz=tz).allowed
    assert not call_frequency_decision(history, just_before, rule, tz=tz).allowed


@PROPERTY_SETTINGS
@given(
    specs=st.lists(event_st, max_size=20),
    zone=st.sampled_from(ZONES),
    country=st.sampled_from([("US", None), ("US", "MA"), ("BR", None), ("FR", None)]),
    base=st.sampled_from(BASES),
    minutes=st.integers(0, SPAN_MINUTES),
    hold_days=st.one_of(st.none(), st.integers(-3, 10)),
    channel=st.sampled_from(["call", "sms", "email", "visit", "letter"]),
)
def test_outbound_next_allowed_at_is_allowed(
    specs: list[tuple[int, bool, str, bool, bool, bool]],
    zone: str,
    country: tuple[str, str | None],
    base: datetime,
    minutes: int,
    hold_days: int | None,
    channel: str,
) -> None:
    at = base + timedelta(minutes=minutes)
    holds = []
    if hold_days is not None:
        holds.append(CollectionHold(reason="r", until=at.date() + timedelta(days=hold_days)))
    subject = ContactSubject(time_zone=zone, country=country[0], region=country[1], holds=holds)
    history = [_event(base, s) for s in specs]
    decision = outbound_decision(subject, channel, "1", at, history)  # type: ignore[arg-type]
    if decision.allowed or decision.next_allowed_at is None:
        return
    assert decision.next_allowed_at > at
    later = outbound_decision(subject, channel, "1", decision.next_allowed_at, history)  # type: ignore[arg-type]
    assert later.allowed, (decision, later)
