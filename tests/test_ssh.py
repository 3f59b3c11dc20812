"""Agents over plain OpenSSH: a real sshd on 127.0.0.1 with the README's ForceCommand block.

The test creates a Unix user (the agent) and group, its own host key, client key and
authorized_keys, starts ``/usr/sbin/sshd -D`` on a free port, logs in with ``ssh -tt``
inside a pseudo-terminal and reads the queue the remote collect-tui paints. Needs root and
openssh-server: in CI (CI=true) their absence fails the test, elsewhere it skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import in_ci

from collect_tui import cli

SSHD = Path("/usr/sbin/sshd")
DISPLAY_NAME = "Ssh Tester"
TITLE = f"{DISPLAY_NAME} (agent)  queue"
ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)


def _unavailable() -> str | None:
    if sys.platform != "linux":
        return "sshd test needs Linux"
    if os.geteuid() != 0:
        return "sshd test needs root (it creates a Unix user for the agent)"
    if not SSHD.exists():
        return "openssh-server is not installed (/usr/sbin/sshd missing)"
    for tool in ("ssh", "ssh-keygen", "useradd", "userdel", "groupadd", "groupdel"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


@dataclass
class SshSite:
    """A running test sshd and the agent who may log in."""

    port: int
    user: str
    key: Path
    known_hosts: Path
    db_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _entry_point(base: Path, user: str) -> Path:
    """The collect-tui the agent runs: this virtualenv's, if the agent may execute it.

    A virtualenv made from a Python under /root (pyenv) is out of the agent's reach, as it
    would be in production; then a thin virtualenv from the system Python of the same
    version, pointed at this one's site-packages, stands in for the README's /opt install.
    """
    ours = Path(sys.executable).with_name("collect-tui")
    probe = ["runuser", "-u", user, "--", str(ours), "--version"]
    if subprocess.run(probe, capture_output=True, timeout=60).returncode == 0:
        return ours
    system = Path("/usr/bin/python3")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    check = [str(system), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"]
    found = subprocess.run(check, capture_output=True, text=True).stdout.strip()
    if found != version:
        raise RuntimeError(f"the agent cannot run {ours} and /usr/bin/python3 is not {version}")
    venv = base / "venv"
    _run(str(system), "-m", "venv", "--without-pip", str(venv))
    site_packages = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    target = next(venv.glob("lib/python*/site-packages"))
    (target / "collect_tui_shim.pth").write_text(
        f"import site; site.addsitedir({str(site_packages)!r})\n"
    )
    script = venv / "bin" / "collect-tui"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom collect_tui.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return script


def _sshd_config(base: Path, port: int, group: str, db_url: str, collect_tui: Path) -> str:
    """The README's block, plus what a throwaway server on a free port needs."""
    return f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {base}/host_key
PidFile {base}/sshd.pid
AuthorizedKeysFile {base}/authorized_keys/%u
# The key files live under /tmp (world-writable), which StrictModes would refuse.
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PermitUserEnvironment no
AllowGroups {group}
# Deliberately lax: even if a client may send LOGNAME/USER, the agent is the login account.
AcceptEnv LANG LC_* COLORTERM NO_COLOR LOGNAME USER

Match Group {group}
    ForceCommand {collect_tui} --login-agent --db {db_url}
    PermitTTY yes
    X11Forwarding no
    AllowTcpForwarding no
    AllowAgentForwarding no
    AllowStreamLocalForwarding no
    PermitTunnel no
    PermitUserRC no
    AuthenticationMethods publickey
