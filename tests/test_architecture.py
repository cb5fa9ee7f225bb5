"""Dependencies point one way (STYLE.md, "Layout"): the pure packages import no framework.

Reads every import statement with ``ast`` (including imports inside functions), so a forbidden
edge fails here before it spreads.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Bytes in, plain values out: no web framework, database, scheduler, config loader or network.
PURE = ("rfc822", "bounces", "fbl", "attribution", "reputation", "maillog")
FORBIDDEN = frozenset({
    "flask", "werkzeug", "click", "sqlalchemy", "alembic", "apscheduler", "psycopg", "imapclient",
    "config", "ingest", "storage", "web", "policy", "jobs", "reports", "app",
    "socket", "smtplib", "imaplib", "urllib.request", "http.client", "requests",
})
# Pairs (importer, imported) that must stay apart: each parser stands alone.
APART = {("bounces", "fbl"), ("fbl", "bounces"), ("rfc822", "bounces"), ("rfc822", "fbl")}


def imports_of(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``; relative ones are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # "from urllib import request" reaches urllib.request too.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations(path: Path, owner: str, root: Path = REPO) -> list[str]:
    """Forbidden imports in ``path``, a module of the pure package ``owner`` below ``root``."""
    bad: list[str] = []
    for line, module in imports_of(path, root):
        parts = module.split(".")
        prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        where = f"{path.relative_to(root)}:{line}"
        if prefixes & FORBIDDEN:
            bad.append(f"{where}: {owner} imports {module}")
        elif (owner, parts[0]) in APART:
            bad.append(f"{where}: {owner} imports {module}; "
                       f"{owner} and {parts[0]} must not depend on each other")
    return bad


def pure_modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in PURE if (REPO / package).is_dir()
            for path in sorted((REPO / package).rglob("*.py"))]


def test_pure_packages_exist() -> None:
    names = {package for package, _ in pure_modules()}
    assert {"rfc822", "bounces", "fbl", "maillog"} <= names


def test_pure_packages_import_no_framework() -> None:
    bad = [v for package, path in pure_modules() for v in violations(path, package)]
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


@pytest.mark.parametrize(("owner", "source", "forbidden"), [
    ("bounces", "import flask\n", True),
    ("bounces", "from sqlalchemy.orm import Session\n", True),
    ("bounces", "def f():\n    from config import load_settings\n", True),
    ("bounces", "from fbl import parse\n", True),
    ("fbl", "import bounces.model\n", True),
    ("fbl", "from urllib import request\n", True),
    ("bounces", "from rfc822 import load\nimport email.utils\nimport flufl.bounce\n", False),
    ("bounces", "from .model import Delivery\nfrom configparser import ConfigParser\n", False),
])
def test_checker_catches_forbidden_edges(tmp_path: Path, owner: str, source: str, forbidden: bool) -> None:
    # The checker itself must see an edge, or a green test_pure_packages_import_no_framework means nothing.
    module = tmp_path / owner / "formats" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text(source, encoding="utf-8")
    assert bool(violations(module, owner, root=tmp_path)) is forbidden
