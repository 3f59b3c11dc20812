"""A realistic synthetic portfolio, deterministic for a seed and an as-of date.

Names, amounts, flags and date offsets depend only on ``seed``; dates are laid relative
to ``as_of`` (today by default) so the aging spread looks the same whenever it is run.
Rows are generated in chunks and written with set-based bulk inserts in one transaction:
a failure leaves nothing half-written.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from collect_tui.services.compliance import block_recently_called
from collect_tui.services.scoring import record_rescore_day
from collect_tui.storage.bulk import bulk_insert, next_ids, reset_sequences, sql_timestamp
from collect_tui.storage.engine import vacuum_analyze
from collect_tui.storage.scoring import rescore

CHUNK = 5_000
PART_MIN = 20_000  # debtors per part below which a seed runs in one process
MAX_PARTS = 8  # SQLite attaches at most 10 databases at once

# country: (weight, currency, language, [(time zone, region)], phone prefix)
COUNTRIES: dict[str, tuple[int, str, str, list[tuple[str, str | None]], str]] = {
    "US": (
        45,
        "USD",
        "en",
        [
            ("America/New_York", "NY"),
            ("America/New_York", "MA"),
            ("America/Chicago", "IL"),
            ("America/Chicago", "TX"),
            ("America/Denver", "CO"),
            ("America/Phoenix", "AZ"),
            ("America/Los_Angeles", "CA"),
        ],
        "+1",
    ),
    "GB": (10, "GBP", "en", [("Europe/London", None)], "+44"),
    "DE": (7, "EUR", "de", [("Europe/Berlin", None)], "+49"),
    "FR": (5, "EUR", "fr", [("Europe/Paris", None)], "+33"),
    "BR": (10, "BRL", "pt", [("America/Sao_Paulo", "SP"), ("America/Manaus", "AM")], "+55"),
    "AU": (6, "AUD", "en", [("Australia/Sydney", "NSW"), ("Australia/Perth", "WA")], "+61"),
    "NZ": (3, "NZD", "en", [("Pacific/Auckland", None)], "+64"),
    "CA": (6, "CAD", "en", [("America/Toronto", "ON"), ("America/Vancouver", "BC")], "+1"),
    "MX": (4, "MXN", "es", [("America/Mexico_City", None)], "+52"),
    "IN": (4, "INR", "en", [("Asia/Kolkata", None)], "+91"),
}

FIRST_NAMES = {
    "en": [
        "James",
        "Mary",
        "Robert",
        "Patricia",
        "John",
        "Jennifer",
        "Michael",
        "Linda",
        "David",
        "Elizabeth",
        "William",
        "Susan",
        "Richard",
        "Jessica",
        "Joseph",
        "Sarah",
        "Thomas",
        "Karen",
        "Priya",
        "Aiden",
        "Olivia",
        "Noah",
        "Emma",
        "Liam",
    ],
    "de": [
        "Lukas",
        "Anna",
        "Leon",
        "Mia",
        "Finn",
        "Lea",
        "Jonas",
        "Lena",
        "Paul",
        "Hannah",
        "Felix",
        "Sophie",
        "Max",
        "Laura",
    ],
    "fr": [
        "Lucas",
        "Chloe",
        "Hugo",
        "Ines",
        "Louis",
        "Lea",
        "Jules",
        "Manon",
        "Arthur",
        "Camille",
        "Adam",
        "Sarah",
        "Paul",
    ],
    "pt": [
        "Joao",
        "Maria",
        "Pedro",
        "Ana",
        "Lucas",
        "Julia",
        "Gabriel",
        "Beatriz",
        "Rafael",
        "Larissa",
        "Mateus",
        "Camila",
    ],
    "es": [
        "Santiago",
        "Sofia",
        "Mateo",
        "Valentina",
        "Diego",
        "Regina",
        "Sebastian",
        "Camila",
        "Emiliano",
        "Ximena",
    ],
}
LAST_NAMES = {
    "en": [
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Miller",
        "Davis",
        "Wilson",
        "Taylor",
        "Clark",
        "Lewis",
        "Walker",
        "Hall",
        "Young",
        "King",
        "Wright",
        "Patel",
        "Singh",
        "Nguyen",
        "Campbell",
        "Murphy",
        "Kelly",
    ],
    "de": [
        "Muller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
    ],
    "fr": [
        "Martin",
        "Bernard",
        "Dubois",
        "Thomas",
        "Robert",
        "Richard",
        "Petit",
        "Durand",
        "Leroy",
        "Moreau",
    ],
    "pt": [
        "Silva",
        "Santos",
        "Oliveira",
        "Souza",
        "Rodrigues",
        "Ferreira",
        "Alves",
        "Pereira",
        "Lima",
        "Gomes",
    ],
    "es": [
        "Hernandez",
        "Garcia",
        "Martinez",
        "Lopez",
        "Gonzalez",
        "Perez",
        "Rodriguez",
        "Sanchez",
        "Ramirez",
    ],
}
COMPANY_WORDS = [
    "Acme",
    "Northwind",
    "Contoso",
    "Blue",
    "Harbor",
    "Summit",
    "Redwood",
    "Atlas",
    "Pioneer",
    "Evergreen",
    "Granite",
    "Silverline",
    "Orchard",
    "Beacon",
    "Cedar",
    "Horizon",
    "Keystone",
    "Lakeside",
    "Meridian",
    "Sterling",
]
COMPANY_KINDS = [
    "Trading",
    "Logistics",
    "Foods",
    "Builders",
    "Supplies",
    "Clinic",
    "Studio",
    "Motors",
    "Farms",
    "Tech",
]
COMPANY_SUFFIX = {"en": "Ltd", "de": "GmbH", "fr": "SARL", "pt": "Ltda", "es": "SA de CV"}
STREETS = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Lake",
    "Hill",
    "Park",
    "River",
    "Church",
    "Market",
    "Station",
]
AGENT_NAMES = [
    "alice",
    "bruno",
    "chen",
    "dana",
    "elif",
    "farah",
    "gustavo",
    "hana",
    "ivan",
    "julia",
    "kofi",
    "lena",
    "marco",
    "nadia",
    "omar",
    "paula",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "wen",
    "ximena",
    "yusuf",
    "zoe",
]

# 1-8 invoices per debtor, mean about 4.8: index with a uniform draw in [0, 100).
INVOICE_COUNTS = [n for n, share in zip(range(1, 9), (8, 10, 12, 14, 14, 14, 14, 14), strict=True)
                  for _ in range(share)]  # fmt: skip

# Disposition codes of past contacts with their weights.
DISPOSITIONS = (
    ("no_answer", 40),
    ("left_message", 20),
    ("right_party", 12),
    ("promise", 12),
    ("callback_requested", 5),
    ("refused", 5),
    ("wrong_number", 3),
    ("dispute", 1),
    ("paid", 2),
)
CONVERSATION_DISPOSITIONS = {"right_party", "promise", "callback_requested", "refused", "dispute"}


@dataclass
class SeedStats:
    """Counts of what a seed run wrote."""

    rows: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> Callable[[], str]:
    values = [value for value, _ in pairs]
    cumulative = []
    total = 0
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    choices = rng.choices

    def pick() -> str:
        return choices(values, cum_weights=cumulative)[0]

    return pick


def _agent_names(count: int) -> list[str]:
    names = []
    for i in range(count):
        base = AGENT_NAMES[i % len(AGENT_NAMES)]
        names.append(base if i < len(AGENT_NAMES) else f"{base}{i // len(AGENT_NAMES) + 1}")
    return names


SEED_TABLES = (
    "agents",
    "debtors",
    "phones",
    "emails",
    "invoices",
    "payments",
    "contacts",
    "promises",
    "disputes",
    "tasks",
)

DEBTOR_COLUMNS = (
    "id", "external_id", "name", "is_company", "contact_person", "tax_id", "address",
    "country", "region", "time_zone", "language", "preferred_channel", "segment", "currency",
    "cease_communication", "dispute", "bankruptcy", "deceased", "time_barred",
    "validation_notice_on", "assigned_agent_id", "open_balance", "open_invoices",
    "oldest_due_date", "last_contact_at", "next_action_at", "next_action", "priority_score",
    "priority_reason", "created_at", "updated_at", "version",
)  # fmt: skip
INVOICE_COLUMNS = (
    "id", "external_id", "debtor_id", "number", "issue_date", "due_date", "currency", "total",
    "amount_due", "amount_paid", "status", "source_updated_at", "synced_at", "version",
)  # fmt: skip
PAYMENT_COLUMNS = (
    "id", "external_id", "debtor_id", "invoice_id", "amount", "currency", "paid_on",
    "received_at", "applied", "status",
)  # fmt: skip
CONTACT_COLUMNS = (
    "id", "debtor_id", "agent_id", "channel", "direction", "address", "started_at",
    "disposition", "conversation", "notes", "created_at",
)  # fmt: skip
PROMISE_COLUMNS = (
    "id", "debtor_id", "invoice_id", "agent_id", "contact_id", "amount", "currency",
    "due_date", "status", "amount_paid", "created_at", "version",
)  # fmt: skip
DISPUTE_COLUMNS = (
    "id", "debtor_id", "invoice_id", "agent_id", "reason", "status", "received_on",
    "created_at", "version",
)  # fmt: skip
PHONE_COLUMNS = ("id", "debtor_id", "number", "kind", "do_not_call", "sms_consent")
EMAIL_COLUMNS = ("id", "debtor_id", "address", "do_not_email")
TASK_COLUMNS = (
    "id", "debtor_id", "agent_id", "kind", "due_at", "status", "note", "created_at", "version",
)  # fmt: skip

_PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "debtors": DEBTOR_COLUMNS,
    "phones": PHONE_COLUMNS,
    "emails": EMAIL_COLUMNS,
    "invoices": INVOICE_COLUMNS,
    "payments": PAYMENT_COLUMNS,
    "contacts": CONTACT_COLUMNS,
    "promises": PROMISE_COLUMNS,
    "disputes": DISPUTE_COLUMNS,
    "tasks": TASK_COLUMNS,
}


def seed_portfolio(
    engine: Engine,
    *,
    debtors: int,
    agents: int,
    seed: int,
    as_of: date | None = None,
    demo_agent: str | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> SeedStats:
    """Write a synthetic portfolio of ``debtors`` accounts over ``agents`` agents.

    Adds to whatever the database holds (ids continue after the highest in use) and
    always creates a supervisor and an admin if missing; ``demo_agent`` names an extra
    agent who gets a share of the accounts. ``progress`` is called with the number of
    debtors written as they land. The whole seed is one transaction.
    """
    if debtors < 0 or agents < 1:
        raise ValueError("need at least one agent and a non-negative number of debtors")
    today = as_of or datetime.now(UTC).date()
    now = datetime.now(UTC).replace(tzinfo=None)
    stats = SeedStats()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # a seed is one transaction: durability comes from its commit
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-200000")
            conn.commit()
        try:
            with conn.begin():
                agent_ids = _write_agents(conn, agents, demo_agent, now, stats)
                plan = _PartPlan(seed, today, now, agent_ids, debtors)
                if sqlite and plan.parts > 1 and (workers or os.cpu_count() or 1) > 1:
                    _write_parts_in_parallel(conn, plan, stats, progress, workers)
                else:
                    _write_parts_in_process(conn, plan, stats, progress)
                reset_sequences(conn, SEED_TABLES)
                # The generated calls are relative to ``today``: block as of its time of day.
                block_recently_called(conn, datetime.combine(today, now.time(), UTC))
                rescore(conn, today=today, now=now.replace(tzinfo=UTC))
                record_rescore_day(conn, today)
        finally:
            if sqlite:
                for alias in conn.exec_driver_sql("PRAGMA database_list").fetchall():
                    if alias[1].startswith("seedpart"):
                        conn.exec_driver_sql(f"DETACH DATABASE {alias[1]}")
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.commit()
    if sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    else:
        vacuum_analyze(engine)
    return stats


AGENT_COLUMNS = (
    "id", "name", "display_name", "role", "team", "settlement_limit", "capacity", "active",
    "created_at", "version",
)  # fmt: skip


def _write_agents(
    conn: Connection, agents: int, demo_agent: str | None, now: datetime, stats: SeedStats
) -> list[int]:
    """Create the named agents, a supervisor and an admin where missing; returns agent ids."""
    stamp = sql_timestamp(now)
    existing = {row[0] for row in conn.exec_driver_sql("SELECT name FROM agents").fetchall()}
    names = _agent_names(agents)
    if demo_agent:
        names = [demo_agent, *[n for n in names if n != demo_agent]][:agents]
    next_agent = next_ids(conn, ["agents"])["agents"]
    rows = []
    people = [(name, "agent", "500.00") for name in names]
    people += [("supervisor", "supervisor", "100000.00"), ("admin", "admin", "0")]
    for name, role, limit in people:
        if name not in existing:
            rows.append(
                (next_agent, name, name.capitalize(), role, "collections", limit, None, True,
                 stamp, 1)
            )  # fmt: skip
            next_agent += 1
    stats.add("agents", bulk_insert(conn, "agents", AGENT_COLUMNS, rows))
    by_name = dict(
        conn.exec_driver_sql("SELECT name, id FROM agents WHERE role = 'agent'").fetchall()
    )
    return [by_name[name] for name in names if name in by_name]


@dataclass(frozen=True)
class _PartPlan:
    """How a seed is cut into independently generated parts (fixed for a given size)."""

    seed: int
    today: date
    now: datetime
    agent_ids: list[int]
    debtors: int

    @property
    def parts(self) -> int:
        return max(1, min(MAX_PARTS, -(-self.debtors // PART_MIN)))

    def part_sizes(self) -> list[int]:
        base, extra = divmod(self.debtors, self.parts)
        return [base + (1 if i < extra else 0) for i in range(self.parts)]


def _write_parts_in_process(
    conn: Connection,
    plan: _PartPlan,
    stats: SeedStats,
    progress: Callable[[int], None] | None,
) -> None:
    ids = next_ids(conn, SEED_TABLES)
    for part, size in enumerate(plan.part_sizes()):
        generator = _Generator(plan.seed, part, plan.today, plan.now, plan.agent_ids, ids)
        for chunk_size, tables in generator.chunks(size):
            for table, (columns, rows) in tables.items():
                stats.add(table, bulk_insert(conn, table, columns, rows))
            if progress:
                progress(chunk_size)
        ids = generator.ids


# Columns holding ids of rows generated in the same part, by the table they point at.
_ID_COLUMNS = {"id": None, "debtor_id": "debtors", "invoice_id": "invoices",
               "contact_id": "contacts"}  # fmt: skip


# Text columns derived from a row's own id, rebuilt from the shifted id when merging.
_DERIVED_FROM_ID = {
    ("debtors", "external_id"): "printf('cust-%08d', {id})",
    ("invoices", "external_id"): "printf('inv-%08d', {id})",
    ("invoices", "number"): "printf('INV-%07d', {id})",
    ("payments", "external_id"): "printf('pay-%08d', {id})",
}


def _merge_expression(table: str, column: str, offsets: dict[str, int]) -> str:
    """The SELECT expression that moves one column of a part into the shared id space."""
    if (table, column) in _DERIVED_FROM_ID:
        return _DERIVED_FROM_ID[table, column].format(id=f"(id + {offsets[table]})")
    if column in _ID_COLUMNS:
        return f"{column} + {offsets[_ID_COLUMNS[column] or table]}"
    return column


def _write_parts_in_parallel(
    conn: Connection,
    plan: _PartPlan,
    stats: SeedStats,
    progress: Callable[[int], None] | None,
    workers: int | None,
) -> None:
    """Generate parts into scratch SQLite files in worker processes, then merge them.

    Each worker numbers its rows from 1; the merge shifts every id column by the ids
    already in use, in one ``INSERT ... SELECT`` per table that runs inside SQLite.
    """
    ids = next_ids(conn, SEED_TABLES)
    scratch = tempfile.mkdtemp(prefix="collect-tui-seed-")
    context = multiprocessing.get_context("spawn")
    jobs = [
        (plan.seed, part, plan.today, plan.now, plan.agent_ids, size,
         os.path.join(scratch, f"part{part}.db"))
        for part, size in enumerate(plan.part_sizes())
    ]  # fmt: skip
    try:
        with ProcessPoolExecutor(max_workers=workers or 2, mp_context=context) as pool:
            for part, (path, counts) in enumerate(pool.map(_generate_part, jobs)):
                alias = f"seedpart{part}"
                conn.exec_driver_sql(f"ATTACH DATABASE '{path}' AS {alias}")
                offsets = {table: ids[table] - 1 for table in SEED_TABLES}
                for table, columns in _PART_COLUMNS.items():
                    exprs = [_merge_expression(table, col, offsets) for col in columns]
                    conn.exec_driver_sql(
                        f"INSERT INTO {table} ({', '.join(columns)}) "
                        f"SELECT {', '.join(exprs)} FROM {alias}.{table}"
                    )
                    stats.add(table, counts[table])
                    ids[table] += counts[table]
                if progress:
                    progress(jobs[part][5])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _generate_part(
    job: tuple[int, int, date, datetime, list[int], int, str],
) -> tuple[str, dict[str, int]]:
    """Worker: generate one part into a scratch SQLite file; returns its path and counts."""
    seed, part, today, now, agent_ids, size, path = job
    ones = dict.fromkeys(SEED_TABLES, 1)
    generator = _Generator(seed, part, today, now, agent_ids, ones)
    counts = dict.fromkeys(_PART_COLUMNS, 0)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        for table, columns in _PART_COLUMNS.items():
            db.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        db.execute("BEGIN")
        for _, tables in generator.chunks(size):
            for table, (columns, rows) in tables.items():
                marks = ", ".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                counts[table] += len(rows)
        db.execute("COMMIT")
    finally:
        db.close()
    return path, counts


VARIANTS = 16_384


@dataclass(frozen=True, slots=True)
class _InvoiceVariant:
    issue_day: str
    due_day: str
    due_offset: int
    total: str
    amount_due: str
    amount_paid: str
    due_cents: int
    status: str
    updated: str
    paid_day: str | None
    paid_stamp: str


Tables = dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]


_VARIANT_CACHE: dict[
    tuple[int, date, int], tuple[list[_InvoiceVariant], list[_InvoiceVariant]]
] = {}


class _Generator:
    """Generates chunks of related rows; all randomness comes from one seeded RNG."""

    def __init__(
        self,
        seed: int,
        part: int,
        today: date,
        now: datetime,
        agent_ids: list[int],
        ids: dict[str, int],
    ) -> None:
        # Each part has its own random stream, so parts can be generated in any order
        # or in parallel and the portfolio is still the same for the same seed.
        self.rng = rng = random.Random(f"{seed}/{part}")
        self.today = today
        self.now = now
        self.stamp = sql_timestamp(now)
        self.agent_ids = agent_ids
        self.ids = dict(ids)
        self.countries = list(COUNTRIES)
        self.country_weights = [COUNTRIES[c][0] for c in self.countries]
        self.pick_disposition = _weighted(rng, DISPOSITIONS)
        self.iso_cache: dict[int, str] = {}
        self.utc_shift_cache: dict[tuple[str, int], int] = {}
        # Times of day at minute resolution, in the stored timestamp text form.
        self.clocks = [f" {m // 60:02d}:{m % 60:02d}:00.000000" for m in range(1440)]
        # A payment received today is stamped no later than now (its minute is drawn,
        # then capped): seeding for the real today, the variants depend on the minute.
        self.now_minute = now.hour * 60 + now.minute if now.date() == today else 1439
        key = (seed, today, self.now_minute)
        if key not in _VARIANT_CACHE:
            variant_rng = random.Random(f"{seed}/invoices")
            _VARIANT_CACHE.clear()
            _VARIANT_CACHE[key] = (
                [self._invoice_variant(variant_rng, 1) for _ in range(VARIANTS)],
                [self._invoice_variant(variant_rng, 8) for _ in range(VARIANTS)],
            )
        self.person_variants, self.company_variants = _VARIANT_CACHE[key]

    def _invoice_variant(self, rng: random.Random, scale: int) -> _InvoiceVariant:
        """One draw of an invoice's dates, amounts and status (ids are added per use).

        Drawing 2 x 16,384 variants up front and sampling them per invoice keeps the
        realistic spread while making each generated invoice a handful of operations.
        """
        r = rng.random()
        if r < 0.15:
            due_offset = rng.randint(1, 30)
        elif r < 0.40:
            due_offset = -rng.randint(1, 30)
        elif r < 0.60:
            due_offset = -rng.randint(31, 60)
        elif r < 0.75:
            due_offset = -rng.randint(61, 90)
        elif r < 0.85:
            due_offset = -rng.randint(91, 120)
        else:
            due_offset = -rng.randint(121, 720)
        terms = rng.choice((14, 30, 30, 45, 60))
        total = max(1_000, int(rng.lognormvariate(10.3, 0.9))) * scale  # median about 300.00
        s = rng.random()
        if s < 0.12 and due_offset < 20:
            status, paid = "paid", total
        elif s < 0.14:
            status, paid = "voided", 0
        elif s < 0.145:
            status, paid = "deleted", 0
        else:
            status = "open"
            paid = int(total * rng.random() * 0.8) if rng.random() < 0.2 else 0
        due = total - paid if status == "open" else 0
        paid_offset = min(0, due_offset + rng.randint(-10, 20))
        updated = self._day(-rng.randint(1, 30)) + self.clocks[rng.randrange(1440)]
        paid_minute = rng.randrange(1440)
        if paid_offset == 0:
            paid_minute = min(paid_minute, self.now_minute)
        return _InvoiceVariant(
            issue_day=self._day(due_offset - terms),
            due_day=self._day(due_offset),
            due_offset=due_offset,
            total=_money(total),
            amount_due=_money(due),
            amount_paid=_money(paid),
            due_cents=due,
            status=status,
            updated=updated,
            paid_day=self._day(paid_offset) if paid else None,
            paid_stamp=self._day(paid_offset) + self.clocks[paid_minute],
        )

    def _day(self, offset: int) -> str:
        """ISO date of today + offset days, cached (there are few distinct offsets)."""
        text = self.iso_cache.get(offset)
        if text is None:
            text = (self.today + timedelta(days=offset)).isoformat()
            self.iso_cache[offset] = text
        return text

    def _local_stamp(self, zone: str, day_offset: int, minute: int) -> str:
        """The stored UTC timestamp of a local time of day on today + ``day_offset`` in ``zone``."""
        key = (zone, day_offset)
        shift = self.utc_shift_cache.get(key)
        if shift is None:
            tz = ZoneInfo(zone)
            local_noon = datetime.combine(self.today + timedelta(days=day_offset), time(12), tz)
            offset = local_noon.utcoffset()
            shift = int(offset.total_seconds() // 60) if offset else 0
            self.utc_shift_cache[key] = shift
        utc_minute = minute - shift
        return self._day(day_offset + utc_minute // 1440) + self.clocks[utc_minute % 1440]

    def _name(self, language: str) -> tuple[str, str]:
        rng = self.rng
        lang = language if language in FIRST_NAMES else "en"
        first = rng.choice(FIRST_NAMES[lang])
        last = rng.choice(LAST_NAMES[lang])
        return first, last

    def chunks(self, debtors: int) -> Iterator[tuple[int, Tables]]:
        """Generate ``debtors`` accounts in chunks of related rows."""
        done = 0
        while done < debtors:
            size = min(CHUNK, debtors - done)
            yield size, self.chunk(size)
            done += size

    def chunk(self, size: int) -> Tables:  # noqa: C901
        rng = self.rng
        random_ = rng.random

        def randint(low: int, high: int) -> int:
            # Several times faster than Random.randint, and as deterministic.
            return low + int(random_() * (high - low + 1))

        ids = self.ids
        person_variants = self.person_variants
        company_variants = self.company_variants
        local_stamp = self._local_stamp
        pick_disposition = self.pick_disposition
        debtors, phones, emails, invoices, payments = [], [], [], [], []
        contacts, promises, disputes, tasks = [], [], [], []
        countries = rng.choices(self.countries, weights=self.country_weights, k=size)
        for country in countries:
            debtor_id = ids["debtors"]
            ids["debtors"] += 1
            _, currency, language, zones, prefix = COUNTRIES[country]
            zone, region = zones[randint(0, len(zones) - 1)]
            first, last = self._name(language)
            is_company = random_() < 0.3
            if is_company:
                name = (
                    f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} "
                    f"{COMPANY_SUFFIX.get(language, 'Ltd')}"
                )
                contact_person = f"{first} {last}"
                tax_id = f"{country}{randint(10_000_000, 99_999_999)}"
                segment = "commercial"
            else:
                name = f"{first} {last}"
                contact_person = None
                tax_id = None
                segment = "consumer"
            address = f"{randint(1, 999)} {rng.choice(STREETS)} St" + (
                f", {region}" if region else ""
            )
            roll = random_()
            cease = roll < 0.01
            bankruptcy = 0.01 <= roll < 0.015
            deceased = 0.015 <= roll < 0.017
            time_barred = random_() < 0.02
            agent_id = (
                self.agent_ids[randint(0, len(self.agent_ids) - 1)] if random_() < 0.92 else None
            )

            # Phones and emails.
            for n in range(1 if random_() < 0.6 else 2):
                phones.append(
                    (ids["phones"], debtor_id,
                     f"{prefix} {randint(200, 989)} {randint(100, 999)} {randint(1000, 9999)}",
                     ("mobile", "home", "work")[n if not is_company else 2],
                     random_() < 0.03, random_() < 0.5)
                )  # fmt: skip
                ids["phones"] += 1
            if random_() < 0.85:
                local = name.lower().replace(" ", ".")[:40]
                emails.append((ids["emails"], debtor_id, f"{local}{randint(1, 999)}@example.com",
                               random_() < 0.02))  # fmt: skip
                ids["emails"] += 1

            # Invoices with an aging spread, some paid in part or in full.
            variants = company_variants if is_company else person_variants
            open_cents = 0
            open_count = 0
            oldest_due: int | None = None
            open_invoice_ids: list[int] = []
            for _ in range(INVOICE_COUNTS[int(random_() * 100)]):
                invoice_id = ids["invoices"]
                ids["invoices"] += 1
                v = variants[int(random_() * VARIANTS)]
                invoices.append(
                    (invoice_id, f"inv-{invoice_id:08d}", debtor_id, f"INV-{invoice_id:07d}",
                     v.issue_day, v.due_day, currency, v.total, v.amount_due, v.amount_paid,
                     v.status, v.updated, self.stamp, 1)
                )  # fmt: skip
                if v.paid_day:
                    payment_id = ids["payments"]
                    ids["payments"] += 1
                    payments.append(
                        (payment_id, f"pay-{payment_id:08d}", debtor_id, invoice_id,
                         v.amount_paid, currency, v.paid_day, v.paid_stamp, True, "active")
                    )  # fmt: skip
                if v.due_cents:
                    open_cents += v.due_cents
                    open_count += 1
                    open_invoice_ids.append(invoice_id)
                    if oldest_due is None or v.due_offset < oldest_due:
                        oldest_due = v.due_offset

            # Past contacts, promises, disputes and callbacks on overdue accounts.
            last_contact: str | None = None
            next_action_at: str | None = None
            next_action: str | None = None
            dispute_flag = False
            if oldest_due is not None and oldest_due < 0 and agent_id is not None:
                for _ in range(randint(0, 4)):
                    days_ago = randint(1, 60)
                    started = local_stamp(zone, -days_ago, randint(540, 1199))
                    disposition = pick_disposition()
                    contact_id = ids["contacts"]
                    ids["contacts"] += 1
                    contacts.append(
                        (contact_id, debtor_id, agent_id, "call", "outbound", None, started,
                         disposition, disposition in CONVERSATION_DISPOSITIONS, None, started)
                    )  # fmt: skip
                    # Stored timestamps sort as text, so max() of the strings is the latest.
                    if last_contact is None or started > last_contact:
                        last_contact = started
                    if disposition == "promise" and open_cents > 0:
                        due_in = days_ago - randint(3, 14)
                        amount = max(1_000, int(open_cents * (0.2 + 0.8 * random_())))
                        amount = min(amount, open_cents)
                        if due_in >= 0:
                            promise_status, promise_paid = "pending", 0
                        else:
                            p = random_()
                            if p < 0.5:
                                promise_status, promise_paid = "kept", amount
                            elif p < 0.6:
                                promise_status, promise_paid = "partially_kept", amount // 2
                            else:
                                promise_status, promise_paid = "broken", 0
                        promises.append(
                            (ids["promises"], debtor_id, open_invoice_ids[0], agent_id,
                             contact_id, _money(amount), currency, self._day(-due_in),
                             promise_status, _money(promise_paid), started, 1)
                        )  # fmt: skip
                        ids["promises"] += 1
                    elif disposition == "dispute" and not dispute_flag:
                        dispute_flag = True
                        disputes.append(
                            (ids["disputes"], debtor_id, open_invoice_ids[0], agent_id,
                             "Debtor says the goods were not received", "open",
                             self._day(-days_ago), started, 1)
                        )  # fmt: skip
                        ids["disputes"] += 1
                    elif disposition == "callback_requested" and days_ago <= 3:
                        due_at = local_stamp(zone, randint(0, 2), randint(9, 18) * 60)
                        tasks.append(
                            (ids["tasks"], debtor_id, agent_id, "callback", due_at,
                             "open", "Debtor asked to be called back", started, 1)
                        )  # fmt: skip
                        ids["tasks"] += 1
                        if next_action_at is None or due_at < next_action_at:
                            next_action_at, next_action = due_at, "callback"

            oldest_due_text = self._day(oldest_due) if oldest_due is not None else None
            days_late = max(0, -(oldest_due or 0))
            score = (
                round(min(days_late, 365) * 0.1 + open_cents / 1_000_000, 3) if open_cents else 0.0
            )
            debtors.append(
                (debtor_id, f"cust-{debtor_id:08d}", name, is_company, contact_person, tax_id,
                 address, country, region, zone, language,
                 "email" if is_company and random_() < 0.5 else "call", segment, currency,
                 cease, dispute_flag, bankruptcy, deceased, time_barred,
                 self._day(oldest_due - 5) if oldest_due is not None and oldest_due < -5 else None,
                 agent_id, _money(open_cents), open_count, oldest_due_text,
                 last_contact, next_action_at, next_action,
                 score, None, self.stamp, self.stamp, 1)
            )  # fmt: skip
        return {
            "debtors": (DEBTOR_COLUMNS, debtors),
            "phones": (PHONE_COLUMNS, phones),
            "emails": (EMAIL_COLUMNS, emails),
            "invoices": (INVOICE_COLUMNS, invoices),
            "payments": (PAYMENT_COLUMNS, payments),
            "contacts": (CONTACT_COLUMNS, contacts),
            "promises": (PROMISE_COLUMNS, promises),
            "disputes": (DISPUTE_COLUMNS, disputes),
            "tasks": (TASK_COLUMNS, tasks),
        }
