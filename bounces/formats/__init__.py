"""The ordered registry of bounce formats: one module per MTA or provider format.

Each module exposes ``NAME`` and ``parse(mail) -> FormatResult | None``; None
(or no drafts) means "not mine". The first module that returns drafts wins,
so the order matters: a module that recognises its MTA by a distinctive
header comes before those that match on common text, provider-specific
formats before the generic RFC 3464 reader, and the flufl.bounce address
finder last. The order follows Sisimai's ``Sisimai::Order->another``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bounces.formats import (
    activehunter,
    amavis,
    amazonses,
    amazonworkmail,
    apachejames,
    barracuda,
    bigfoot,
    courier,
    domino,
    dragonfly,
    exchange2003,
    exchange2007,
    exim,
    ezweb,
    fallback,
    fml,
    gmail,
    gmx,
    googlegroups,
    imailserver,
    kddi,
    mailfoundry,
    mailmarshal,
    mailru,
    mcafee,
    messagingserver,
    mfilter,
    mimecast,
    mxlogic,
    notes,
    office365,
    opensmtpd,
    outlook,
    postfix,
    powermta,
    qmail,
    receivingses,
    rfc3464,
    rfc3834,
    sendgrid,
    sendmail,
    surfcontrol,
    v5sendmail,
    verizon,
    x1,
    x2,
    x3,
    x5,
    x6,
    yahoo,
    yandex,
    zoho,
)
from bounces.model import FormatResult
from rfc822 import Mail

__all__ = ["REGISTRY", "BounceFormat"]


class BounceFormat(Protocol):
    """What a format module provides."""

    NAME: str

    def parse(self, mail: Mail) -> FormatResult | None: ...


REGISTRY: Sequence[BounceFormat] = (
    mailru,
    yandex,
    googlegroups,
    gmail,
    gmx,
    exim,
    sendmail,
    exchange2007,
    office365,
    exchange2003,
    amazonworkmail,
    amazonses,
    barracuda,
    kddi,
    surfcontrol,
    verizon,
    apachejames,
    x2,
    x5,
    fml,
    postfix,
    dragonfly,
    yahoo,
    outlook,
    messagingserver,
    domino,
    notes,
    qmail,
    courier,
    opensmtpd,
    zoho,
    mxlogic,
    mailfoundry,
    mcafee,
    v5sendmail,
    mfilter,
    sendgrid,
    receivingses,
    amavis,
    powermta,
    ezweb,
    imailserver,
    mailmarshal,
    activehunter,
    bigfoot,
    mimecast,
    x1,
    x3,
    x6,
    rfc3464,
    rfc3834,
    fallback,
)
