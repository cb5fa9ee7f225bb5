"""The parse entry point against the shared corpus, with the figures issue 2 sets.

Expected answers are the Sisimai authors' own tables (tests/data/corpus/README.md).
On failure the whole confusion list is printed.
"""

from __future__ import annotations

import pytest

from tests.corpus_score import Score, entry_point_records, score


@pytest.fixture(scope="module")
def outcome() -> Score:
    return score(entry_point_records)


def test_recipients_found(outcome: Score) -> None:
    assert outcome.recipient_rate >= 0.98, outcome.report()


def test_reasons_agree(outcome: Score) -> None:
    assert outcome.reason_rate >= 0.92, outcome.report()


def test_status_exact_where_real(outcome: Score) -> None:
    assert outcome.status_rate >= 0.97, outcome.report()


def test_feedback_type_right_on_every_complaint(outcome: Score) -> None:
    assert outcome.complaint_rows >= 11
    assert outcome.feedback_types_right == outcome.complaint_rows, outcome.report()


def test_nothing_reported_for_negatives(outcome: Score) -> None:
    assert outcome.negatives == 2
    assert outcome.negatives_clean == outcome.negatives, outcome.report()
