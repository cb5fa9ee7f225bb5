"""The notification delivery log (/notifications): rows of known statuses shown and filtered.

Rows are seeded in ``notify_deliveries`` as the delivery job (notify/deliver.py) leaves them:
delivered, pending with a retry due, failed after its attempts, and queued but not fanned out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from storage.notify_models import Delivery, DeliveryStatus
from tests import db
from tests.dashboard import Dash, dash
from tests.test_dashboard_rules import cells, rows
from web.dashboard.deliveries_data import delivery_log, shown_target, summary

database_url, db_engine, db_session = db.database_url, db.db_engine, db.db_session
__all__ = ["dash", "database_url", "db_engine", "db_session"]

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOOK = "https://panel.example/hook"
CHANGE = {"identity": {"kind": "account", "value": "alice@example.net"}, "old_state": "ok",
          "new_state": "paused", "rule": "complaint-rate-pause"}
LISTED = {"ip": "192.0.2.10", "identity": {"kind": "ip", "value": "192.0.2.10"},
          "blocklists": ["Spamhaus", "Barracuda"]}


def _delivery(session: Session, status: str, channel: str = "webhook", target: str = HOOK,
              event: str = "state_change", payload: dict[str, Any] | None = None, **fields: Any) -> Delivery:
    row = Delivery(channel=channel, target=target, event=event, payload=payload or CHANGE, status=status,
                   **{"created_at": NOW - timedelta(hours=1), "next_attempt_at": NOW - timedelta(hours=1),
                      **fields})
    session.add(row)
    session.flush()
    return row


def seed(session: Session) -> dict[str, int]:
    """One delivery per situation; returns their ids by name."""
    ids = {
        "delivered": _delivery(session, "delivered", attempts=1, delivered_at=NOW - timedelta(minutes=59)).id,
        "retrying": _delivery(session, "pending", target="https://ops:pw@hooks.example:8443/r?token=s3cret#x",
                              attempts=2, last_error="connection refused",
                              next_attempt_at=NOW + timedelta(minutes=5)).id,
        "failed": _delivery(session, "failed", channel="email", target="ops@example.net", event="blocklisted",
                            payload=LISTED, attempts=5, last_error="SMTP 550 relay denied").id,
        "queued": _delivery(session, "pending", target="").id,
    }
    session.commit()
    return ids


def test_summary_and_target() -> None:
    assert summary("state_change", CHANGE) == "account alice@example.net: ok -> paused (complaint-rate-pause)"
    assert summary("blocklisted", LISTED) == "outbound IP 192.0.2.10 on Spamhaus, Barracuda"
    assert shown_target("webhook", "https://ops:pw@hooks.example:8443/r?token=s3cret#x") == (
        "https://hooks.example:8443/r?...")
    assert shown_target("webhook", "http://[2001:db8::1]/hook") == "http://[2001:db8::1]/hook"
    assert shown_target("email", "ops@example.net") == "ops@example.net"


def test_log_filters_by_status(db_session: Session) -> None:
    ids = seed(db_session)
    everything = delivery_log(db_session)
    assert [line.id for line in everything.lines] == sorted(ids.values(), reverse=True)
    assert everything.counts == {"pending": 2, "delivered": 1, "failed": 1}
    pending = delivery_log(db_session, DeliveryStatus.PENDING)
    assert {line.id for line in pending.lines} == {ids["retrying"], ids["queued"]}
    retrying = next(line for line in pending.lines if line.id == ids["retrying"])
    assert (retrying.attempts, retrying.last_error, retrying.next_attempt_at) == (
        2, "connection refused", NOW + timedelta(minutes=5))
    failed = delivery_log(db_session, DeliveryStatus.FAILED).lines
    assert [(line.id, line.channel, line.target, line.identity, line.next_attempt_at) for line in failed] == [
        (ids["failed"], "email", "ops@example.net", ("ip", "192.0.2.10"), None)]
    delivered = delivery_log(db_session, DeliveryStatus.DELIVERED).lines
    assert [(line.id, line.delivered_at) for line in delivered] == [
        (ids["delivered"], NOW - timedelta(minutes=59))]


def test_log_pages(db_session: Session) -> None:
    ids = sorted(seed(db_session).values(), reverse=True)
    first = delivery_log(db_session, limit=3)
    assert [line.id for line in first.lines] == ids[:3] and first.older == ids[2]
    rest = delivery_log(db_session, before=first.older, limit=3)
    assert [line.id for line in rest.lines] == ids[3:] and rest.older is None


def test_page_shows_and_filters(dash: Dash) -> None:
    with dash.session() as session:
        ids = seed(session)
    viewer = dash.login("viewer")
    shown = rows(viewer.get("/notifications").get_data(as_text=True), "data-delivery")
    assert set(shown) == {str(i) for i in ids.values()}
    retrying = cells(shown[str(ids["retrying"])])
    assert retrying["status"] == "pending" and retrying["attempts"] == "2"
    assert retrying["error"] == "connection refused"
    assert retrying["when"] == "next try 2026-11-30T12:05Z"  # NOW + 5 minutes, shown to the minute
    assert retrying["target"] == "webhook: https://hooks.example:8443/r?..."
    assert "s3cret" not in shown[str(ids["retrying"])] and ":pw@" not in shown[str(ids["retrying"])]
    failed = cells(shown[str(ids["failed"])])
    assert (failed["status"], failed["attempts"], failed["error"]) == ("failed", "5", "SMTP 550 relay denied")
    assert "192.0.2.10 on Spamhaus, Barracuda" in failed["event"] and failed["when"] == ""
    assert cells(shown[str(ids["delivered"])])["when"] == "delivered 2026-11-30T11:01Z"
    assert "/identities/account/alice@example.net" in shown[str(ids["delivered"])]
    for status, expected in (("failed", {"failed"}), ("pending", {"retrying", "queued"}),
                             ("delivered", {"delivered"})):
        page = viewer.get(f"/notifications?status={status}").get_data(as_text=True)
        assert set(rows(page, "data-delivery")) == {str(ids[name]) for name in expected}, status
    assert viewer.get("/notifications?status=lost").status_code == 400


def test_page_needs_a_login(dash: Dash) -> None:
    response = dash.app.test_client().get("/notifications")
    assert response.status_code == 302
