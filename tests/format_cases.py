"""What a hand-written format sample must give: shared by the per-group format tests."""

from __future__ import annotations

from dataclasses import dataclass

from bounces.model import Delivery, Reason


@dataclass(frozen=True)
class Expected:
    file: str
    recipient: str
    status: str
    diagnostic: str  # a substring of the diagnostic
    reason: Reason | None = None  # asserted when the format itself names it
    command: str = ""
    reply_code: str = ""


def assert_delivery(delivery: Delivery, case: Expected) -> None:
    """The fields the sample states: status (when it has one), diagnostic, command, reply code."""
    if case.status:
        assert delivery.status == case.status
    assert case.diagnostic in delivery.diagnostic
    if case.command:
        assert delivery.command == case.command
    if case.reply_code:
        assert delivery.reply_code == case.reply_code
