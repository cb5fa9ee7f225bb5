"""The MTA-facing hot path: decision cache, send counting, Postfix/Exim socket server, HTTP blueprint.

Answers come from memory only (``PolicyEngine``); the database side (refreshing decisions, flushing
counted sends) feeds the cache and drains the sink from outside the hot path.
"""

from policy.cache import CustomerMap, DecisionCache
from policy.codec import Decoder, Dialect, Limits, ProtocolError, Request, encode_answer, encode_request
from policy.engine import Answer, MemorySendSink, PolicyEngine, Send, SendSink
from policy.texts import DEFAULT_TEXTS, PolicyConfig

__all__ = [
    "DEFAULT_TEXTS",
    "Answer",
    "CustomerMap",
    "DecisionCache",
    "Decoder",
    "Dialect",
    "Limits",
    "MemorySendSink",
    "PolicyConfig",
    "PolicyEngine",
    "ProtocolError",
    "Request",
    "Send",
    "SendSink",
    "encode_answer",
    "encode_request",
]
