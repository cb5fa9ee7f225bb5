"""``/v1/identities/<kind>/<value>`` on SQLite and PostgreSQL: read an identity, correct it.

Complaints go in through the webhook (the real pipeline), sends through the policy nodes' shared
counters, the evaluation job runs once; then the API shows the pause with its explanation and an
admin's resume takes effect in the same request. Numbers as in tests/test_evaluate.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from jobs.evaluate import Evaluator
from storage import utcnow
from storage.counters import apply_deltas
from storage.reputation import decisions_changed_since
from tests.reputation_samples import ALICE, TRUST_ENV, complaint, send_deltas
from tests.webclient import Api, body_of, database_url, db_engine, db_session, make_api, post_message

__all__ = ["database_url", "db_engine", "db_session"]

URL = "/v1/identities/account/alice@example.com"


@pytest.fixture
def api(database_url: str, db_session: Session) -> Iterator[Api]:
    """The API with the provider's hosts trusted, so the complaints name alice's account."""
    made = make_api(database_url, db_session, **TRUST_ENV)
    yield made
    made.runtime.close()


def paused_alice(api: Api, session: Session) -> None:
    now = utcnow()
    for number in range(6):
        response = post_message(api, complaint(number, now - timedelta(minutes=20)))
        assert response.status_code in (200, 201, 202), response.data
    apply_deltas(session, send_deltas(ALICE, 600, now - timedelta(hours=3)).drain_deltas(), now)
    session.commit()
    Evaluator(api.runtime.settings.reputation.rules).run(session, now)
    session.commit()


def act(api: Api, body: dict[str, Any], role: str = "admin", url: str = URL) -> Any:
    return api.client.post(f"{url}/actions", json=body, headers=api.auth(role))


def test_reading_needs_a_viewer_or_admin_token(api: Api) -> None:
    assert api.client.get(URL).status_code == 401
    assert api.client.get(URL, headers=api.auth("mta")).status_code == 403
    body = body_of(api.client.get(URL, headers=api.auth("viewer")))
    assert (body["state"], body["action"], body["decision"]) == ("ok", "allow", None)
    assert body["counters"]["24h"]["sends"] == 0 and body["history"] == [] and body["overrides"] == []


def test_a_paused_account_is_explained_and_an_admin_resume_applies_at_once(api: Api,
                                                                          db_session: Session) -> None:
    paused_alice(api, db_session)
    body = body_of(api.client.get(URL, headers=api.auth("viewer")))
    assert (body["state"], body["action"]) == ("paused", "defer")
    decision = body["decision"]
    assert decision["rule"] == "complaint-rate-pause"
    assert "6 complaints / 600 recipients" in decision["explanation"]
    assert body["counters"]["24h"]["complaints"] == 6 and body["counters"]["24h"]["sends"] == 600
    assert len(body["events"]) == 6 and {e["reason"] for e in body["events"]} == {"feedback"}
    assert body["history"][0]["state"] == "paused" and body["history"][0]["outcome"] is None
    before = utcnow()
    assert act(api, {"action": "resume", "reason": "password reset"}, role="viewer").status_code == 403
    response = act(api, {"action": "resume", "reason": "password reset"})
    assert response.status_code == 200, response.data
    resumed = body_of(response)
    assert (resumed["state"], resumed["decision"]["action"], resumed["author"]) == ("watch", "allow", "admin")
    # What the policy nodes see at their next refresh.
    db_session.expire_all()
    changed = decisions_changed_since(db_session, before)
    assert [(d.identity, d.action.value) for d in changed] == [(ALICE, "allow")]
    history = body_of(api.client.get(URL, headers=api.auth("admin")))["history"]
    assert [(h["state"], h["outcome"]) for h in history][-1] == ("paused", "admin_resumed")


def test_verdict_and_overrides_through_the_api(api: Api, db_session: Session) -> None:
    paused_alice(api, db_session)
    judged = act(api, {"action": "verdict", "verdict": "confirmed", "reason": "phished password"})
    assert judged.status_code == 200, judged.data
    body = body_of(api.client.get(URL, headers=api.auth("admin")))
    assert body["history"][0]["verdicts"][0]["kind"] == "confirmed"
    limit = {"action": "limit", "limit_per_hour": 20, "expires_in": "24h", "reason": "watching"}
    limited = body_of(act(api, limit, url="/v1/identities/customer/C1001"))
    assert (limited["state"], limited["decision"]["limit_per_hour"]) == ("throttled", 20)
    script = "/v1/identities/script/%2Fhome%2Falice%2Fpublic_html%2Fmailer.php"
    block = {"action": "block", "reason": "a mailer script", "expires": "2099-01-01T00:00:00Z"}
    blocked = body_of(act(api, block, url=script))
    assert blocked["identity"] == {"kind": "script", "value": "/home/alice/public_html/mailer.php"}
    shown = body_of(api.client.get(script, headers=api.auth("viewer")))
    assert shown["state"] == "blocked" and shown["overrides"][0]["active"] is True


@pytest.mark.parametrize(("body", "detail"), [
    ({"action": "pause", "reason": "x"}, "unknown action 'pause'"),
    ({"action": "limit", "reason": "x"}, "limit needs limit_per_hour"),
    ({"action": "allow"}, "say why in reason"),
    ({"action": "allow", "reason": "x", "expires": "2000-01-01T00:00:00Z"}, "is in the past"),
    ({"action": "allow", "reason": "x", "expires": "tomorrow"}, "expires must be an ISO 8601 time"),
    ({"action": "allow", "reason": "x", "expires": "2099-01-01T00:00:00Z", "expires_in": "1h"}, "not both"),
    ({"action": "allow", "reason": "x", "expires_in": "soon"}, "expires_in must be a duration"),
    ({"action": "allow", "reason": "x", "until": "1h"}, "Unknown field 'until'"),
    ({"action": "limit", "reason": "x", "limit_per_hour": "ten"}, "limit_per_hour must be a whole number"),
    # The override's column is a 32-bit integer (storage/reputation_models.py).
    ({"action": "limit", "reason": "x", "limit_per_hour": 2**31}, "(0 to 2147483647)"),
])
def test_bad_actions_are_400_with_a_sentence(api: Api, body: dict[str, Any], detail: str) -> None:
    response = act(api, body)
    assert response.status_code == 400
    assert detail in body_of(response)["detail"]


def test_unknown_kind_is_400(api: Api) -> None:
    response = api.client.get("/v1/identities/user/alice", headers=api.auth("viewer"))
    assert response.status_code == 400 and "unknown identity kind 'user'" in body_of(response)["detail"]
