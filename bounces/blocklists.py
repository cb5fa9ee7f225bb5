"""Blocklists named in bounce texts: a receiver refusing our outbound IP because it is listed.

Used by the notifications (an outbound IP seen on a blocklist) and the weekly report (outbound IP
health). A simple substring table, most specific first, matched case-insensitively on a bounce's
diagnostic. The texts are the ones the lists' users write in their 5xx replies: Spamhaus
("listed by ZEN/SBL/XBL/PBL ... spamhaus.org"), Barracuda ("b.barracudacentral.org", "Barracuda
Reputation"), SpamCop ("bl.spamcop.net"), Microsoft ("block list (S3150)", "banned sending IP
(S3140)" of Outlook.com/Office 365), and the corpus's SORBS, UCEPROTECT and Cloudmark samples.
"""

from __future__ import annotations

__all__ = ["BLOCKLISTS", "blocklists_named"]

# (name, substrings in lower case).
BLOCKLISTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Spamhaus", ("spamhaus",)),
    ("Barracuda", ("barracudacentral", "barracuda reputation", "barracuda")),
    ("SpamCop", ("spamcop",)),
    ("Microsoft", ("s3150", "s3140", "banned sending ip", "on our block list", "outlook.com block list",
                   "office 365 ip address")),
    ("SORBS", ("sorbs.net", "sorbs")),
    ("UCEPROTECT", ("uceprotect",)),
    ("Cloudmark", ("cloudmark",)),
)


def blocklists_named(diagnostic: str | None) -> list[str]:
    """The blocklists ``diagnostic`` names, in table order; [] for none (or no text)."""
    text = (diagnostic or "").lower()
    return [name for name, needles in BLOCKLISTS if any(needle in text for needle in needles)]
