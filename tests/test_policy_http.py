"""policy.http: GET/POST /v1/policy answers JSON or the Postfix line, refuses bad input, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient

from policy.cache import DecisionCache
from policy.engine import MemorySendSink, PolicyEngine
from policy.http import blueprint
from reputation.model import Action, Decision, Identity, IdentityKind, State

BOB = Identity(IdentityKind.ACCOUNT, "bob@example.com")
PAUSED = Decision(BOB, State.PAUSED, Action.DEFER, "complaint_rate", "too many complaints", None,
                  datetime(2030, 1, 1, tzinfo=UTC), {}, datetime(2026, 11, 30, tzinfo=UTC))
TOKEN = "Bearer mta-secret"


def authorize_token() -> Response | None:
    from flask import request
    if request.headers.get("Authorization") == TOKEN:
        return None
    response = jsonify(error="unauthorized", detail="send an mta token")
    response.status_code = 401
    return response


def make_client(engine: PolicyEngine, authorize=authorize_token) -> FlaskClient:
    app = Flask("test")
    app.register_blueprint(blueprint(engine, authorize))
    return app.test_client()


@pytest.fixture
def sink() -> MemorySendSink:
    return MemorySendSink()


@pytest.fixture
def client(sink: MemorySendSink) -> FlaskClient:
    return make_client(PolicyEngine(DecisionCache([PAUSED]), sink))


def test_get_allowed_json(client: FlaskClient, sink: MemorySendSink) -> None:
    response = client.get("/v1/policy?account=alice@example.com&sender=alice@example.com&recipient_count=2",
                          headers={"Authorization": TOKEN})
    assert response.status_code == 200
    body = response.get_json()
    assert body["action"] == "allow"
    assert body["postfix_action"] == "DUNNO"
    assert body["smtp_code"] is None
    assert {"kind": "account", "value": "alice@example.com"} in body["identities"]
    assert sink.totals(Identity(IdentityKind.ACCOUNT, "alice@example.com")) == (1, 2)


def test_post_json_paused(client: FlaskClient) -> None:
    response = client.post("/v1/policy", json={"account": "bob@example.com", "recipient": "x@gmail.com"},
                           headers={"Authorization": TOKEN})
    body = response.get_json()
    assert (body["action"], body["smtp_code"], body["status"], body["rule"]) == ("defer", 450, "4.7.1",
                                                                               "complaint_rate")
    assert body["retry_after"] > 0
    assert body["smtp_text"].startswith("Your account bob@example.com is paused because too many complaints")


def test_post_form_text_plain(client: FlaskClient) -> None:
    response = client.post("/v1/policy", data={"account": "bob@example.com"},
                           headers={"Authorization": TOKEN, "Accept": "text/plain"})
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("action=DEFER_IF_PERMIT 4.7.1 Your account bob@")
    assert response.get_data(as_text=True).endswith("\n")


def test_unauthorized(client: FlaskClient) -> None:
    response = client.get("/v1/policy?account=bob@example.com")
    assert response.status_code == 401


@pytest.mark.parametrize(("kwargs", "detail"), [
    ({"query_string": {"recipient_count": "many"}}, "recipient_count must be a whole number"),
    ({"query_string": {"account": "a" * 2000}}, "longer than 1024"),
    ({"method": "POST", "json": ["not", "an", "object"]}, "send a JSON object"),
    ({"method": "POST", "json": {"account": {"nested": 1}}}, "account must be a string"),
])
def test_bad_input_is_a_400_with_a_sentence(client: FlaskClient, kwargs: dict, detail: str) -> None:
    response = client.open("/v1/policy", headers={"Authorization": TOKEN}, **kwargs)
    assert response.status_code == 400
    assert detail in response.get_json()["detail"]


class Exploding(DecisionCache):
    def applicable(self, keys, now):
        raise RuntimeError("store does not answer")


def test_engine_failure_fails_open() -> None:
    client = make_client(PolicyEngine(Exploding(), MemorySendSink()))
    response = client.get("/v1/policy?account=bob@example.com", headers={"Authorization": TOKEN})
    assert response.status_code == 200
    assert response.get_json()["failed_open"] is True
    assert response.get_json()["postfix_action"] == "DUNNO"


def test_authorize_failure_fails_open_and_is_counted() -> None:
    engine = PolicyEngine(DecisionCache([PAUSED]), MemorySendSink())

    def broken() -> Response | None:
        raise ConnectionError("token store down")

    response = make_client(engine, broken).get("/v1/policy?account=bob@example.com",
                                               headers={"Accept": "text/plain"})
    assert (response.status_code, response.get_data(as_text=True)) == (200, "action=DUNNO\n")
    assert engine.metrics()["failed_open"] == 1
