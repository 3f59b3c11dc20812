"""Payment plans, promise evaluation and dispositions: pure domain logic."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from collect_tui.domain.dispositions import (
    CHANNELS,
    DEFAULT,
    DEFAULT_DISPOSITIONS,
    Disposition,
    DispositionSet,
    check_channel,
    is_conversation,
)
from collect_tui.domain.plans import (
    MAX_INSTALLMENTS,
    describe_plan,
    generate_installments,
    installment_dates,
)
from collect_tui.domain.promises import (
    evaluate_installments,
    evaluate_promise,
    validate_promise,
)

D = Decimal
cents = st.integers(min_value=1, max_value=10**10).map(lambda c: D(c) / 100)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
frequencies = st.sampled_from(["weekly", "biweekly", "monthly"])


@st.composite
def plans_by_count(draw: st.DrawFn) -> tuple[Decimal, int]:
    total = draw(cents)
    count = draw(st.integers(1, min(MAX_INSTALLMENTS, int(total * 100))))
    return total, count


@st.composite
def plans_by_amount(draw: st.DrawFn) -> tuple[Decimal, Decimal]:
    total = draw(cents)
    total_cents = int(total * 100)
    smallest = -(-total_cents // MAX_INSTALLMENTS)  # fewest cents that keep count <= 120
    amount = draw(st.integers(smallest, total_cents))
    return total, D(amount) / 100


# --- plans --------------------------------------------------------------------------------


@given(plans_by_count(), days, frequencies)
def test_installments_by_count_sum_to_the_total_and_the_last_absorbs(
    plan: tuple[Decimal, int], first: date, frequency: str
) -> None:
    total, count = plan
    items = generate_installments(total, first, frequency, count=count)  # type: ignore[arg-type]
    assert len(items) == count
    assert sum(i.amount for i in items) == total
    assert [i.no for i in items] == list(range(1, count + 1))
    regular = {i.amount for i in items[:-1]}
    assert len(regular) <= 1
    assert all(i.amount > 0 and i.amount == i.amount.quantize(D("0.01")) for i in items)
    if regular:
        (base,) = regular
        # the last takes the leftover cents: never less, and less than one cent per installment
        assert base <= items[-1].amount < base + D("0.01") * count


@given(plans_by_amount(), days, frequencies)
def test_installments_by_amount_sum_to_the_total(
    plan: tuple[Decimal, Decimal], first: date, frequency: str
) -> None:
    total, amount = plan
    items = generate_installments(total, first, frequency, amount=amount)  # type: ignore[arg-type]
    assert sum(i.amount for i in items) == total
    assert all(i.amount == amount for i in items[:-1])
    assert 0 < items[-1].amount <= amount
    assert len(items) == -(-int(total * 100) // int(amount * 100)) <= MAX_INSTALLMENTS


@given(days, st.sampled_from(["weekly", "biweekly"]), st.integers(1, MAX_INSTALLMENTS))
def test_weekly_dates_step_by_one_or_two_weeks(first: date, frequency: str, count: int) -> None:
    dates = installment_dates(first, frequency, count)  # type: ignore[arg-type]
    step = 7 if frequency == "weekly" else 14
    assert dates == [first + timedelta(days=step * n) for n in range(count)]


@given(days, st.integers(1, MAX_INSTALLMENTS))
def test_monthly_dates_keep_the_day_or_the_month_end(first: date, count: int) -> None:
    dates = installment_dates(first, "monthly", count)
    assert dates == [first + relativedelta(months=n) for n in range(count)]
    for n, due in enumerate(dates):
        last_day = calendar.monthrange(due.year, due.month)[1]
        assert due.day == min(first.day, last_day)
        assert (due.year * 12 + due.month) - (first.year * 12 + first.month) == n


def test_a_plan_starting_jan_31_goes_to_each_month_end() -> None:
    items = generate_installments(D("1000.00"), date(2024, 1, 31), "monthly", count=5)
    assert [i.due_date for i in items] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]
    non_leap = installment_dates(date(2025, 1, 31), "monthly", 3)
    assert non_leap == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]
    thirtieth = installment_dates(date(2025, 1, 30), "monthly", 3)
    assert thirtieth == [date(2025, 1, 30), date(2025, 2, 28), date(2025, 3, 30)]


def test_rounding_goes_to_the_last_installment() -> None:
    items = generate_installments(D("100.00"), date(2026, 1, 5), "weekly", count=3)
    assert [i.amount for i in items] == [D("33.33"), D("33.33"), D("33.34")]
    items = generate_installments(D("100.00"), date(2026, 1, 5), "biweekly", amount=D("30"))
    assert [i.amount for i in items] == [D("30.00")] * 3 + [D("10.00")]
    assert describe_plan(items, "biweekly", "USD") == (
        "4 biweekly installments of USD 30.00 from 2026-01-05 (last USD 10.00)"
    )


@pytest.mark.parametrize(
    ("total", "kwargs", "message"),
    [
        (D("0"), {"count": 3}, "more than zero"),
        (D("-5"), {"count": 3}, "more than zero"),
        (D("100"), {"count": 0}, "1 to 120"),
        (D("100"), {"count": 121}, "1 to 120"),
        (D("100"), {"amount": D("150")}, "more than the total"),
        (D("100"), {"amount": D("0")}, "more than zero"),
        (D("100"), {"amount": D("0.5")}, "at most 120"),
        (D("100"), {}, "either"),
        (D("100"), {"count": 2, "amount": D("50")}, "either"),
        (D("0.02"), {"count": 3}, "a cent or more"),
        (D("10.001"), {"count": 2}, "whole cents"),
    ],
)
def test_bad_plans_are_refused_clearly(
    total: Decimal, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate_installments(total, date(2026, 1, 1), "monthly", **kwargs)  # type: ignore[arg-type]


def test_unknown_frequency_and_float_are_refused() -> None:
    with pytest.raises(ValueError, match="frequency"):
        generate_installments(D("10"), date(2026, 1, 1), "daily", count=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Decimal"):
        generate_installments(10.0, date(2026, 1, 1), "weekly", count=2)  # type: ignore[arg-type]


# --- promises -----------------------------------------------------------------------------

DUE = date(2026, 3, 10)  # grace (3 days) ends 2026-03-13
MADE = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("payments", "today", "status", "paid"),
    [
        ([], date(2026, 3, 5), "pending", "0"),
        ([], DUE, "pending", "0"),
        ([], date(2026, 3, 13), "pending", "0"),  # last day of grace
        ([], date(2026, 3, 14), "broken", "0"),
        ([(date(2026, 3, 4), D("100"))], date(2026, 3, 5), "kept", "100"),  # early: kept now
        ([(date(2026, 3, 12), D("100"))], date(2026, 3, 20), "kept", "100"),  # within grace
        ([(date(2026, 3, 14), D("100"))], date(2026, 3, 20), "broken", "0"),  # after grace
        ([(date(2026, 2, 27), D("100"))], date(2026, 3, 20), "broken", "0"),  # before promise
        ([(date(2026, 3, 5), D("40"))], date(2026, 3, 12), "pending", "40"),
        ([(date(2026, 3, 5), D("40"))], date(2026, 3, 14), "partially_kept", "40"),
        ([(date(2026, 3, 5), D("40")), (date(2026, 3, 11), D("60"))], DUE, "pending", "40"),
        (
            [(date(2026, 3, 5), D("40")), (date(2026, 3, 11), D("60"))],
            date(2026, 3, 11),
            "kept",
            "100",
        ),
        ([(date(2026, 3, 10), D("150"))], date(2026, 3, 14), "kept", "150"),
    ],
)
def test_promise_evaluation_table(
    payments: list[tuple[date, Decimal]], today: date, status: str, paid: str
) -> None:
    result = evaluate_promise(D("100"), DUE, payments, today=today, created_on=MADE)
    assert (result.status, result.paid) == (status, D(paid))


def test_grace_period_is_configurable() -> None:
    late = [(date(2026, 3, 11), D("100"))]
    assert evaluate_promise(D("100"), DUE, late, today=date(2026, 3, 20), grace_days=0).status == (
        "broken"
    )
    assert evaluate_promise(D("100"), DUE, [], today=date(2026, 3, 11), grace_days=0).status == (
        "broken"
    )
    with pytest.raises(ValueError):
        evaluate_promise(D("100"), DUE, [], today=DUE, grace_days=-1)


@given(
    st.lists(st.tuples(days, cents), max_size=6),
    days,
    st.integers(0, 10),
)
def test_evaluation_is_consistent(
    payments: list[tuple[date, Decimal]], today: date, grace: int
) -> None:
    result = evaluate_promise(D("50"), DUE, payments, today=today, grace_days=grace)
    end = min(today, DUE + timedelta(days=grace))
    counted = sum((a for d, a in payments if d <= end), D("0"))
    assert result.paid == counted
    if counted >= 50:
        assert result.status == "kept"
    elif today <= DUE + timedelta(days=grace):
        assert result.status == "pending"
    else:
        assert result.status == ("partially_kept" if counted > 0 else "broken")


def test_installments_share_payments_in_order() -> None:
    plan = [
        (D("100"), date(2026, 1, 10)),
        (D("100"), date(2026, 2, 10)),
        (D("100"), date(2026, 3, 10)),
    ]
    # one payment early covers the first installment only
    one = evaluate_installments(plan, [(date(2026, 1, 9), D("100"))], today=date(2026, 2, 20))
    assert [r.status for r in one] == ["kept", "broken", "pending"]
    # a large payment covers the later ones too; a late one goes to the next installment
    big = evaluate_installments(plan, [(date(2026, 1, 9), D("250"))], today=date(2026, 1, 20))
    assert [(r.status, r.paid) for r in big] == [
        ("kept", D("100")),
        ("kept", D("100")),
        ("pending", D("50")),
    ]
    late = evaluate_installments(plan, [(date(2026, 1, 20), D("100"))], today=date(2026, 2, 1))
    assert [r.status for r in late] == ["broken", "kept", "pending"]


@given(st.lists(st.tuples(days, cents), max_size=6), days)
def test_installments_never_count_a_payment_twice(
    payments: list[tuple[date, Decimal]], today: date
) -> None:
    plan = [(D("30"), date(2026, 1, 1) + timedelta(days=14 * n)) for n in range(5)]
    results = evaluate_installments(plan, payments, today=today)
    assert sum(r.paid for r in results) <= sum((a for _, a in payments), D("0"))
    assert all(0 <= r.paid <= amount for r, (amount, _) in zip(results, plan, strict=True))


def test_promise_validation() -> None:
    today = date(2026, 3, 1)
    assert validate_promise(D("50"), today, D("100"), today) == []
    assert validate_promise(D("100"), today + timedelta(days=30), D("100"), today) == []
    errors = validate_promise(D("0"), today - timedelta(days=1), D("100"), today)
    assert {e.field for e in errors} == {"amount", "due_date"}
    assert "past" in errors[0].message
    assert validate_promise(D("50"), today + timedelta(days=31), D("100"), today)[0].field == (
        "due_date"
    )
    assert "balance" in validate_promise(D("100.01"), today, D("100"), today)[0].message
    assert "cents" in validate_promise(D("1.001"), today, D("100"), today)[0].message
    assert validate_promise(D("50"), today + timedelta(days=45), D("100"), today, 60) == []


# --- dispositions -------------------------------------------------------------------------


def test_default_dispositions() -> None:
    codes = [d.code for d in DEFAULT]
    assert codes == [
        "right_party",
        "no_answer",
        "left_message",
        "wrong_number",
        "promise",
        "refused",
        "dispute",
        "paid",
        "callback_requested",
        "deceased_reported",
        "cease_requested",
    ]
    assert len({d.key for d in DEFAULT_DISPOSITIONS}) == len(DEFAULT_DISPOSITIONS)
    assert DEFAULT.get("right_party").label == "Right-party contact"
    assert DEFAULT.get("promise").needs_promise and DEFAULT.get("promise").conversation
    assert DEFAULT.get("callback_requested").needs_callback
    assert not DEFAULT.get("no_answer").conversation
    assert DEFAULT.by_key("p") == DEFAULT.get("promise")
    assert DEFAULT.get("left_message") not in DEFAULT.for_channel("email")
    assert is_conversation(DEFAULT.get("right_party"), "call")
    assert not is_conversation(DEFAULT.get("right_party"), "email")
    assert set(CHANNELS) == {"call", "email", "sms", "letter", "visit"}
    with pytest.raises(ValueError, match="unknown disposition"):
        DEFAULT.get("nope")
    with pytest.raises(ValueError, match="channel"):
        check_channel("fax", "outbound")
    with pytest.raises(ValueError, match="direction"):
        check_channel("call", "sideways")


def test_dispositions_are_configurable_and_checked() -> None:
    custom = DispositionSet.from_config(
        [
            {"code": "rpc", "label": "Spoke to debtor", "key": "r", "conversation": True},
            {"code": "busy", "label": "Line busy", "key": "b", "channels": ["call"]},
        ]
    )
    assert [d.code for d in custom] == ["rpc", "busy"]
    with pytest.raises(ValueError, match="quick key"):
        DispositionSet([Disposition("a", "A", "x"), Disposition("b", "B", "x")])
    with pytest.raises(ValueError, match="twice"):
        DispositionSet([Disposition("a", "A", "x"), Disposition("a", "B", "y")])
    with pytest.raises(ValueError, match="one character"):
        Disposition("a", "A", "xy")
    with pytest.raises(ValueError, match="bad disposition"):
        DispositionSet.from_config([{"code": "a", "label": "A", "key": "a", "colour": "red"}])
