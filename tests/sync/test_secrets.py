"""Secrets: loading, file permissions, masking, OAuth2 token providers against the sandbox."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from collect_tui.sync.protocol import AuthenticationError, TokenProvider
from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import (
    ClientCredentialsTokenProvider,
    RefreshTokenProvider,
    SecretFileError,
    StaticTokenProvider,
    XeroConnector,
    load_secret,
)

SECRET = "s3cr3t-client-secret-value"


def write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_environment_first_then_file(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "secret", SECRET, 0o600)
    from_env = load_secret("XERO_SECRET", secret_file, environ={"XERO_SECRET": "from-env"})
    assert from_env.get_secret_value() == "from-env"
    from_file = load_secret("XERO_SECRET", secret_file, environ={})
    assert from_file.get_secret_value() == SECRET
    assert SECRET not in repr(from_file) and SECRET not in str(from_file)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_a_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    secret_file = write(tmp_path / "secret", SECRET, mode)
    with pytest.raises(SecretFileError) as raised:
        load_secret("XERO_SECRET", secret_file, environ={})
    message = str(raised.value)
    assert f"{mode:04o}" in message and "chmod 600" in message
    assert SECRET not in message


def test_missing_secrets_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="does not exist"):
        load_secret("XERO_SECRET", tmp_path / "absent", environ={})
    with pytest.raises(SecretFileError, match="XERO_SECRET"):
        load_secret("XERO_SECRET", None, environ={})
    empty = write(tmp_path / "empty", "", 0o600)
    with pytest.raises(SecretFileError, match="empty"):
        load_secret(None, empty)


def test_reprs_mask_secrets(tmp_path: Path) -> None:
    providers: list[TokenProvider] = [
        StaticTokenProvider(SECRET),
        ClientCredentialsTokenProvider("http://127.0.0.1:9/connect/token", "client", SECRET),
        RefreshTokenProvider(
            "http://127.0.0.1:9/connect/token", "client", SECRET, tmp_path / "refresh"
        ),
    ]
    for provider in providers:
        assert SECRET not in repr(provider)
        connector = XeroConnector("http://127.0.0.1:9/api.xro/2.0", "t", provider)
        assert SECRET not in repr(connector)
        connector.close()


def test_client_credentials_against_the_sandbox(
    make_sandbox: Callable[..., SandboxServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_sandbox(token="only-issued-tokens-work")
    provider = ClientCredentialsTokenProvider(server.token_url, "client-id", SECRET)
    caplog.set_level(logging.DEBUG)
    with XeroConnector(server.base_url, "tenant", provider, rate_limiter=None) as connector:
        pages = list(connector.pull("invoices", None))
    assert pages[-1].is_last
    access = provider.token()
    assert access.startswith("sbx-access-")
    assert SECRET not in caplog.text and access not in caplog.text


def test_a_missing_refresh_token_file(sandbox: SandboxServer) -> None:
    provider = RefreshTokenProvider(sandbox.token_url, "client", SECRET, Path("/nonexistent"))
    with pytest.raises(SecretFileError):
        provider.token()


def test_refresh_tokens_rotate_in_their_file(tmp_path: Path, sandbox: SandboxServer) -> None:
    first = sandbox.issue_refresh_token()
    token_file = write(tmp_path / "refresh", first, 0o600)
    provider = RefreshTokenProvider(sandbox.token_url, "client", SECRET, token_file)
    access = provider.token()
    rotated = token_file.read_text().strip()
    assert access.startswith("sbx-access-")
    assert rotated != first and rotated.startswith("sbx-refresh-")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert provider.token() == access  # cached until it expires
    provider.invalidate()
    assert provider.token() != access
    assert token_file.read_text().strip() not in (first, rotated)
    assert not list(tmp_path.glob(".*.tmp"))
    # the spent token is refused, and the error says so without echoing it
    write(token_file, first, 0o600)
    stale = RefreshTokenProvider(sandbox.token_url, "client", SECRET, token_file)
    with pytest.raises(AuthenticationError, match="invalid_grant") as raised:
        stale.token()
    assert first not in str(raised.value) and SECRET not in str(raised.value)


def test_a_loose_refresh_token_file_is_refused(tmp_path: Path, sandbox: SandboxServer) -> None:
    token_file = write(tmp_path / "refresh", sandbox.issue_refresh_token(), 0o644)
    provider = RefreshTokenProvider(sandbox.token_url, "client", SECRET, token_file)
    with pytest.raises(SecretFileError, match="0644"):
        provider.token()


def test_an_unreachable_token_endpoint() -> None:
    provider = ClientCredentialsTokenProvider("http://127.0.0.1:9/connect/token", "c", SECRET)
    with pytest.raises(AuthenticationError, match="unreachable") as raised:
        provider.token()
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
