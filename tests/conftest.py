"""Test-suite-wide settings.

In CI (the CI variable is set), Hypothesis runs derandomized: the same examples every run, so a
red build always reproduces. On a developer's machine it explores new examples each run.

The suite fails when it leaves the service's run-time files (var/ricochet.db, var/web-secret.key)
in the checkout where there were none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# What the service writes under var/ of the working tree when it runs on its defaults. A test gives
# its app a database and a session secret of its own (tests/db.py, tests/webclient.py), so that the
# suite leaves the checkout as it found it and never shares state with a developer's `make run`.
_RUNTIME_FILES = tuple(Path(__file__).resolve().parent.parent / "var" / name
                       for name in ("ricochet.db", "web-secret.key"))


@pytest.fixture(scope="session", autouse=True)
def _working_tree_untouched() -> Iterator[None]:
    before = {path for path in _RUNTIME_FILES if path.exists()}
    yield
    made = [str(path) for path in _RUNTIME_FILES if path.exists() and path not in before]
    assert not made, f"the tests created {made}: give the app a database or secret of its own"