"""


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"sshd exited with {proc.returncode}: {err}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError("sshd did not start listening")


def _seed(db_url: str, user: str) -> None:
    """A small portfolio; the agent is added and given accounts the documented way."""
    assert cli.main(["seed", "--db", db_url, "--debtors", "30", "--agents", "2"]) == 0
    add = ["agent", "add", user, "--display-name", DISPLAY_NAME, "--db", db_url]
    assert cli.main(add) == 0
    rebalance = ["rebalance", "--db", db_url, "--as", "supervisor", "--apply"]
    assert cli.main(rebalance) == 0


@pytest.fixture(scope="module")
def ssh_site() -> Iterator[SshSite]:
    """An agent user, a portfolio it can write, and sshd with the ForceCommand block."""
    reason = _unavailable()
    if reason is not None:
        if in_ci():
            pytest.fail(f"the SSH test must run in CI: {reason}")
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}"
    user, group = f"ctssh{tag}", f"ctcoll{tag}"
    base = Path(tempfile.mkdtemp(prefix="collect-tui-ssh-", dir="/tmp"))
    base.chmod(0o755)
    sshd: subprocess.Popen[bytes] | None = None
    created_user = created_group = False
    try:
        _run("groupadd", group)
        created_group = True
        _run("useradd", "--no-create-home", "--home-dir", str(base), "--shell", "/bin/sh",
             "--gid", group, user)  # fmt: skip
        created_user = True
        _run("usermod", "--password", "*", user)  # key login only, but not "locked"
        data = base / "data"
        data.mkdir()
        db_url = f"sqlite:///{data}/portfolio.db"
        _seed(db_url, user)
        _run("chown", "-R", f"{user}:{group}", str(data))
        data.chmod(0o770)

        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_key"))
        key = base / "agent_key"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        keys = base / "authorized_keys"
        keys.mkdir(mode=0o755)
        shutil.copy(f"{key}.pub", keys / user)
        (keys / user).chmod(0o644)
        host_pub = (base / "host_key.pub").read_text().split()
        port = _free_port()
        known_hosts = base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        config = base / "sshd_config"
        entry = _entry_point(base, user)
        config.write_text(_sshd_config(base, port, group, db_url, entry))
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True, capture_output=True)
        sshd = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_for_port(port, sshd)
        yield SshSite(port=port, user=user, key=key, known_hosts=known_hosts, db_url=db_url)
    finally:
        if sshd is not None:
            sshd.terminate()
            try:
                sshd.wait(10)
            except subprocess.TimeoutExpired:
                sshd.kill()
                sshd.wait()
            if sshd.stderr:
                sshd.stderr.close()
        if created_user:
            for _ in range(20):  # sessions end when sshd closes them; userdel waits for that
                if subprocess.run(["userdel", user], capture_output=True).returncode == 0:
                    break
                time.sleep(0.25)
        if created_group:
            subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Session:
    """What one SSH login showed and how it ended."""

    raw: bytes
    text: str
    status: int

    def colour_modes(self) -> set[str]:
        """Colour encodings in the SGR sequences: "16", "256" and/or "truecolor"."""
        modes: set[str] = set()
        for params in re.findall(rb"\x1b\[([0-9;]*)m", self.raw):
            codes = [int(code) for code in params.split(b";") if code]
            i = 0
            while i < len(codes):
                if codes[i] in (38, 48) and i + 1 < len(codes):
                    modes.add("256" if codes[i + 1] == 5 else "truecolor")
                    i += 3 if codes[i + 1] == 5 else 5
                    continue
                if 30 <= codes[i] <= 37 or 40 <= codes[i] <= 47 or 90 <= codes[i] <= 107:
                    modes.add("16")
                i += 1
        return modes


def _ssh(
    site: SshSite,
    *,
    term: str,
    options: tuple[str, ...] = ("-tt",),
    remote: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    until: str | None = TITLE,
    timeout: float = 30.0,
) -> Session:
    """Log in from inside an 80x24 pseudo-terminal; once ``until`` shows, press q."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    argv = ["ssh", *options, "-p", str(site.port), "-i", str(site.key),
            "-o", f"UserKnownHostsFile={site.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-F", "/dev/null",
            "--", f"{site.user}@127.0.0.1", *remote]  # fmt: skip
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": term, "HOME": "/root"}
    child_env.update(env or {})
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=child_env, start_new_session=True
    )
    os.close(slave)
    raw = b""
    pressed = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the client exited and closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
            elif proc.poll() is not None:
                break
            if until and not pressed and until in ANSI.sub(b"", raw).decode(errors="replace"):
                time.sleep(0.3)  # let the first paint finish, then quit the app
                os.write(master, b"q")
                pressed = True
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return Session(raw=raw, text=ANSI.sub(b"", raw).decode(errors="replace"), status=status)


