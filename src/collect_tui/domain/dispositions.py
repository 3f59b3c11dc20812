"""Disposition codes (the outcome of a contact), channels and directions.

The list is configurable: :meth:`DispositionSet.from_config` builds one from plain
mappings (e.g. a settings file) and checks codes and quick keys are unique. The
``conversation`` property feeds the Regulation F rule (no call within 7 days after a
telephone conversation about the debt).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Channel = Literal["call", "email", "sms", "letter", "visit"]
Direction = Literal["outbound", "inbound"]
CHANNELS: tuple[str, ...] = get_args(Channel)
DIRECTIONS: tuple[str, ...] = get_args(Direction)
# Channels on which a disposition's conversation is a real (spoken) conversation.
SPOKEN_CHANNELS: frozenset[str] = frozenset({"call", "visit"})
# Debtor flags a disposition may set.
SETTABLE_FLAGS: frozenset[str] = frozenset({"cease_communication", "deceased"})


@dataclass(frozen=True)
class Disposition:
    """One outcome code with its label, one-key shortcut and what it implies."""

    code: str
    label: str
    key: str
    conversation: bool = False
    needs_promise: bool = False
    needs_callback: bool = False
    sets_flag: str | None = None
    channels: frozenset[str] = field(default_factory=lambda: frozenset(CHANNELS))

    def __post_init__(self) -> None:
        if not self.code or len(self.code) > 32 or not self.code.replace("_", "").isalnum():
            raise ValueError(f"a disposition code is 1-32 letters, digits or _: {self.code!r}")
        if not self.label.strip():
            raise ValueError(f"the disposition {self.code!r} needs a label")
        if len(self.key) != 1 or self.key.isspace():
            raise ValueError(f"the quick key of {self.code!r} must be one character")
        if self.sets_flag is not None and self.sets_flag not in SETTABLE_FLAGS:
            raise ValueError(f"{self.code!r} cannot set the flag {self.sets_flag!r}")
        unknown = set(self.channels) - set(CHANNELS)
        if unknown or not self.channels:
            raise ValueError(f"{self.code!r} has unknown or no channels: {sorted(unknown)}")

    def allowed_on(self, channel: str) -> bool:
        """True when this outcome makes sense for a contact on ``channel``."""
        return channel in self.channels


DEFAULT_DISPOSITIONS: tuple[Disposition, ...] = (
    Disposition("right_party", "Right-party contact", "r", conversation=True),
    Disposition("no_answer", "No answer", "n"),
    Disposition("left_message", "Left message (voicemail)", "v", channels=frozenset({"call"})),
    Disposition(
        "wrong_number", "Wrong number", "w", channels=frozenset({"call", "sms", "email", "letter"})
    ),
    Disposition("promise", "Promise to pay", "p", conversation=True, needs_promise=True),
    Disposition("refused", "Refused to pay", "x", conversation=True),
    Disposition("dispute", "Dispute", "d", conversation=True),
    Disposition("paid", "Says paid", "a", conversation=True),
    Disposition(
        "callback_requested", "Callback requested", "c", conversation=True, needs_callback=True
    ),
    Disposition("deceased_reported", "Deceased reported", "e", sets_flag="deceased"),
    Disposition(
        "cease_requested",
        "Cease communication requested",
        "s",
        conversation=True,
        sets_flag="cease_communication",
    ),
)


class DispositionSet:
    """An ordered, validated list of dispositions, looked up by code or quick key."""

    def __init__(self, items: Iterable[Disposition]) -> None:
        self._items = tuple(items)
        if not self._items:
            raise ValueError("the disposition list is empty")
        self._by_code: dict[str, Disposition] = {}
        self._by_key: dict[str, Disposition] = {}
        for item in self._items:
            if item.code in self._by_code:
                raise ValueError(f"the disposition code {item.code!r} is listed twice")
            if item.key in self._by_key:
                raise ValueError(
                    f"the quick key {item.key!r} is used by both "
                    f"{self._by_key[item.key].code!r} and {item.code!r}"
                )
            self._by_code[item.code] = item
            self._by_key[item.key] = item

    @classmethod
    def from_config(cls, items: Iterable[Mapping[str, Any]]) -> DispositionSet:
        """Build a list from mappings with the fields of :class:`Disposition`."""
        built = []
        for raw in items:
            data = dict(raw)
            if "channels" in data:
                data["channels"] = frozenset(data["channels"])
            try:
                built.append(Disposition(**data))
            except TypeError as exc:
                raise ValueError(f"bad disposition entry {raw!r}: {exc}") from None
        return cls(built)

    def __iter__(self) -> Iterator[Disposition]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Disposition:
        """The disposition with ``code``; ``ValueError`` naming the valid ones otherwise."""
        try:
            return self._by_code[code]
        except KeyError:
            raise ValueError(
                f"unknown disposition {code!r}; use one of {', '.join(self._by_code)}"
            ) from None

    def by_key(self, key: str) -> Disposition | None:
        """The disposition whose quick key is ``key``, if any."""
        return self._by_key.get(key)

    def for_channel(self, channel: str) -> list[Disposition]:
        """The dispositions that make sense on ``channel``, in list order."""
        return [item for item in self._items if item.allowed_on(channel)]


DEFAULT = DispositionSet(DEFAULT_DISPOSITIONS)


def check_channel(channel: str, direction: str) -> None:
    """``ValueError`` unless ``channel`` and ``direction`` are known ones."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use one of {', '.join(DIRECTIONS)}")


def is_conversation(disposition: Disposition, channel: str) -> bool:
    """True when the contact was a spoken conversation with the debtor (Reg F)."""
    return disposition.conversation and channel in SPOKEN_CHANNELS
