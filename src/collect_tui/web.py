"""``collect-tui serve``: textual-serve's server, one workstation session per browser tab.

With a user header, each tab's session signs in as the agent that the authenticating
proxy in front names in that header (e.g. ``X-Forwarded-User``), so one server serves a
whole team; a request without a valid name is refused. Without it, every session signs
in as the one agent ``serve`` was given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from textual_serve.server import Server

# What an agent name from a header may look like: it goes on the session's command line.
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

# The agent of the request being handled: set in the request's own task, so concurrent
# requests cannot see each other's.
_request_agent: ContextVar[str | None] = ContextVar("collect_tui_request_agent", default=None)


class SessionServer(Server):
    """textual-serve's server, starting each session with ``command_for(agent)``."""

    def __init__(
        self,
        command_for: Callable[[str], str],
        *,
        agent: str | None = None,
        user_header: str | None = None,
        is_agent: Callable[[str], bool] = lambda name: True,
        **kwargs: Any,
    ) -> None:
        if (agent is None) == (user_header is None):
            raise ValueError("give either an agent or a user header")
        self._command_for = command_for
        self._agent = agent
        self.user_header = user_header
        self._is_agent = is_agent
        super().__init__(command_for(agent or ""), **kwargs)

    @property
    def command(self) -> str:
        """The command of the session being started (textual-serve reads it per tab)."""
        agent = _request_agent.get() or self._agent
        return self._command_for(agent or "")

    @command.setter
    def command(self, value: str) -> None:
        """textual-serve sets it once; the command is built per session instead."""

    def header_agent(self, request: web.Request) -> str:
        """The agent the proxy named in the request; HTTP 403 if it named none, or
        someone who is not an agent."""
        assert self.user_header is not None
        name = request.headers.get(self.user_header, "").strip()
        if not AGENT_NAME.fullmatch(name):
            raise web.HTTPForbidden(
                text=f"collect-tui: no user in the {self.user_header} header; this page "
                "is served only through the authenticating proxy\n"
            )
        if not self._is_agent(name):
            raise web.HTTPForbidden(
                text=f"collect-tui: {name} is not an agent of this workstation; ask a "
                "supervisor to add you\n"
            )
        return name

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, refused without a user when the proxy names users."""
        if self.user_header is not None:
            self.header_agent(request)
        return await super().handle_index(request)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """A tab's session, signed in as the user the proxy named (or the one agent)."""
        if self.user_header is not None:
            _request_agent.set(self.header_agent(request))
        return await super().handle_websocket(request)
