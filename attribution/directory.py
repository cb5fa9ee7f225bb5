"""The account -> customer directory that admins keep as CSV."""

from __future__ import annotations

import csv
import io

__all__ = ["DirectoryError", "load_directory_csv"]


class DirectoryError(ValueError):
    """The CSV has bad rows; ``problems`` lists each one as a sentence with its line number."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("account directory: " + "; ".join(problems))


def load_directory_csv(text: str) -> dict[str, str]:
    """Parse 'account,customer' CSV with a header row into {account (lower case): customer}.

    The header names the two columns (in either order; other columns are
    ignored). Blank lines and lines starting with '#' are skipped. Every bad
    row is reported at once in a ``DirectoryError``: a missing field, an empty
    account or customer, or an account listed twice with different customers.
    """
    rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1)
            if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    if not rows:
        raise DirectoryError(["the file is empty; write a header row 'account,customer' "
                              "and one row per account"])
    line, header = rows[0]
    names = [cell.strip().lower() for cell in header]
    if "account" not in names or "customer" not in names:
        raise DirectoryError([f"line {line}: the header row must name the columns 'account' and 'customer', "
                              f"got {','.join(header)!r}"])
    account_at, customer_at = names.index("account"), names.index("customer")
    directory: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for line, row in rows[1:]:
        if len(row) <= max(account_at, customer_at):
            problems.append(f"line {line}: expected {len(names)} fields ({','.join(names)}), "
                            f"got {len(row)}: {','.join(row)!r}")
            continue
        account, customer = row[account_at].strip().lower(), row[customer_at].strip()
        if not account or not customer:
            missing = "account" if not account else "customer"
            problems.append(f"line {line}: the {missing} is empty: {','.join(row)!r}")
        elif account in directory and directory[account] != customer:
            problems.append(f"line {line}: account {account!r} is already customer {directory[account]!r} "
                            f"(line {first_seen[account]}), not {customer!r}")
        else:
            directory.setdefault(account, customer)
            first_seen.setdefault(account, line)
    if problems:
        raise DirectoryError(problems)
    return directory
