"""Settings: defaults from config/default.toml, a file of the operator's, RICOCHET_* variables.

Expected values come from default.toml itself and from the error sentences promised in
docs/config.md and STYLE.md ("config/default.toml: [imap].port must be an integer, got 'abc'").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from config import DEFAULT_FILE, ConfigError, env_var, load_settings

REPO = Path(__file__).resolve().parent.parent


def default_keys() -> list[tuple[str, str, object]]:
    with DEFAULT_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    return [(section, key, value) for section, table in data.items() for key, value in table.items()]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ricochet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_values_of_default_toml() -> None:
    settings = load_settings(env={})
    for section, key, value in default_keys():
        assert getattr(getattr(settings, section), key) == value, f"[{section}].{key}"


def test_embedded_defaults_listen_locally_on_sqlite() -> None:
    settings = load_settings(env={})
    assert settings.server.host == "127.0.0.1"
    assert settings.database.url.startswith("sqlite:///")


def test_settings_are_frozen() -> None:
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


def test_a_file_overrides_only_the_keys_it_sets(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9025\n\n[log]\nlevel = "debug"\n')
    settings = load_settings(path, env={})
    assert settings.server.port == 9025
    assert settings.log.level == "DEBUG"
    assert settings.server.host == "127.0.0.1"


def test_environment_overrides_file_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9025\n")
    env = {"RICOCHET_SERVER_PORT": "9100", "RICOCHET_SERVER_HOST": "0.0.0.0",
           "RICOCHET_DATABASE_URL": "postgresql+psycopg://ricochet@db/ricochet",
           "RICOCHET_PARSE_MAX_MESSAGE_BYTES": "2048", "RICOCHET_CONFIG": "ignored-here",
           "PATH": "/usr/bin"}
    settings = load_settings(path, env=env)
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"
    assert settings.server.threads == 8  # default.toml's
    assert (settings.server.trusted_proxy, settings.server.trusted_proxy_count) == ("", 1)
    spelled = load_settings(env={"RICOCHET_SERVER_TRUSTED_PROXY": " 0:0::1 "})
    assert spelled.server.trusted_proxy == "::1"  # as waitress sees the peer's address
    assert settings.database.url == "postgresql+psycopg://ricochet@db/ricochet"
    assert settings.parse.max_message_bytes == 2048


@pytest.mark.parametrize(("toml", "message"), [
    ('[server]\nport = "abc"\n',
     "ricochet.toml: [server].port must be an integer between 1 and 65535, got 'abc'"),
    ("[server]\nport = 70000\n",
     "ricochet.toml: [server].port must be an integer between 1 and 65535, got 70000"),
    ('[log]\nlevel = "LOUD"\n',
     "ricochet.toml: [log].level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'"),
    ("[server]\nprot = 9025\n", "ricochet.toml: unknown key [server].prot; [server] has host, port, threads, "
                                "trusted_proxy, trusted_proxy_count"),
    ("[server]\nthreads = 0\n",
     "ricochet.toml: [server].threads must be an integer between 1 and 256 (worker threads), got 0"),
    ('[server]\ntrusted_proxy = "proxy.hoster.example"\n',
     "ricochet.toml: [server].trusted_proxy must be one IP address (the reverse proxy's, such as "
     '"127.0.0.1"), "*" for any peer, or "" for none, got \'proxy.hoster.example\''),
    ("[server]\ntrusted_proxy = 1\n",
     'ricochet.toml: [server].trusted_proxy must be the address of your reverse proxy in quotes, such as '
     '"127.0.0.1", or "*" or "", got 1'),
    ("[imap]\nport = 993\n", "ricochet.toml: unknown key [imap].port; [imap] has enabled, timeout_seconds, "
                             "connect_attempts, backoff_seconds, backoff_max_seconds, mailbox"),
    ("[smtp]\nport = 25\n", "ricochet.toml: unknown section [smtp]; the sections are [server], [log], "
                            "[database], [parse], [api], [ingest], [attribution], [imap], [reputation], "
                            "[policy], [notify], [reports], [web]"),
    ('[database]\nurl = "ricochet.db"\n', "ricochet.toml: [database].url must be a database URL such as "
                                          "sqlite:///var/ricochet.db or postgresql+psycopg://user:password"
                                          "@host/ricochet, got 'ricochet.db'"),
    ("[parse]\nmax_message_bytes = true\n",
     "ricochet.toml: [parse].max_message_bytes must be an integer of at least 1024 (bytes), got True"),
    ("[notify]\nkeep_failed_days = 0\n",
     "ricochet.toml: [notify].keep_failed_days must be an integer between 1 and 3650 (days), got 0"),
    ('[reports]\nmail_to = "noc@example.net"\n',
     'ricochet.toml: [reports].mail_to must be a list of e-mail addresses, such as ["noc@example.net"] ([] '
     "for [notify].admins), got 'noc@example.net'"),
])
def test_bad_file_values_name_the_key_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  toml: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), env={})
    assert str(caught.value) == message


@pytest.mark.parametrize(("env", "message"), [
    ({"RICOCHET_SERVER_PORT": "abc"}, "environment variable RICOCHET_SERVER_PORT: [server].port must be an "
                                      "integer between 1 and 65535, got 'abc'"),
    ({"RICOCHET_LOG_LEVEL": "chatty"}, "environment variable RICOCHET_LOG_LEVEL: [log].level must be one of "
                                       "DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'chatty'"),
    ({"RICOCHET_SERVER_PROT": "1"}, "environment variable RICOCHET_SERVER_PROT: unknown key [server].prot; "
                                    "[server] has host, port, threads, trusted_proxy, trusted_proxy_count"),
    ({"RICOCHET_SERVER_TRUSTED_PROXY": "10.0.0.0/8"},
     "environment variable RICOCHET_SERVER_TRUSTED_PROXY: [server].trusted_proxy must be one IP address (the "
     'reverse proxy\'s, such as "127.0.0.1"), "*" for any peer, or "" for none, got \'10.0.0.0/8\''),
    ({"RICOCHET_SERVER_TRUSTED_PROXY_COUNT": "0"},
     "environment variable RICOCHET_SERVER_TRUSTED_PROXY_COUNT: [server].trusted_proxy_count must be an "
     "integer between 1 and 10 (proxies), got 0"),
    ({"RICOCHET_SERVER_THREADS": "many"},
     "environment variable RICOCHET_SERVER_THREADS: [server].threads must be an integer between 1 and 256 "
     "(worker threads), got 'many'"),
])
def test_bad_environment_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert str(caught.value) == message


def test_invalid_toml_and_missing_file_are_sentences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^ricochet.toml: is not valid TOML \(.*\); fix the syntax$"):
        load_settings(write(tmp_path, "[server\nport = 1\n"), env={})
    with pytest.raises(ConfigError, match=r"^nowhere.toml: no such file; give the path of an existing TOML"):
        load_settings("nowhere.toml", env={})


def test_every_default_key_is_commented() -> None:
    lines = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            assert lines[number - 1].startswith("#"), f"default.toml line {number + 1} has no comment: {line}"


def test_docs_list_every_key_its_default_and_variable() -> None:
    docs = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    for section, key, value in default_keys():
        row = next((line for line in docs.splitlines() if f"`[{section}].{key}`" in line), "")
        assert row, f"docs/config.md does not describe [{section}].{key}"
        assert f"`{env_var(section, key)}`" in row
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        assert f"`{shown}`" in row, f"docs/config.md gives another default for [{section}].{key}"
