"""Ricochet's configuration: ``load_settings()`` -> a frozen, validated ``Settings``."""

from config.settings import (
    DEFAULT_FILE,
    ConfigError,
    DatabaseSettings,
    LogSettings,
    ParseSettings,
    ServerSettings,
    Settings,
    env_var,
    load_settings,
)

__all__ = [
    "DEFAULT_FILE",
    "ConfigError",
    "DatabaseSettings",
    "LogSettings",
    "ParseSettings",
    "ServerSettings",
    "Settings",
    "env_var",
    "load_settings",
]
