"""The command line, run as a user runs it: ``python app.py ...`` in a subprocess.

Inputs are built in tmp_path from corpus files: a maildir, an mbox, a directory tree with a
garbage file. Expected kinds and feedback types come from the corpus's expected.jsonl.
"""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EMAILS = REPO / "tests" / "data" / "corpus" / "emails" / "maildir"
COMPLAINT = EMAILS / "bsd" / "arf-14.eml"  # expected.jsonl: feedback, abuse
BOUNCE = EMAILS / "bsd" / "lhost-exim-01.eml"  # expected.jsonl: blocked, 5.7.0
AUTOREPLY = EMAILS / "bsd" / "rfc3834-01.eml"  # expected.jsonl: vacation
KEYS = ["file", "kind", "records", "complaint", "original", "errors"]


def run(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RICOCHET_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "app.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def jsonl(stdout: str) -> list[dict[str, object]]:
    objects = [json.loads(line) for line in stdout.splitlines()]
    for obj in objects:
        assert [key for key in obj if key != "mbox_index"] == KEYS
    return objects


def expected_row(path: Path) -> dict[str, object]:
    name = str(path.relative_to(EMAILS.parent))
    with (EMAILS.parent.parent / "expected.jsonl").open(encoding="utf-8") as handle:
        return next(row for row in map(json.loads, handle) if row["file"] == name)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout
    assert "parse" in result.stdout


def test_parse_a_maildir(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    shutil.copy(COMPLAINT, maildir / "new" / "1700000000.M1P1.host")
    shutil.copy(BOUNCE, maildir / "cur" / "1700000001.M2P2.host:2,S")
    shutil.copy(BOUNCE, maildir / "tmp" / "1700000002.M3P3.host")  # still being delivered: skipped
    (maildir / "dovecot-uidlist").write_text("3 V1 N4\n")  # the server's index: not a message
    result = run("parse", "--jsonl", "Maildir", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = jsonl(result.stdout)
    assert [o["file"] for o in objects] == [os.path.join("Maildir", "cur", "1700000001.M2P2.host:2,S"),
                                           os.path.join("Maildir", "new", "1700000000.M1P1.host")]
    bounce, complaint = objects
    assert bounce["kind"] == "bounce"
    assert complaint["kind"] == "complaint"
    records = complaint["records"]
    assert isinstance(records, list)
    assert records[0]["feedback_type"] == expected_row(COMPLAINT)["feedbacktype"]


def test_parse_an_mbox_numbers_its_messages(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    for path in (BOUNCE, AUTOREPLY, COMPLAINT):
        box.add(path.read_bytes())
    box.close()
    result = run("parse", "--jsonl", str(tmp_path / "bounces.mbox"))
    assert result.returncode == 0, result.stderr
    objects = jsonl(result.stdout)
    assert [o["file"] for o in objects] == [str(tmp_path / "bounces.mbox")] * 3
    assert [o["mbox_index"] for o in objects] == [1, 2, 3]
    assert [o["kind"] for o in objects] == ["bounce", "autoreply", "complaint"]


def test_parse_a_directory_tree_with_garbage(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "b" / "deeper").mkdir(parents=True)
    (tree / "a").mkdir()
    shutil.copy(BOUNCE, tree / "a" / "bounce.eml")
    shutil.copy(COMPLAINT, tree / "b" / "deeper" / "complaint.eml")
    (tree / "b" / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (tree / "b" / "empty.eml").write_bytes(b"")
    result = run("parse", "--jsonl", "tree/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = {str(o["file"]): o for o in jsonl(result.stdout)}
    assert list(objects) == ["tree/a/bounce.eml", "tree/b/deeper/complaint.eml", "tree/b/empty.eml",
                             "tree/b/garbage.bin"]
    assert objects["tree/a/bounce.eml"]["kind"] == "bounce"
    assert objects["tree/b/deeper/complaint.eml"]["kind"] == "complaint"
    for junk in ("tree/b/empty.eml", "tree/b/garbage.bin"):
        assert objects[junk]["kind"] == "other"
        assert objects[junk]["records"] == []
    assert objects["tree/b/empty.eml"]["errors"], "an empty message says so"


def test_a_single_file_keeps_its_path_and_pretty_output_is_a_stream_of_objects() -> None:
    name = str(BOUNCE.relative_to(REPO))
    result = run("parse", name, name)
    assert result.returncode == 0, result.stderr
    decoder, text, objects = json.JSONDecoder(), result.stdout, []
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        obj, position = decoder.raw_decode(text, position)
        objects.append(obj)
    assert [o["file"] for o in objects] == [name, name]
    assert "\n  " in text  # indented
    row = expected_row(BOUNCE)
    record = objects[0]["records"][0]
    assert (record["recipient"], record["reason"], record["status"]) == (row["recipient"], row["reason"],
                                                                          row["status"])


def test_a_large_message_is_cut_and_says_so(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    big.write_bytes(BOUNCE.read_bytes() + b"x" * 4096)
    result = run("parse", "--jsonl", str(big), env={"RICOCHET_PARSE_MAX_MESSAGE_BYTES": "2048"})
    assert result.returncode == 0, result.stderr
    (obj,) = jsonl(result.stdout)
    errors = obj["errors"]
    assert isinstance(errors, list)
    assert errors[0].startswith(f"the message has {big.stat().st_size} bytes; only the first 2048 were read")


def test_a_missing_path_is_an_error_with_status_2(tmp_path: Path) -> None:
    result = run("parse", str(COMPLAINT), str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{tmp_path / 'nowhere'}: no such file or directory" in result.stderr


def test_parse_without_a_path_is_a_usage_error() -> None:
    result = run("parse")
    assert result.returncode == 2
    assert "PATH" in result.stderr


def test_a_bad_setting_stops_serve_with_its_sentence() -> None:
    result = run("serve", env={"RICOCHET_SERVER_PORT": "abc"}, timeout=30)
    assert result.returncode == 2
    assert ("Error: environment variable RICOCHET_SERVER_PORT: [server].port must be an integer between "
            "1 and 65535, got 'abc'") in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_answers_healthz(tmp_path: Path) -> None:
    # On the defaults, in a directory of its own: they put the database and the session secret
    # under var/ of the working directory.
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RICOCHET_")}
    env["RICOCHET_SERVER_PORT"] = str(port)
    server = subprocess.Popen([sys.executable, str(REPO / "app.py"), "serve"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the server did not answer /healthz")
                time.sleep(0.1)
        assert body["status"] == "ok"
        assert body["version"]
        assert (tmp_path / "var" / "ricochet.db").is_file()
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr:
            server.stderr.close()
