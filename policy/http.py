"""``GET/POST /v1/policy``: the policy lookup over HTTP, for Haraka, control panels and anything else.

Inputs (query string, form or JSON object): ``account``, ``sender``, ``recipient``,
``client_address``, ``script``, ``customer``, ``recipient_count``, ``instance`` and optionally
``protocol_state``: the same meaning as the Postfix attributes (``account`` is ``sasl_username``).
The answer is JSON (action, smtp_code, status, smtp_text, identities, rule, retry_after,
postfix_action, failed_open) or, with ``Accept: text/plain``, the Postfix line ``action=...``.

Never a 500 (STYLE.md habit 9): an exception anywhere in the view, the caller's ``authorize``
included, gives the engine's fail-open answer with status 200, logged. Bad input is the caller's
mistake and gets a 400 with a sentence that says what to send instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from policy.engine import Answer, PolicyEngine

__all__ = ["FIELDS", "MAX_VALUE", "Authorize", "blueprint"]

log = logging.getLogger(__name__)

# HTTP field -> Postfix attribute name (SMTPD_POLICY_README), which is what the engine reads.
FIELDS: Mapping[str, str] = {
    "account": "sasl_username", "sender": "sender", "recipient": "recipient",
    "client_address": "client_address", "script": "script", "customer": "customer",
    "recipient_count": "recipient_count", "instance": "instance", "protocol_state": "protocol_state",
}
# Longer than any address (RFC 5321 section 4.5.3.1: 256 octets for a path) or script path we expect.
MAX_VALUE = 1024

# Returns None to let the request through, or the response that refuses it (401/403). It may also
# raise a werkzeug HTTPException; any other exception is a failure of ours and fails open.
Authorize = Callable[[], Response | None]


class _BadInput(Exception):
    """The caller sent something we cannot use; the message is the 400's sentence."""


def blueprint(engine: PolicyEngine, authorize: Authorize) -> Blueprint:
    """The ``/v1/policy`` blueprint answering from ``engine``; ``authorize`` checks the caller's token."""
    bp = Blueprint("policy", __name__)
    # The engine was written for the asyncio server's single thread; a threaded WSGI server calls
    # the view from several threads at once, so its counters are updated one lookup at a time.
    lock = threading.Lock()

    @bp.route("/v1/policy", methods=["GET", "POST"])
    def policy() -> Response:
        try:
            refused = authorize()
            if refused is not None:
                return refused
            attributes = _attributes()
            with lock:
                answer = engine.answer(attributes)
        except HTTPException:
            raise
        except _BadInput as error:
            response = jsonify(error="bad_request", detail=str(error))
            response.status_code = 400
            return response
        except Exception:  # never a 500: the MTA gets the fail-open answer
            log.exception("policy: the HTTP lookup failed; answering the fail-open action")
            answer = engine.fail_open_answer()
        return _respond(answer)

    return bp


def _attributes() -> dict[str, str]:
    """The request's fields as Postfix attributes; _BadInput for what cannot be used."""
    if request.method == "POST" and request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _BadInput('send a JSON object, e.g. {"account": "alice@example.com", "recipient_count": 1}')
        source: Mapping[str, object] = body
    else:
        source = request.values
    attributes: dict[str, str] = {}
    for name, attribute in FIELDS.items():
        value = source.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _BadInput(f"{name} must be a string")
        text = str(value)
        if len(text) > MAX_VALUE:
            raise _BadInput(f"{name} is longer than {MAX_VALUE} characters")
        attributes[attribute] = text
    count = attributes.get("recipient_count")
    if count is not None and not (count.isdigit() and int(count) < 1_000_000):
        raise _BadInput(f"recipient_count must be a whole number of recipients, got {count[:40]!r}")
    return attributes


def _respond(answer: Answer) -> Response:
    if request.accept_mimetypes.best_match(["application/json", "text/plain"]) == "text/plain":
        return Response(f"action={answer.postfix_action}\n", mimetype="text/plain")
    response = jsonify(answer.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response
