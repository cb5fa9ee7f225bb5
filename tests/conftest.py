"""Test-suite-wide settings.

In CI (the CI variable is set), Hypothesis runs derandomized: the same examples every run, so a
red build always reproduces. On a developer's machine it explores new examples each run.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
