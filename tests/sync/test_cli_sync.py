"""``collect-tui sync`` and ``collect-tui sandbox``: errors in one line, secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from collect_tui.cli import main
from collect_tui.services.database import open_database
from collect_tui.storage.models import Setting, SyncRun
from collect_tui.sync.config import SyncTarget, make_connector, token_provider
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import (
    ClientCredentialsTokenProvider,
    RefreshTokenProvider,
    StaticTokenProvider,
    XeroConnector,
)

SECRET = "s3cr3t-client-secret-value"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("XERO_"):
            monkeypatch.delenv(name)


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("collect-tui: error: ")
    return err[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--base-url is required"),
        (["--base-url", "ftp://example.com/api"], "http(s) URL"),
        (["--base-url", "http://api.example.com/api.xro/2.0"], "use https"),
        (["--base-url", "https://api.example.com/api.xro/2.0"], "no Xero credentials"),
        (["--base-url", "http://127.0.0.1:9/api.xro/2.0", "--page-size", "5000"], "page-size"),
    ],
)
def test_sync_errors_are_one_line_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["sync", "--db", f"sqlite:///{tmp_path / 'e.db'}", *extra])
    assert code == 2
    assert message in _error(capsys)


def test_unreachable_server_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(XeroConnector, "_backoff", lambda self, attempt: 0.0)
    url = f"sqlite:///{tmp_path / 'u.db'}"
    code = main(["sync", "--db", url, "--base-url", "http://127.0.0.1:9/api.xro/2.0"])
    assert code == 2
    assert "sync failed" in _error(capsys)


def test_client_secret_is_used_but_never_shown_or_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XERO_CLIENT_ID", "client-1")
    monkeypatch.setenv("XERO_CLIENT_SECRET", SECRET)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with SandboxServer(customers=20, seed=2, token="only-issued-tokens") as sandbox:
        assert main(["sync", "--db", url, "--base-url", sandbox.base_url]) == 0
        tokens = sandbox.requests_to("/connect/token", "POST")
    assert tokens, "the client credentials grant was used"
    captured = capsys.readouterr()
    assert "pulled" in captured.out
    assert SECRET not in captured.out + captured.err
    db = open_database(url)
    with db.session() as session:
        stored = " ".join(v for v in session.scalars(select(Setting.value)))
        stored += " ".join(str(s) for s in session.scalars(select(SyncRun.stats)))
    db.close()
    assert SECRET not in stored and "sandbox" in stored


def test_secret_file_must_be_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)
    monkeypatch.setenv("XERO_CLIENT_ID", "client-1")
    monkeypatch.setenv("XERO_CLIENT_SECRET_FILE", str(secret_file))
    code = main(
        ["sync", "--db", f"sqlite:///{tmp_path / 'f.db'}", "--base-url", "https://x.test/api"]
    )
    assert code == 2
    line = _error(capsys)
    assert "looser than 0600" in line and SECRET not in line


def test_token_sources(tmp_path: Path) -> None:
    sandbox = SyncTarget("xero", "http://127.0.0.1:8765/api.xro/2.0")
    remote = SyncTarget("xero", "https://api.xero.com/api.xro/2.0", tenant="t-1")
    assert isinstance(token_provider(sandbox, {}), StaticTokenProvider)
    assert token_provider(sandbox, {}).token() == "sandbox-dummy-token"
    assert sandbox.tenant_id == "sandbox" and remote.tenant_id == "t-1"
    env = {"XERO_CLIENT_ID": "id", "XERO_CLIENT_SECRET": SECRET}
    provider = token_provider(remote, env)
    assert isinstance(provider, ClientCredentialsTokenProvider)
    assert SECRET not in repr(provider)
    refresh = tmp_path / "refresh"
    refresh.write_text("r-token")
    refresh.chmod(0o600)
    provider = token_provider(remote, {**env, "XERO_REFRESH_TOKEN_FILE": str(refresh)})
    assert isinstance(provider, RefreshTokenProvider)
    access = token_provider(remote, {"XERO_ACCESS_TOKEN": "a-token"})
    assert access.token() == "a-token"
    # Xero's published limits apply to a remote server unless configured otherwise.
    connector = make_connector(remote, environ={"XERO_ACCESS_TOKEN": "a"})
    assert connector.rate_limiter is not None and connector.rate_limiter.per_minute == 60
    connector.close()
    limited = SyncTarget("xero", sandbox.base_url, minute_limit=30)
    connector = make_connector(limited, environ={})
    assert connector.rate_limiter is not None and connector.rate_limiter.per_minute == 30
    connector.close()


def test_sandbox_command_validates_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--fail-rate", "1.5"]) == 2
    assert "--fail-rate must be between 0 and 1" in _error(capsys)
