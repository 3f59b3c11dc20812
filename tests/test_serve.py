"""The workstation in a browser: ``collect-tui serve`` driven by a real headless Chromium.

Chromium is driven over the DevTools protocol (aiohttp's websocket client, already a
dependency of textual-serve). The test waits until the terminal the page shows has painted
the agent's queue title, then keeps a screenshot in test-artifacts/serve-queue.png. Needs the
Debian package ``chromium``: in CI (CI=true) its absence fails the test, elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import in_ci

from collect_tui import cli

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
DISPLAY_NAME = "Browser Tester"
TITLE = f"{DISPLAY_NAME} (agent)  queue"
ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collect-tui serve exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError("collect-tui serve did not start listening")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and what it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # children left behind, if any
        os.killpg(proc.pid, signal.SIGKILL)


def test_serve_refuses_a_non_loopback_address(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --allow-remote only loopback addresses are served; one line, exit 2."""
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "not a loopback address" in err and "--allow-remote" in err
    assert "authenticating proxy" in err
    assert cli.is_loopback_host("127.0.0.1") and cli.is_loopback_host("::1")
    assert cli.is_loopback_host("localhost") and cli.is_loopback_host("127.0.0.2")
    for host in ("0.0.0.0", "::", "192.0.2.10", ""):
        assert not cli.is_loopback_host(host), host


@contextlib.contextmanager
def _serving(tmp_path: Path, agents: dict[str, str], *how: str) -> Iterator[int]:
    """``collect-tui serve ... *how`` on a free port, for a small seeded SQLite portfolio
    shared between ``agents`` (name: display name)."""
    db_url = f"sqlite:///{tmp_path}/portfolio.db"
    assert cli.main(["seed", "--db", db_url, "--debtors", "30", "--agents", "2"]) == 0
    for name, display in agents.items():
        assert cli.main(["agent", "add", name, "--display-name", display, "--db", db_url]) == 0
    assert cli.main(["rebalance", "--db", db_url, "--as", "supervisor", "--apply"]) == 0
    port = _free_port()
    argv = [sys.executable, "-m", "collect_tui.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--db", db_url, *how]  # fmt: skip
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc)
        yield port
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    """``collect-tui serve --agent webby``: every session is webby's."""
    with _serving(tmp_path, {"webby": DISPLAY_NAME}, "--agent", "webby") as port:
        yield port


@pytest.fixture
def served_to_team(tmp_path: Path) -> Iterator[int]:
    """``collect-tui serve --user-header X-Forwarded-User`` for a portfolio of two agents."""
    agents = {"webby": DISPLAY_NAME, "second": "Second Tester"}
    with _serving(tmp_path, agents, "--user-header", "X-Forwarded-User") as port:
        yield port


@pytest.fixture
def devtools(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium; yields the DevTools websocket URL of its page."""
    chromium = _chromium()
    if chromium is None:
        reason = "Chromium is not installed (Debian package chromium)"
        if in_ci():
            pytest.fail(f"the browser test must run in CI: {reason}")
        pytest.skip(reason)
    argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=740,450",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            "about:blank"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        port = _devtools_port(proc)
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert pages, "Chromium opened no page"
        yield str(pages[0]["webSocketDebuggerUrl"])
    finally:
        _stop(proc)
        if proc.stderr:
            proc.stderr.close()


def _devtools_port(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """The port from Chromium's "DevTools listening on ws://127.0.0.1:PORT/..." line."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        found = re.search(rb"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            return int(found.group(1))
    raise RuntimeError(f"Chromium did not open DevTools: {seen.decode(errors='replace')}")


class DevTools:
    """The least of a Chrome DevTools protocol client: calls and an event queue."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = iter(range(1, 1_000_000))
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                await self.events.put(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its result."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, reply
        return dict(reply.get("result", {}))

    async def close(self) -> None:
        """Stop reading events."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _wait_for_text(browser: DevTools, screen: bytes, text: str, deadline: float) -> bytes:
    """Collect the terminal output the page receives until ``text`` has been painted."""
    start = len(screen)
    while text not in ANSI.sub(b"", screen[start:]).decode(errors="replace"):
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} never painted: {screen[-800:]!r}"
        event = await asyncio.wait_for(browser.events.get(), left)
        if event.get("method") == "Network.webSocketFrameReceived":
            frame = event["params"]["response"]
            if frame.get("opcode") == 2:  # terminal output arrives as binary frames
                screen += base64.b64decode(frame["payloadData"])
    return screen


