"""Agents: who signs in, and with which role."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect_tui.services.database import Database
from collect_tui.storage.models import Agent

ROLES = ("agent", "supervisor", "admin")


class UnknownAgentError(LookupError):
    """No active agent by that name."""


class SignInRevoked(PermissionError):
    """The signed-in person was deactivated (or removed) since they signed in."""


@dataclass(frozen=True)
class AgentInfo:
    """A signed-in person as the upper layers see them."""

    id: int
    name: str
    display_name: str
    role: str
    settlement_limit: Decimal

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and admins may see and change every account."""
        return self.role in ("supervisor", "admin")


def current_role(session: Session, agent: AgentInfo) -> str:
    """The role ``agent`` holds now in the database, not the one they signed in with.

    Permission checks use it so that a demotion or deactivation takes effect at once;
    raises :class:`SignInRevoked` for an agent who is no longer active.
    """
    row = session.execute(
        select(Agent.role, Agent.active).where(Agent.id == agent.id, Agent.name == agent.name)
    ).first()
    if row is None or not row.active:
        raise SignInRevoked(f"{agent.name} is no longer an active agent; sign in again")
    return str(row.role)


def is_supervisor_now(session: Session, agent: AgentInfo) -> bool:
    """True when ``agent`` is a supervisor or an admin according to the database."""
    return current_role(session, agent) in ("supervisor", "admin")


def _info(agent: Agent) -> AgentInfo:
    return AgentInfo(agent.id, agent.name, agent.display_name, agent.role, agent.settlement_limit)


def get_agent(db: Database, name: str) -> AgentInfo:
    """The active agent called ``name``; raises :class:`UnknownAgentError` otherwise."""
    with db.session() as session:
        agent = session.scalar(select(Agent).where(Agent.name == name, Agent.active.is_(True)))
        if agent is None:
            raise UnknownAgentError(name)
        return _info(agent)


def list_agents(db: Database) -> list[AgentInfo]:
    """Every active agent, by name."""
    with db.session() as session:
        agents = session.scalars(
            select(Agent).where(Agent.active.is_(True)).order_by(Agent.name)
        ).all()
        return [_info(agent) for agent in agents]


def create_agent(
    db: Database,
    name: str,
    *,
    role: str = "agent",
    display_name: str | None = None,
    settlement_limit: Decimal = Decimal("0"),
) -> AgentInfo:
    """Add an agent; the name must be new and the role one of :data:`ROLES`."""
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise ValueError("an agent name is 1-64 characters without spaces")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if settlement_limit < 0:
        raise ValueError("the settlement limit cannot be negative")
    with db.session() as session:
        if session.scalar(select(Agent.id).where(Agent.name == name)) is not None:
            raise ValueError(f"an agent called {name!r} already exists")
        agent = Agent(
            name=name,
            display_name=display_name or name.capitalize(),
            role=role,
            settlement_limit=settlement_limit,
        )
        session.add(agent)
        session.flush()
        return _info(agent)
