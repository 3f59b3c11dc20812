"""The sandbox server itself: seeded portfolio, wire format, errors, the CLI entry point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from collect_tui.sync.sandbox import SandboxServer
from collect_tui.sync.xero import map_contact

from .conftest import TENANT, TOKEN
from .spec_examples import example

AUTH = {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT, "Accept": "application/json"}


def get(
    server: SandboxServer, path: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return httpx.get(
        server.base_url + path, params=params, headers=AUTH if headers is None else headers
    )


def test_same_seed_same_portfolio() -> None:
    first, second = SandboxServer(customers=60, seed=3), SandboxServer(customers=60, seed=3)
    other = SandboxServer(customers=60, seed=4)
    for resource in ("Contacts", "Invoices", "Payments", "CreditNotes"):
        assert first.ids(resource) == second.ids(resource)
        assert [first.record(resource, i) for i in first.ids(resource)] == [
            second.record(resource, i) for i in second.ids(resource)
        ]
    assert first.invoice_ids() != other.invoice_ids()


def test_the_portfolio_looks_like_a_real_ledger() -> None:
    server = SandboxServer(customers=400, seed=9)
    invoices = [server.invoice(i) for i in server.invoice_ids()]
    per_status = Counter(i["Status"] for i in invoices)
    assert per_status["AUTHORISED"] > per_status["PAID"] > per_status["VOIDED"] > 0
    assert per_status["DELETED"] and per_status["DRAFT"] and per_status["SUBMITTED"]
    assert len({i["CurrencyCode"] for i in invoices}) >= 5
    per_contact = Counter(i["Contact"]["ContactID"] for i in invoices)
    assert min(per_contact.values()) >= 1 and max(per_contact.values()) <= 8
    contacts = [map_contact(server.record("Contacts", c)) for c in server.contact_ids()]
    assert any(c.is_company for c in contacts) and any(not c.is_company for c in contacts)
    assert any(c.status == "archived" for c in contacts)
    assert any(c.merged_to_external_id for c in contacts)
    assert len({c.address.country for c in contacts if c.address}) >= 5
    assert all(c.email_addresses and c.phones for c in contacts)
    assert server.ids("CreditNotes")
    assert all(i["UpdatedDateUTC"].startswith("/Date(") for i in invoices)


def test_envelope_and_pagination(sandbox: SandboxServer) -> None:
    response = get(sandbox, "/Invoices", page="2", pageSize="5")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    spec = example("invoices")
    assert set(spec) <= set(body)  # Id, Status, ProviderName, DateTimeUTC, pagination, Invoices
    total = sandbox.count("Invoices")
    assert body["pagination"] == {
        "page": 2,
        "pageSize": 5,
        "pageCount": -(-total // 5),
        "itemCount": total,
    }
    assert len(body["Invoices"]) == 5
    # every field of the spec's AUTHORISED invoice example is there, in every invoice
    assert all(set(spec["Invoices"][2]) <= set(invoice) for invoice in body["Invoices"])
    for header in ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert int(response.headers[header]) >= 0


def test_without_page_everything_comes_back(sandbox: SandboxServer) -> None:
    body = get(sandbox, "/Contacts", includeArchived="true").json()
    assert "pagination" not in body
    assert len(body["Contacts"]) == sandbox.count("Contacts")
    active = get(sandbox, "/Contacts").json()["Contacts"]
    assert all(c["ContactStatus"] == "ACTIVE" for c in active)
    assert len(active) < sandbox.count("Contacts")


def test_page_size_is_capped_at_1000(make_sandbox: Callable[..., SandboxServer]) -> None:
    server = make_sandbox(customers=300)
    body = get(server, "/Invoices", page="1", pageSize="5000").json()
    assert body["pagination"]["pageSize"] == 1000
    assert len(body["Invoices"]) == min(1000, server.count("Invoices"))


def test_where_and_statuses_filters(sandbox: SandboxServer) -> None:
    paid = get(sandbox, "/Invoices", Statuses="PAID,VOIDED").json()["Invoices"]
    assert paid and {i["Status"] for i in paid} <= {"PAID", "VOIDED"}
    contact = sandbox.contact_ids()[0]
    mine = get(sandbox, "/Invoices", where=f'Contact.ContactID==Guid("{contact}")').json()
    assert mine["Invoices"] and {i["Contact"]["ContactID"] for i in mine["Invoices"]} == {contact}
    both = get(sandbox, "/Invoices", where='Type=="ACCREC" AND Status=="AUTHORISED"').json()
    assert {i["Status"] for i in both["Invoices"]} == {"AUTHORISED"}
    bad = get(sandbox, "/Invoices", where="Status LIKE 'PAID'")
    assert bad.status_code == 400 and bad.json()["Type"] == "ValidationException"


def test_if_modified_since_accepts_iso_and_http_dates(sandbox: SandboxServer) -> None:
    invoice_id = sandbox.invoice_ids()[0]
    sandbox.touch_invoice(invoice_id)
    for since in ("2099-01-01T00:00:00", "Fri, 01 Jan 2099 00:00:00 GMT"):
        assert (
            get(sandbox, "/Invoices", {**AUTH, "If-Modified-Since": since}).json()["Invoices"] == []
        )
    recent = get(sandbox, "/Invoices", {**AUTH, "If-Modified-Since": "2000-01-01T00:00:00Z"})
    assert len(recent.json()["Invoices"]) == sandbox.count("Invoices")
    garbage = get(sandbox, "/Invoices", {**AUTH, "If-Modified-Since": "last tuesday"})
    assert garbage.status_code == 400


def test_authentication_errors_look_like_xeros(sandbox: SandboxServer) -> None:
    missing = get(sandbox, "/Invoices", {"xero-tenant-id": TENANT})
    assert missing.status_code == 401
    assert missing.json()["Title"] == "Unauthorized"
    assert missing.json()["Detail"] == "AuthenticationUnsuccessful"
    no_tenant = get(sandbox, "/Invoices", {"Authorization": "Bearer x"})
    assert no_tenant.status_code == 403 and no_tenant.json()["Title"] == "Forbidden"
    assert get(sandbox, "/Nope").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{sandbox.port}/elsewhere").status_code == 404


def test_history_can_be_read_back(sandbox: SandboxServer) -> None:
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    created = httpx.put(
        f"{sandbox.base_url}/Invoices/{invoice_id}/History",
        headers=AUTH,
        json=example("history_request"),
    )
    assert created.status_code == 200
    record = created.json()["HistoryRecords"][0]
    assert set(example("history_created")["HistoryRecords"][0]) <= set(record)
    listed = get(sandbox, f"/Invoices/{invoice_id}/History").json()["HistoryRecords"]
    assert [r["Details"] for r in listed] == ["Hello World"]
    one = get(sandbox, f"/Invoices/{invoice_id}").json()["Invoices"]
    assert [i["InvoiceID"] for i in one] == [invoice_id]


def test_a_reused_key_on_another_request_is_refused(sandbox: SandboxServer) -> None:
    first, second = sandbox.invoice_ids("AUTHORISED")[:2]
    headers = {**AUTH, "Idempotency-Key": "same"}
    body = {"HistoryRecords": [{"Details": "x"}]}
    assert (
        httpx.put(
            f"{sandbox.base_url}/Invoices/{first}/History", headers=headers, json=body
        ).status_code
        == 200
    )
    again = httpx.put(f"{sandbox.base_url}/Invoices/{second}/History", headers=headers, json=body)
    assert again.status_code == 400
    assert sandbox.history(second) == []


def test_a_request_torn_off_mid_body_is_not_acted_on(sandbox: SandboxServer) -> None:
    """A client killed while sending leaves half a body: nothing is done and nothing kept
    under its Idempotency-Key, so the client's retry goes through (it used to be refused
    with the torn body's 400, a failed outcome in the SIGKILL test)."""
    invoice_id = sandbox.invoice_ids("AUTHORISED")[0]
    headers = {**AUTH, "Idempotency-Key": "torn", "Content-Type": "application/json"}
    body = json.dumps({"HistoryRecords": [{"Details": "retried"}]}).encode()
    url = httpx.URL(f"{sandbox.base_url}/Invoices/{invoice_id}/History")
    head = [f"PUT {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    with socket.create_connection((url.host, url.port)) as torn:
        torn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:10])
        torn.shutdown(socket.SHUT_WR)
        assert torn.recv(1024) == b"", "no answer to half a request"
    retried = httpx.put(str(url), headers=headers, content=body)
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert sandbox.history(invoice_id) == ["retried"]


@pytest.mark.skipif(os.name != "posix", reason="sends signals")
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_main_runs_in_the_foreground_until_stopped(stop_signal: int) -> None:
    code = (  # as in a terminal, even if this test runs where SIGINT is ignored
        "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from collect_tui.sync.sandbox import main\nsys.exit(main(sys.argv[1:]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--customers", "20", "--seed", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Xero sandbox at http://127.0.0.1:") and "/api.xro/2.0" in line
        base_url = line.split(" at ", 1)[1].strip()
        response = httpx.get(base_url + "/Contacts", headers=AUTH)
        assert response.status_code == 200 and json.loads(response.content)["Contacts"]
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
