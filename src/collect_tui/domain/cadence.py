"""The collection rule (cadence): ordered steps relative to an invoice's due date.

Pure (pydantic only). A segment's :class:`Cadence` lists :class:`CadenceStep` in order
of ``offset_days`` (D-5 is -5, D+30 is 30). Each open invoice walks through its steps:

* the **current step** of an invoice on ``today`` is the last step whose day
  (``due_date + offset_days``) is on or before ``today``; only it may become a task, so
  a run after a pause does not send a week-old reminder and a call together: the steps
  it skipped are passed over for good;
* a step becomes a task once per invoice (``(debtor, invoice, step key)`` is unique) and
  is never repeated, whatever happens later;
* a step is **suspended** while a condition in its ``suspend_on`` holds (``promise``: a
  pending promise or installment; ``dispute``: an open dispute on the account or the
  invoice). It is not skipped: when the condition ends, the current step goes ahead.
* steps of a contact channel (email, sms, call, letter) are never created for an account
  flagged cease communication, bankruptcy or deceased; ``escalate`` (a supervisor
  review) still is.

``email`` and ``sms`` steps are automatic (the delivery service sends them); ``call``,
``letter`` and ``escalate`` are tasks for people. :func:`current_step` and
:func:`step_to_create` are the reference semantics that the set-based SQL of
``collect_tui.services.cadence`` implements.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["email", "sms", "call", "letter", "escalate"]
ACTIONS: tuple[Action, ...] = ("email", "sms", "call", "letter", "escalate")
AUTOMATIC_ACTIONS: frozenset[str] = frozenset({"email", "sms"})
CONTACT_ACTIONS: frozenset[str] = frozenset({"email", "sms", "call", "letter"})
Suspension = Literal["promise", "dispute"]

_KEY = re.compile(r"^[a-z0-9][a-z0-9_+\-]{0,47}$")


class CadenceStep(BaseModel):
    """One step: on day ``due_date + offset_days``, do ``action``.

    ``key`` names the step (unique in its segment; stored on the task so the step is
    never repeated). ``template``: the message template of an email or sms step (file
    name without extension, see the templates folder). ``suspend_on``: what pauses it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    offset_days: int = Field(ge=-365, le=3650)
    action: Action
    template: str | None = None
    suspend_on: frozenset[Suspension] = frozenset({"promise", "dispute"})
    description: str = ""

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(
                "a step key is 1-48 lower-case letters, digits, '_', '-' or '+' "
                f"(starting with a letter or digit): {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _template(self) -> CadenceStep:
        if self.action in AUTOMATIC_ACTIONS and not self.template:
            raise ValueError(f"an {self.action} step needs a template")
        return self

    @property
    def automatic(self) -> bool:
        """True for steps the system delivers itself (email, sms)."""
        return self.action in AUTOMATIC_ACTIONS

    @property
    def label(self) -> str:
        """``D-5 email``, ``D0 sms``, ``D+30 letter``."""
        sign = "" if self.offset_days == 0 else ("+" if self.offset_days > 0 else "-")
        return f"D{sign}{abs(self.offset_days) if self.offset_days else 0} {self.action}"

    def day(self, due_date: date) -> date:
        """The day this step falls on for an invoice due on ``due_date``."""
        return due_date + timedelta(days=self.offset_days)


class Cadence(BaseModel):
    """The ordered steps of one segment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[CadenceStep, ...]

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: tuple[CadenceStep, ...]) -> tuple[CadenceStep, ...]:
        if not steps:
            raise ValueError("a cadence needs at least one step")
        keys = [s.key for s in steps]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"step keys must be unique: {', '.join(dupes)}")
        offsets = [s.offset_days for s in steps]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("steps must be in order of offset_days, one step per day")
        return steps

    def step(self, key: str) -> CadenceStep | None:
        """The step named ``key``, if any."""
        return next((s for s in self.steps if s.key == key), None)

    def windows(self) -> list[tuple[CadenceStep, int, int | None]]:
        """Each step with the offsets during which it is current: ``[start, end)``."""
        out: list[tuple[CadenceStep, int, int | None]] = []
        for index, step in enumerate(self.steps):
            nxt = self.steps[index + 1].offset_days if index + 1 < len(self.steps) else None
            out.append((step, step.offset_days, nxt))
        return out


DEFAULT_STEPS: tuple[CadenceStep, ...] = (
    CadenceStep(
        key="d-5-email",
        offset_days=-5,
        action="email",
        template="reminder_email",
        description="friendly reminder before the due date",
    ),
    CadenceStep(
        key="d0-sms",
        offset_days=0,
        action="sms",
        template="due_today_sms",
        description="due-today text message",
    ),
    CadenceStep(key="d+3-call", offset_days=3, action="call", description="first call"),
    CadenceStep(key="d+15-call", offset_days=15, action="call", description="second call"),
    CadenceStep(key="d+30-letter", offset_days=30, action="letter", template="overdue_letter"),
    CadenceStep(
        key="d+60-escalate",
        offset_days=60,
        action="escalate",
        suspend_on=frozenset({"promise"}),
        description="supervisor review",
    ),
)
DEFAULT_CADENCE = Cadence(steps=DEFAULT_STEPS)
DEFAULT_SEGMENT = "standard"


def cadence_for(segment: str, cadences: Mapping[str, Cadence]) -> Cadence | None:
    """The cadence of ``segment``, else the ``standard`` one (None: no cadence at all)."""
    return cadences.get(segment) or cadences.get(DEFAULT_SEGMENT)


def current_step(cadence: Cadence, due_date: date, today: date) -> CadenceStep | None:
    """The last step whose day is on or before ``today`` (None before the first step)."""
    found = None
    for step in cadence.steps:
        if step.day(due_date) <= today:
            found = step
    return found


def step_to_create(
    cadence: Cadence,
    due_date: date,
    today: date,
    *,
    done_keys: Collection[str] = (),
    promise: bool = False,
    dispute: bool = False,
    contact_blocked: bool = False,
) -> CadenceStep | None:
    """The step that should become a task for an open invoice today, if any.

    ``done_keys``: steps already turned into tasks for this invoice; ``promise`` /
    ``dispute``: a pending promise / an open dispute; ``contact_blocked``: the account is
    flagged cease communication, bankruptcy or deceased.
    """
    step = current_step(cadence, due_date, today)
    if step is None or step.key in done_keys:
        return None
    if ("promise" in step.suspend_on and promise) or ("dispute" in step.suspend_on and dispute):
        return None
    if contact_blocked and step.action in CONTACT_ACTIONS:
        return None
    return step
