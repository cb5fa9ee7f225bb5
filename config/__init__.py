"""Ricochet's configuration: ``load_settings()`` -> a frozen, validated ``Settings``."""

from config.settings import (
    DEFAULT_FILE,
    ApiSettings,
    AttributionSettings,
    ConfigError,
    DatabaseSettings,
    ImapSettings,
    IngestSettings,
    LogSettings,
    ParseSettings,
    PolicySettings,
    ReputationSettings,
    ServerSettings,
    Settings,
    env_var,
    load_settings,
)

__all__ = [
    "DEFAULT_FILE",
    "ApiSettings",
    "AttributionSettings",
    "ConfigError",
    "DatabaseSettings",
    "ImapSettings",
    "IngestSettings",
    "LogSettings",
    "ParseSettings",
    "PolicySettings",
    "ReputationSettings",
    "ServerSettings",
    "Settings",
    "env_var",
    "load_settings",
]
