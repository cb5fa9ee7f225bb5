"""The ingest pipeline: read raw messages from where they are, tell what they are, parse them."""

from ingest.classify import Classification, Kind, Record, classify, classify_source
from ingest.sources import SourceError, SourceMessage, iter_messages

__all__ = ["Classification", "Kind", "Record", "SourceError", "SourceMessage", "classify", "classify_source",
           "iter_messages"]
