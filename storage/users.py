"""Dashboard users: created from the command line, stored with a salted scrypt password hash.

Passwords are low-entropy secrets chosen by people, so unlike API tokens (storage/tokens.py) they
get a slow, salted hash: werkzeug.security's scrypt. ``authenticate`` spends the same hashing
work whether the user exists or not, so a login's timing does not tell which names exist.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from storage.models import User, UserRole
from storage.types import utcnow

__all__ = [
    "HASH_METHOD",
    "MAX_NAME_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "UserError",
    "authenticate",
    "check_password_rules",
    "create_user",
    "find_user",
    "list_users",
    "password_stamp",
    "remove_user",
    "set_disabled",
    "set_password",
    "verify_password",
]

# NIST SP 800-63B, section 5.1.1.2, asks for at least 8; admins of a mail system get a bit more.
MIN_PASSWORD_LENGTH = 10
# werkzeug's scrypt reads the whole password; a cap keeps a huge form field from costing much.
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 100
# werkzeug's scrypt with its default cost (N=2**15, r=8, p=1: 32 MiB and some 100 ms per hash).
# Each hash names its own cost, so a change here applies to new passwords and old ones still check.
HASH_METHOD = "scrypt"
# Checked against when the name is unknown, so that the answer takes as long as for a known one.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method=HASH_METHOD)


class UserError(ValueError):
    """A user cannot be created or changed as asked; ``str(error)`` is the sentence to show."""


def check_password_rules(password: str) -> None:
    """Raise UserError when ``password`` is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def _role(role: UserRole | str) -> UserRole:
    try:
        return UserRole(role)
    except ValueError:
        raise UserError(f"unknown role {role!r}; the roles are "
                        f"{', '.join(member.value for member in UserRole)}") from None


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or any(c.isspace() or not c.isprintable() for c in name):
        raise UserError(f"a user name is 1 to {MAX_NAME_LENGTH} printable characters without spaces")
    return name


def find_user(session: Session, name: str) -> User | None:
    """The user named ``name`` (disabled or not), or None."""
    return session.execute(select(User).where(User.name == name.strip())).scalar_one_or_none()


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def create_user(session: Session, name: str, role: UserRole | str, password: str,
                now: datetime | None = None) -> User:
    """Add the user ``name`` with ``role`` and ``password`` (hashed); UserError on a bad or taken name."""
    name, checked_role = _name(name), _role(role)
    check_password_rules(password)
    if find_user(session, name) is not None:
        raise UserError(f"a user named {name!r} exists already (python app.py user list)")
    moment = now or utcnow()
    user = User(name=name, role=checked_role.value,
                password_hash=generate_password_hash(password, method=HASH_METHOD),
                created_at=moment, password_changed_at=moment)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str, now: datetime | None = None) -> None:
    """Give ``user`` a new password; their other sessions end (see ``password_stamp``)."""
    check_password_rules(password)
    user.password_hash = generate_password_hash(password, method=HASH_METHOD)
    user.password_changed_at = now or utcnow()
    session.flush()


def verify_password(user: User, password: str) -> bool:
    """Whether ``password`` is the user's password (a disabled user's too: check ``disabled_at``)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    return check_password_hash(user.password_hash, password)


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The enabled user with this name and password, or None, in the same time either way."""
    user = find_user(session, name) if name.strip() else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        return None
    if not verify_password(user, password) or user.disabled_at is not None:
        return None
    return user


def password_stamp(user: User) -> str:
    """A short fingerprint of the user's password hash, kept in their session cookie.

    A session whose stamp no longer matches was opened before a password change, and ends.
    The cookie carries a digest of the hash, never the hash itself.
    """
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:16]


def set_disabled(session: Session, name: str, disabled: bool, now: datetime | None = None) -> User:
    """Disable (or enable again) the user ``name``; UserError when there is no such user."""
    user = find_user(session, name)
    if user is None:
        raise UserError(f"no user named {name.strip()!r} (python app.py user list shows them)")
    user.disabled_at = (user.disabled_at or now or utcnow()) if disabled else None
    session.flush()
    return user


def remove_user(session: Session, name: str) -> None:
    """Delete the user ``name``: their sessions end at their next request. UserError when unknown."""
    user = find_user(session, name)
    if user is None:
        raise UserError(f"no user named {name.strip()!r} (python app.py user list shows them)")
    session.delete(user)
    session.flush()
