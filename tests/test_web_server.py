"""The API over real HTTP: waitress (the server of ``python app.py serve``) listening on 127.0.0.1
(a free port) in a thread, on both backends, spoken to with http.client and urllib, including a
20 MiB body sent over the socket.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.httpserver import serving
from tests.webclient import Api, api, corpus_bytes, counts, database_url, db_engine, db_session, expected_rows

__all__ = ["api", "database_url", "db_engine", "db_session"]

MIB = 1024 * 1024


@pytest.fixture
def port(api: Api) -> Iterator[int]:
    """The port of waitress running the API on 127.0.0.1."""
    with serving(api.app) as port:
        yield port


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST ``body`` to /v1/ingest with http.client: status, headers (names in lower case), JSON body.

    Header names are case-insensitive (RFC 9110, section 5.1); waitress writes them title-cased.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/v1/ingest", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        connection.close()


def send_large(port: int, size: int, headers: dict[str, str], chunked: bool) -> tuple[int, dict[str, Any]]:
    """Send a ``size``-byte body a MiB at a time (with Content-Length or chunked); the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    piece = b"x" * MIB
    try:
        connection.putrequest("POST", "/v1/ingest")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Transfer-Encoding" if chunked else "Content-Length",
                             "chunked" if chunked else str(size))
        connection.endheaders()
        # Waitress reads the whole body (into a temporary file) before the app runs, so the client
        # sees the answer instead of a reset connection. A server that stops reading early is
        # allowed too (RFC 9110, section 15.5.14): then the answer is already waiting when
        # sending fails.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(size // MIB):
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_post_then_read_back_over_http(api: Api, port: int) -> None:
    name = "lhost-exim-02.eml"
    raw = corpus_bytes(name)
    headers = {**api.auth("ingest"), "Content-Type": "message/rfc822"}
    status, answer_headers, body = post(port, raw, headers)
    assert status == 202 and body["kind"] == "bounce" and body["events"] == len(expected_rows(name))
    assert answer_headers["location"] == f"/v1/messages/{body['id']}"
    assert post(port, raw, headers)[0] == 200

    base = f"http://127.0.0.1:{port}/v1/messages/{body['id']}"
    request = urllib.request.Request(base, headers=api.auth("viewer"))
    with urllib.request.urlopen(request, timeout=30) as response:
        message = json.loads(response.read())
    expected = sorted(row["reason"] for row in expected_rows(name))
    assert sorted(e["reason"] for e in message["events"]) == expected
    request = urllib.request.Request(f"{base}/raw", headers=api.auth("viewer"))
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers.get_content_type() == "message/rfc822"
        assert response.read() == raw


def test_wrong_token_over_http_is_401_with_a_challenge(api: Api, port: int, db_engine: Engine) -> None:
    status, headers, body = post(port, corpus_bytes("lhost-exim-01.eml"),
                                 {"Authorization": "Bearer rct_wrong", "Content-Type": "message/rfc822"})
    assert status == 401 and body["error"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer ")
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", headers=api.auth("ingest"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"] == "forbidden"
    assert counts(db_engine)["raw_messages"] == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_20_mib_body_over_a_socket_is_413_and_nothing_is_stored(api: Api, port: int, db_engine: Engine,
                                                                  chunked: bool) -> None:
    headers = {**api.auth("ingest"), "Content-Type": "message/rfc822"}
    status, body = send_large(port, 20 * MIB, headers, chunked)
    assert status == 413 and body["error"] == "payload_too_large"
    assert counts(db_engine)["raw_messages"] == 0
    # The server is still there for the next request.
    assert post(port, corpus_bytes("lhost-exim-01.eml"), headers)[0] == 202
