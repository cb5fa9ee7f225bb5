"""Score the parse entry point on the shared corpus (tests/data/corpus).

Pairs each expected row (from the Sisimai authors' tables, see the corpus
README) with one of our records: by recipient where the row names one, else
by position. Run as a script to print the figures and every disagreement:
``.venv/bin/python tests/corpus_score.py [-v]``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "corpus"

Records = list[dict[str, object]]


@dataclass
class Score:
    rows: int = 0
    recipients_found: int = 0
    reasons_agreed: int = 0
    status_rows: int = 0
    status_exact: int = 0
    complaint_rows: int = 0
    feedback_types_right: int = 0
    negatives: int = 0
    negatives_clean: int = 0
    misses: list[str] = field(default_factory=list)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def recipient_rate(self) -> float:
        return self.recipients_found / self.rows

    @property
    def reason_rate(self) -> float:
        return self.reasons_agreed / self.rows

    @property
    def status_rate(self) -> float:
        return self.status_exact / self.status_rows

    def summary(self) -> str:
        return (f"rows {self.rows}: recipients {self.recipient_rate:.1%}, reasons {self.reason_rate:.1%}, "
                f"status {self.status_rate:.1%} of {self.status_rows}, feedback types "
                f"{self.feedback_types_right}/{self.complaint_rows}, negatives clean "
                f"{self.negatives_clean}/{self.negatives}")

    def report(self) -> str:
        lines = [self.summary(), "reason confusion (expected -> ours: count):"]
        lines += [f"  {e} -> {o}: {n}" for (e, o), n in self.confusion.most_common()]
        lines += ["disagreements:", *("  " + m for m in self.misses)]
        return "\n".join(lines)


def load_rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    expected = [json.loads(line) for line in (CORPUS / "expected.jsonl").open()]
    negatives = [json.loads(line) for line in (CORPUS / "negatives.jsonl").open()]
    return expected, negatives


def score(records_of: Callable[[bytes], Records]) -> Score:
    """Run ``records_of`` on every corpus email and compare with the expected rows."""
    expected, negatives = load_rows()
    by_file: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in expected:
        by_file[str(row["file"])].append(row)
    result = Score()
    for name, rows in sorted(by_file.items()):
        records = records_of((CORPUS / "emails" / name).read_bytes())
        for row in rows:
            _score_row(result, name, row, records)
    for row in negatives:
        result.negatives += 1
        records = records_of((CORPUS / "emails" / str(row["file"])).read_bytes())
        if not records:
            result.negatives_clean += 1
        else:
            result.misses.append(f"{row['file']}: negative gave {len(records)} records")
    return result


def _score_row(result: Score, name: str, row: dict[str, object], records: Records) -> None:
    result.rows += 1
    wanted = str(row.get("recipient") or "").lower()
    index = int(str(row["index"])) - 1
    match = None
    if wanted:
        match = next((r for r in records if str(r.get("recipient", "")).lower() == wanted), None)
        if match is not None:
            result.recipients_found += 1
    elif index < len(records):
        match = records[index]
        result.recipients_found += 1
    ours = str(match["reason"]) if match else "-"
    expected_reason = str(row["reason"])
    if ours == expected_reason:
        result.reasons_agreed += 1
    else:
        result.confusion[(expected_reason, ours)] += 1
        result.misses.append(f"{name} #{row['index']}: reason {expected_reason} -> {ours}"
                             + ("" if match else f" (recipient {wanted or index + 1} not found)"))
    if row.get("status") and not row.get("status_pseudo"):
        result.status_rows += 1
        got = str(match.get("status", "")) if match else ""
        if got == row["status"]:
            result.status_exact += 1
        else:
            result.misses.append(f"{name} #{row['index']}: status {row['status']} -> {got or '-'}")
    if expected_reason == "feedback":
        result.complaint_rows += 1
        if match and match.get("feedback_type") == row.get("feedbacktype"):
            result.feedback_types_right += 1
        else:
            result.misses.append(f"{name}: feedback type {row.get('feedbacktype')} -> "
                                 f"{match.get('feedback_type') if match else '-'}")


def entry_point_records(raw: bytes) -> Records:
    """The records of the single entry point (ingest.classify), falling back to bounces alone."""
    try:
        from ingest.classify import classify
    except ImportError:
        import bounces

        return [{**d.as_dict(), "feedback_type": None} for d in bounces.parse(raw).deliveries]
    records = classify(raw).as_dict()["records"]
    assert isinstance(records, list)
    return records


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    outcome = score(entry_point_records)
    print(outcome.report() if "-v" in sys.argv else outcome.summary())