async def test_queue_in_a_headless_browser(devtools: str, served: int) -> None:
    """The page starts a session signed in as --agent; its queue is painted and kept as PNG."""
    async with aiohttp.ClientSession() as http, http.ws_connect(devtools, max_msg_size=0) as ws:
        browser = DevTools(ws)
        try:
            await browser.call("Network.enable")
            await browser.call("Page.enable")
            # A viewport that fits an 80x24 terminal at the page's 16px font.
            await browser.call(
                "Emulation.setDeviceMetricsOverride",
                width=740, height=450, deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            await browser.call("Page.navigate", url=f"http://127.0.0.1:{served}/")
            deadline = time.monotonic() + 40
            screen = await _wait_for_text(browser, b"", TITLE, deadline)
            # Keys typed in the page reach the app: ? opens the queue's help.
            await browser.call(
                "Runtime.evaluate",
                expression="document.querySelector('.xterm-helper-textarea').focus()",
            )
            await browser.call("Input.dispatchKeyEvent", type="keyDown", key="?", text="?")
            await browser.call("Input.dispatchKeyEvent", type="keyUp", key="?")
            screen = await _wait_for_text(browser, screen, "escape closes this help", deadline)
            await browser.call("Input.dispatchKeyEvent", type="rawKeyDown", key="Escape",
                               code="Escape", windowsVirtualKeyCode=27)  # fmt: skip
            await browser.call("Input.dispatchKeyEvent", type="keyUp", key="Escape",
                               code="Escape", windowsVirtualKeyCode=27)  # fmt: skip
            await asyncio.sleep(0.5)
            shown = await browser.call(
                "Runtime.evaluate",
                expression="document.body.classList.contains('-first-byte')",
            )
            assert shown["result"]["value"] is True  # the page swapped its intro for the terminal
            await asyncio.sleep(1.0)  # the terminal paints on the next animation frames
            shot = await browser.call("Page.captureScreenshot", format="png")
        finally:
            await browser.close()
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "serve-queue.png").write_bytes(png)


async def _painted_by_session(port: int, user: str, text: str) -> None:
    """Open a tab's websocket as ``user`` (as the proxy would name them) until ``text`` shows."""
    url = f"http://127.0.0.1:{port}/ws?width=80&height=24"
    headers = {"X-Forwarded-User": user}
    screen = b""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        deadline = time.monotonic() + 40
        while text not in ANSI.sub(b"", screen).decode(errors="replace"):
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never painted for {user}: {screen[-600:]!r}"
            message = await ws.receive(timeout=left)
            assert message.type == aiohttp.WSMsgType.BINARY, message
            screen += message.data


async def test_each_tab_signs_in_as_the_user_the_proxy_names(served_to_team: int) -> None:
    """One server for a team: the session is the header's agent; no header, no page."""
    await asyncio.gather(
        _painted_by_session(served_to_team, "webby", TITLE),
        _painted_by_session(served_to_team, "second", "Second Tester (agent)  queue"),
    )
    base = f"http://127.0.0.1:{served_to_team}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as page:
            assert page.status == 403
            assert "X-Forwarded-User" in await page.text()
        async with http.get(f"{base}/", headers={"X-Forwarded-User": "webby"}) as page:
            assert page.status == 200
        async with http.get(f"{base}/", headers={"X-Forwarded-User": "mallory"}) as page:
            assert page.status == 403
            assert "not an agent" in await page.text()
        for headers in ({}, {"X-Forwarded-User": "webby; rm -rf /"}, {"X-Forwarded-User": "x"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                async with http.ws_connect(f"{base}/ws?width=80&height=24", headers=headers):
                    pass
            assert refused.value.status == 403


def test_serve_user_header_and_agent_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["serve", "--port", "1", "--agent", "webby", "--user-header", "X-Forwarded-User"]
    assert cli.main(argv) == 2
    assert "exclude each other" in capsys.readouterr().err
