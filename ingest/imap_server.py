"""Talking to one IMAP server for the collector: connect, name folders, find work, acknowledge.

The collector (ingest/imap.py) decides what to do; this module knows how IMAP says it:

- Connections use implicit TLS (RFC 8314, port 993) or STARTTLS (RFC 3501 section 6.2.1, port 143)
  with the system's certificate store or the mailbox's ``ca_file``, hostname checked; plaintext
  only where config/imap.py allowed it (loopback, or ``allow_plaintext``).
- Folder names in the configuration use "/" as the hierarchy separator whatever the server's is
  (Dovecot's Maildir++ and Courier use "."), and are put under the personal namespace's prefix
  when it has one (Courier's "INBOX."), as RFC 2342 NAMESPACE reports them.
- Acknowledging is MOVE (RFC 6851) when offered, else COPY + STORE \\Deleted + EXPUNGE, with UID
  EXPUNGE (RFC 4315 UIDPLUS) so that only our message goes; or, when configured to flag, \\Seen
  plus a keyword (RFC 3501 section 2.3.2) that marks it done.
- Errors are sorted into ``ImapRetry`` (the connection failed: try again later) and ``ImapFailure``
  (the server answered no, or our configuration is wrong: trying again at once will not help),
  each with a sentence for the log.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from config.imap import ImapMailbox

__all__ = [
    "PROCESSED_KEYWORD",
    "QUARANTINED_KEYWORD",
    "Connect",
    "ImapFailure",
    "ImapRetry",
    "acknowledge",
    "connect",
    "ensure_folder",
    "keywords_allowed",
    "pending_uids",
    "read_password",
    "server_folder",
]

# Keywords set in flag mode; a message with either is done (RFC 3501 flag-keyword atoms; the "$"
# prefix is the convention for keywords set by programs rather than people, RFC 5788).
PROCESSED_KEYWORD = "$RicochetProcessed"
QUARANTINED_KEYWORD = "$RicochetQuarantined"

Connect = Callable[[ImapMailbox, float], IMAPClient]


class ImapFailure(Exception):
    """The mailbox cannot be collected now and retrying at once will not help (refused login, ...)."""


class ImapRetry(Exception):
    """The connection failed (refused, timed out, dropped): worth another attempt after a pause."""


def read_password(mailbox: ImapMailbox, env: Mapping[str, str] = os.environ) -> str:
    """The mailbox's password, from its environment variable or file; ImapFailure says what is missing."""
    if mailbox.password_env:
        password = env.get(mailbox.password_env, "")
        if not password:
            raise ImapFailure(f"the environment variable {mailbox.password_env} (password_env) is not set "
                              "or empty; export the mailbox's password in it")
        return password
    try:
        # One line; a trailing newline (echo secret > file) is not part of the password.
        return Path(mailbox.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise ImapFailure(f"cannot read password_file {mailbox.password_file} ({error.strerror}); "
                          "check the path and that this user may read it") from None


def connect(mailbox: ImapMailbox, timeout: float) -> IMAPClient:
    """A logged-in connection to ``mailbox``'s server; ImapRetry or ImapFailure when there is none."""
    password = read_password(mailbox)
    where = f"{mailbox.host}:{mailbox.port}"
    try:
        context = ssl.create_default_context(cafile=mailbox.ca_file or None)
    except OSError as error:
        raise ImapFailure(f"cannot read ca_file {mailbox.ca_file} ({error.strerror or error})") from None
    try:
        client = IMAPClient(mailbox.host, port=mailbox.port, ssl=mailbox.security == "tls",
                            ssl_context=context, timeout=timeout)
        if mailbox.security == "starttls":
            client.starttls(context)
    except ssl.SSLCertVerificationError as error:
        raise ImapFailure(f"the TLS certificate of {where} is not trusted ({error.verify_message}); "
                          "fix the server's certificate or name the CA in ca_file") from None
    except (OSError, IMAPClientAbortError) as error:
        raise ImapRetry(f"cannot connect to {where} ({_describe(error)})") from None
    except IMAPClientError as error:  # e.g. no STARTTLS offered
        raise ImapFailure(f"{where} refused to start TLS ({_describe(error)}); "
                          "check security and port") from None
    try:
        client.login(mailbox.user, password)
    except LoginError as error:
        _close(client)
        source = mailbox.password_env or mailbox.password_file
        raise ImapFailure(f"{where} refused the login of {mailbox.user} ({_describe(error)}); "
                          f"check the user and the password in {source}") from None
    except (OSError, IMAPClientAbortError) as error:
        _close(client)
        raise ImapRetry(f"the connection to {where} broke during login ({_describe(error)})") from None
    return client


def server_folder(client: IMAPClient, name: str) -> str:
    """The server's name for the configured folder ``name`` ("/"-separated, RFC 2342 namespaces)."""
    if name.upper() == "INBOX":
        return "INBOX"
    prefix, delimiter = "", "/"
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix, found = personal[0]
            delimiter = found or "/"  # NIL: a flat server, the name is used as written
    translated = name.replace("/", delimiter) if delimiter != "/" else name
    if prefix and not translated.startswith(prefix) and not translated.upper().startswith("INBOX"):
        translated = prefix + translated
    return translated


def ensure_folder(client: IMAPClient, folder: str) -> None:
    """Create ``folder`` (and subscribe to it, so that mail clients show it) when it is missing."""
    if client.folder_exists(folder):
        return
    try:
        client.create_folder(folder)
    except IMAPClientError:
        if not client.folder_exists(folder):  # another collector may have created it meanwhile
            raise
    with contextlib.suppress(IMAPClientError):  # a server without subscriptions still works
        client.subscribe_folder(folder)


def keywords_allowed(selected: dict[bytes, object]) -> bool:
    """Whether the selected folder keeps keywords: ``\\*`` in PERMANENTFLAGS (RFC 3501 section 7.1)."""
    flags = selected.get(b"PERMANENTFLAGS") or ()
    return isinstance(flags, tuple | list) and b"\\*" in flags


def pending_uids(client: IMAPClient, last_uid: int, *, flagging: bool,
                 keywords: bool = True) -> tuple[list[int], list[int]]:
    """UIDs to collect in the selected folder: (left over, new), each ascending.

    New: above ``last_uid``. Left over: at or below it but not acknowledged, i.e. committed by a run
    that stopped before its MOVE or flag (still in the folder when moving; without our keywords
    when flagging, or unseen where the server keeps no keywords). Messages marked \\Deleted are
    skipped: they were copied already.
    """
    # "n:*" always matches the highest UID, even when it is below n (RFC 3501 section 6.4.8): filter.
    found = client.search(["UID", f"{last_uid + 1}:*", "NOT", "DELETED"])
    new = sorted(uid for uid in found if uid > last_uid)
    if last_uid < 1:
        return [], new
    criteria: list[str] = ["UID", f"1:{last_uid}", "NOT", "DELETED"]
    if flagging and keywords:
        criteria += ["NOT", "KEYWORD", PROCESSED_KEYWORD, "NOT", "KEYWORD", QUARANTINED_KEYWORD]
    elif flagging:
        criteria += ["UNSEEN"]
    return sorted(uid for uid in client.search(criteria) if uid <= last_uid), new


def acknowledge(client: IMAPClient, uid: int, *, target: str | None, quarantined: bool,
                keywords: bool = True) -> str:
    """Move message ``uid`` of the selected folder to ``target``, or flag it when ``target`` is None.

    Returns what was done: "moved" or "flagged". ``keywords`` False (the server keeps none, such
    as some Exchange versions): \\Seen alone, since a refused STORE would stop every later run here.
    """
    if target is None:
        keyword = QUARANTINED_KEYWORD if quarantined else PROCESSED_KEYWORD
        flags = [b"\\Seen", keyword.encode("ascii")] if keywords else [b"\\Seen"]
        client.add_flags([uid], flags, silent=True)
        return "flagged"
    if client.has_capability("MOVE"):
        client.move([uid], target)
        return "moved"
    client.copy([uid], target)
    client.delete_messages([uid], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge([uid])
    else:
        # Plain EXPUNGE removes every \Deleted message of the folder, not only ours: the only way
        # without UIDPLUS (RFC 3501 section 6.4.3).
        client.expunge()
    return "moved"


def _describe(error: BaseException) -> str:
    """The server's words for an IMAP error; the exception's type and text for the others."""
    if not isinstance(error, IMAPClientError):
        return f"{type(error).__name__}: {error}"
    first = error.args[0] if error.args else error
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    # imapclient's LoginError carries str(b'...'): show the server's text without the repr.
    if len(text) > 2 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        text = text[2:-1]
    return text


def _close(client: IMAPClient) -> None:
    with contextlib.suppress(OSError, IMAPClientError):
        client.shutdown()
