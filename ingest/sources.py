"""Raw messages from paths: single files, directories (recursively), maildirs and mbox files.

Each message comes out with the path a person can find it by: the path as given, joined with
the path found below it for a file inside a directory. The messages of an mbox file that holds
several keep the file's path, so that every record stays findable by its file, and say their
1-based position in ``mbox_index``. A file that starts with an mbox ``From `` line but holds one
message is read whole: many saved bounces carry that envelope line.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

__all__ = ["SourceError", "SourceMessage", "iter_messages"]

# An mbox file starts with the envelope line "From sender date" (RFC 4155, section 2).
_MBOX_MAGIC = b"From "
# Maildir (https://cr.yp.to/proto/maildir.html): delivered mail lies in new/ and cur/; tmp/ holds
# messages still being written, which readers must skip.
_MAILDIR_READ = ("cur", "new")


class SourceError(Exception):
    """A path given by the user cannot be used; ``str(error)`` says which and why."""


@dataclass(frozen=True)
class SourceMessage:
    """One raw message and where it was found; ``errors`` says what went wrong reading it."""

    path: str
    raw: bytes
    errors: tuple[str, ...] = ()
    mbox_index: int | None = None  # 1-based position in an mbox file holding several messages


def iter_messages(paths: Sequence[str], max_bytes: int | None = None) -> Iterator[SourceMessage]:
    """Every message under ``paths``, in a stable order (sorted names).

    Raises SourceError at once, before anything is read, when a path does not exist. A message
    larger than ``max_bytes`` is cut to that size, with an error saying so; a file that cannot be
    read comes out empty, with the reason.
    """
    for path in paths:
        if not os.path.lexists(path):
            raise SourceError(f"{path}: no such file or directory")
        if not (os.path.isfile(path) or os.path.isdir(path)):
            raise SourceError(f"{path}: neither a file nor a directory")
    return _walk_all(paths, max_bytes)


def _walk_all(paths: Sequence[str], max_bytes: int | None) -> Iterator[SourceMessage]:
    for path in paths:
        if os.path.isdir(path):
            yield from _walk_dir(path, max_bytes)
        else:
            yield from _read_file(path, max_bytes)


def _walk_dir(directory: str, max_bytes: int | None) -> Iterator[SourceMessage]:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        yield SourceMessage(directory, b"", (f"could not list the directory: {exc.strerror}",))
        return
    maildir = _is_maildir(entries)
    for entry in entries:
        path = os.path.join(directory, entry.name)
        if entry.is_dir(follow_symlinks=False):
            # In a maildir, read cur/ and new/ and the Maildir++ sub-folders (".Name"), not tmp/.
            if not maildir or entry.name in _MAILDIR_READ or entry.name.startswith("."):
                yield from _walk_dir(path, max_bytes)
        elif entry.is_file() and not maildir:
            # Files at a maildir's top are the mail server's indexes (dovecot-uidlist, ...).
            yield from _read_file(path, max_bytes)


def _is_maildir(entries: list[os.DirEntry[str]]) -> bool:
    names = {entry.name for entry in entries if entry.is_dir()}
    return {"cur", "new"} <= names


def _read_file(path: str, max_bytes: int | None) -> Iterator[SourceMessage]:
    try:
        with open(path, "rb") as handle:
            is_mbox = handle.read(len(_MBOX_MAGIC)) == _MBOX_MAGIC
            if not is_mbox:
                handle.seek(0)
                # Read one byte past the limit, not the whole of a huge file, to know it is too big.
                raw = handle.read(-1 if max_bytes is None else max_bytes + 1)
                size = os.fstat(handle.fileno()).st_size
                yield _message(path, raw, max_bytes, size)
                return
    except OSError as exc:
        yield SourceMessage(path, b"", (f"could not read the file: {exc.strerror}",))
        return
    yield from _read_mbox(path, max_bytes)


def _read_mbox(path: str, max_bytes: int | None) -> Iterator[SourceMessage]:
    try:
        box = mailbox.mbox(path, create=False)
        keys = list(box.iterkeys())
        if len(keys) <= 1:
            # One message: keep the plain path (and the envelope line, as the file has it).
            with open(path, "rb") as handle:
                yield _message(path, handle.read(), max_bytes)
            return
        for number, key in enumerate(keys, start=1):
            yield replace(_message(path, box.get_bytes(key), max_bytes), mbox_index=number)
    except (OSError, mailbox.Error) as exc:
        yield SourceMessage(path, b"", (f"could not read the mbox file: {exc}",))


def _message(path: str, raw: bytes, max_bytes: int | None, size: int | None = None) -> SourceMessage:
    if max_bytes is not None and len(raw) > max_bytes:
        note = (f"the message has {max(size or 0, len(raw))} bytes; only the first {max_bytes} were read "
                f"(raise [parse].max_message_bytes to read more)")
        return SourceMessage(path, raw[:max_bytes], (note,))
    return SourceMessage(path, raw)
