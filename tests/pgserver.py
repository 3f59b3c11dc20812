"""Throwaway PostgreSQL server for the test suite (stdlib + psycopg only).

Usage::

    with PostgresServer() as pg:
        url = pg.create_database("t1")      # postgresql+psycopg://postgres@127.0.0.1:PORT/t1
        ...

Each server lives in its own ``tempfile.mkdtemp`` directory under ``/tmp`` and
listens only on 127.0.0.1 on a freshly picked port (plus a unix socket in that
directory), so several pytest processes can run servers side by side.  When the
current user is root (initdb refuses to run as root), initdb/pg_ctl are run as
the unprivileged ``postgres`` system user via ``runuser`` (or ``su``).
Servers that were not stopped explicitly are stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

__all__ = ["PostgresServer", "find_pg_bin", "postgres_available"]

PG_SYSTEM_USER = "postgres"
_SEARCH_GLOB = "/usr/lib/postgresql/*/bin"
_PORT_RETRIES = 5
_START_TIMEOUT = 30  # seconds; pg_ctl -w waits at most this long


def find_pg_bin(name: str) -> str | None:
    """Path of a PostgreSQL executable: PATH first, then /usr/lib/postgresql/<ver>/bin
    (highest version wins).  None if not found."""
    found = shutil.which(name)
    if found:
        return found

    def version(bindir: str) -> tuple[int, ...]:
        ver = Path(bindir).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", ver)) or (-1,)

    for bindir in sorted(glob.glob(_SEARCH_GLOB), key=version, reverse=True):
        candidate = os.path.join(bindir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _system_user_ids() -> tuple[int, int] | None:
    try:
        import pwd

        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


def _user_switch_prefix() -> list[str] | None:
    """Command prefix running a command as the postgres user; [] when not root."""
    if not _is_root():
        return []
    runuser = shutil.which("runuser") or (
        "/usr/sbin/runuser" if os.access("/usr/sbin/runuser", os.X_OK) else None
    )
    if runuser:
        return [runuser, "-u", PG_SYSTEM_USER, "--"]
    su = shutil.which("su") or ("/bin/su" if os.access("/bin/su", os.X_OK) else None)
    if su:
        return [su, PG_SYSTEM_USER, "-s", "/bin/sh", "-c"]  # needs a single shell string
    return None


def postgres_available() -> str | None:
    """None when a server can be started here, else a human-readable reason."""
    for name in ("initdb", "pg_ctl"):
        if find_pg_bin(name) is None:
            return f"PostgreSQL binary {name!r} not found on PATH or in {_SEARCH_GLOB}"
    if _is_root():
        if _system_user_ids() is None:
            return f"running as root but there is no {PG_SYSTEM_USER!r} system user"
        if _user_switch_prefix() is None:
            return f"running as root but neither runuser nor su can switch to {PG_SYSTEM_USER!r}"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no server log: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<server log empty>"


_live: set[PostgresServer] = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):  # best effort at exit
            server.stop()


class PostgresServer:
    """A throwaway PostgreSQL cluster in a fresh temp dir, listening on 127.0.0.1:``port``."""

    def __init__(
        self, *, start_timeout: int = _START_TIMEOUT, max_connections: int = 50,
        durable: bool = False,
    ) -> None:  # fmt: skip
        """``durable`` keeps PostgreSQL's crash-safe defaults (fsync, synchronous commit) for
        benchmarks; tests run without them."""
        self.port: int | None = None
        self.base_dir: Path | None = None
        self.start_timeout = start_timeout
        self.max_connections = max_connections
        self.durable = durable
        self._running = False

    # -- paths -------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "server.log"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> PostgresServer:
        if self._running:
            return self
        reason = postgres_available()
        if reason:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
        assert initdb and pg_ctl

        # /tmp rather than pytest's tmp_path: /tmp/pytest-of-root is not
        # traversable by the postgres user.
        self.base_dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp"))
        with _live_lock:
            _live.add(self)
        try:
            if _is_root():
                ids = _system_user_ids()
                assert ids is not None
                os.chown(self.base_dir, *ids)
            os.chmod(self.base_dir, 0o700)
            self._run(
                [
                    initdb,
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                what="initdb",
            )
            self._configure()
            self._start_postmaster(pg_ctl)
        except BaseException:
            self._cleanup_dir()
            raise
        return self

    def _configure(self) -> None:
        conf = self.data_dir / "postgresql.conf"
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.base_dir}'",
            f"max_connections = {self.max_connections}",
            "logging_collector = off",
        ]
        if self.durable:  # PostgreSQL's defaults, as a real server runs
            settings.append("shared_buffers = 128MB")
        else:  # a throwaway server for tests: nothing needs to survive a crash
            settings += [
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "shared_buffers = 32MB",
            ]
        with conf.open("a") as fh:  # file stays owned by postgres
            fh.write("\n# --- added by tests/pgserver.py ---\n" + "\n".join(settings) + "\n")
        # Only local socket and 127.0.0.1, both trusted.
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )

    def _start_postmaster(self, pg_ctl: str) -> None:
        # The port is chosen before the server binds it, so another process may
        # grab it in between: retry with a fresh port in that case.
        for attempt in range(_PORT_RETRIES):
            self.port = _free_port()
            try:
                self._run(
                    [
                        pg_ctl,
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-w",
                        "-t",
                        str(self.start_timeout),
                        "-o",
                        f"-p {self.port}",
                        "start",
                    ],
                    what="pg_ctl start",
                    timeout=self.start_timeout + 15,
                )
            except RuntimeError as exc:
                port_clash = any(
                    s in str(exc)
                    for s in ("Address already in use", "could not create any TCP/IP sockets")
                )
                if port_clash and attempt + 1 < _PORT_RETRIES:
                    self._pg_ctl_stop(pg_ctl, quiet=True)
                    continue
                raise
            self._running = True
            return

    def stop(self) -> None:
        """Stop the server immediately (pg_ctl stop -m immediate) and delete its directory."""
        try:
            if self._running:
                pg_ctl = find_pg_bin("pg_ctl")
                if pg_ctl:
                    self._pg_ctl_stop(pg_ctl, quiet=False)
                self._running = False
        finally:
            self._cleanup_dir()

    def _pg_ctl_stop(self, pg_ctl: str, *, quiet: bool) -> None:
        try:
            self._run(
                [pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
                what="pg_ctl stop",
                timeout=30,
            )
        except RuntimeError:
            if not quiet:
                raise

    def _cleanup_dir(self) -> None:
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------
    def _run(self, argv: list[str], *, what: str, timeout: float = 60) -> None:
        prefix = _user_switch_prefix()
        assert prefix is not None
        # su takes the command as a single shell string; runuser takes argv.
        su_style = bool(prefix) and prefix[-1] == "-c"
        cmd = [*prefix, shlex.join(argv)] if su_style else [*prefix, *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ=env.get("TZ", "UTC"))
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.base_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"{what} timed out after {timeout}s\n--- server log tail ---\n"
                f"{_tail(self.log_file)}"
            ) from exc
        if proc.returncode != 0:
            raise RuntimeError(
                f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                f"--- output ---\n{(proc.stdout + proc.stderr).strip()}\n"
                f"--- server log tail ---\n{_tail(self.log_file)}"
            )

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for ``dbname`` on this server."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def _admin_execute(self, statement: object) -> None:
        import psycopg

        if not self._running:
            raise RuntimeError("server not started")
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        from psycopg import sql

        self._admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (if it exists), disconnecting any sessions."""
        from psycopg import sql

        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresServer {state} port={self.port} dir={self.base_dir}>"