def test_agent_logs_in_over_ssh_and_sees_own_queue(ssh_site: SshSite) -> None:
    """The SSH user is the agent: --agent in the client's command and LOGNAME/USER sent by
    the client are ignored; 256-colour terminal gets 256 colours."""
    session = _ssh(
        ssh_site,
        term="xterm-256color",
        options=("-tt", "-o", "SetEnv=LOGNAME=supervisor USER=supervisor"),
        remote=("--agent", "supervisor"),
    )
    assert TITLE in session.text, session.text[-2000:]
    assert "(supervisor)" not in session.text
    assert "256" in session.colour_modes()
    assert "truecolor" not in session.colour_modes()
    assert session.status == 0


def test_truecolor_and_linux_console_colours(ssh_site: SshSite) -> None:
    """COLORTERM (sent with SendEnv) gives true colour; TERM=linux gets the 16 ANSI colours."""
    true = _ssh(
        ssh_site,
        term="screen-256color",
        options=("-tt", "-o", "SendEnv=COLORTERM"),
        env={"COLORTERM": "truecolor"},
    )
    assert TITLE in true.text
    assert "truecolor" in true.colour_modes()
    linux = _ssh(ssh_site, term="linux")
    assert TITLE in linux.text
    assert linux.colour_modes() == {"16"}
    assert true.status == linux.status == 0


def test_dumb_terminal_and_no_tty_get_a_clear_message(ssh_site: SshSite) -> None:
    """TERM=dumb and a login without a terminal end with one line, not a broken screen."""
    dumb = _ssh(ssh_site, term="dumb", until=None)
    assert "TERM='dumb'" in dumb.text and "xterm-256color" in dumb.text, dumb.text
    assert dumb.status == 2
    no_tty = _ssh(ssh_site, term="xterm-256color", options=("-T",), until=None)
    assert "needs an interactive terminal" in no_tty.text, no_tty.text
    assert "ssh -t" in no_tty.text
    assert no_tty.status == 2


def test_default_agent_over_ssh_is_the_login_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under sshd $LOGNAME/$USER do not choose the agent; the process's user id does."""
    monkeypatch.setattr(cli, "_login_name", lambda: "alice")
    monkeypatch.setenv("LOGNAME", "supervisor")
    monkeypatch.setenv("USER", "supervisor")
    monkeypatch.delenv("SSH_ORIGINAL_COMMAND", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
    assert cli._default_agent() == "alice"
    monkeypatch.delenv("SSH_CONNECTION")
    assert cli._default_agent() == "supervisor"  # locally, $LOGNAME still works


def test_login_agent_ignores_agent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--login-agent signs in as the Unix account and says that --agent was ignored."""
    opened: list[tuple[str | None, str]] = []
    monkeypatch.setattr(cli, "_login_name", lambda: "alice")
    monkeypatch.setattr(cli, "_open_app", lambda db, name: opened.append((db, name)) or 0)
    monkeypatch.setattr(cli, "_install_rules", lambda args: None)
    assert cli.main(["--login-agent", "--agent", "supervisor", "--db", "sqlite://"]) == 0
    assert opened == [("sqlite://", "alice")]
    assert "--agent supervisor ignored" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("term", "message"),
    [("dumb", "TERM='dumb'"), ("unknown", "TERM='unknown'"), ("", "TERM is not set")],
)
def test_terminal_that_cannot_draw_is_refused(
    monkeypatch: pytest.MonkeyPatch, term: str, message: str
) -> None:
    """A dumb terminal gets one clear line naming the fix."""
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    with pytest.raises(cli.CommandError, match="xterm-256color") as caught:
        cli.check_terminal({"TERM": term})
    assert message in str(caught.value)
    for good in ("xterm-256color", "screen-256color", "linux", "xterm"):
        cli.check_terminal({"TERM": good})
    cli.check_terminal({"TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"})


def test_unknown_agent_over_ssh_lists_no_other_agents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A login without an agent record is told whom to ask, not who else exists."""
    url = f"sqlite:///{tmp_path}/p.db"
    assert cli.main(["agent", "add", "alice", "--db", url]) == 0
    capsys.readouterr()
    monkeypatch.setattr(cli, "_login_name", lambda: "mallory")
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
    assert cli.main(["--login-agent", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "no agent named 'mallory'" in err and "ask a supervisor" in err
    assert "alice" not in err
