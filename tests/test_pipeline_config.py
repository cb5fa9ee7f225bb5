"""The [ingest] and [attribution] sections: parsing, the salt, the rules the pipeline gets."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from attribution import DEFAULT_HEADER_RULES, DEFAULT_ORDER, IdentityKind, Source
from config import ConfigError, load_settings
from ingest.pipeline import Pipeline

SALT = "0123456789abcdef-a-test-salt"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ricochet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_build_the_safe_attribution_rules() -> None:
    settings = load_settings(env={})
    rules = settings.attribution.rules
    assert rules.trust.hosts == () and rules.trust.networks == ()
    assert rules.headers == DEFAULT_HEADER_RULES
    assert dict(rules.order) == dict(DEFAULT_ORDER)
    assert [pattern.pattern for pattern in rules.verp] == settings.attribution.verp
    assert settings.ingest.hash_recipients is False and settings.ingest.recipient_salt is None
    assert Pipeline.from_settings(settings).recipient_salt is None


def test_a_file_sets_trust_order_and_the_directory(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("account,customer\nalice@example.com,C1001\n", encoding="utf-8")
    path = write(tmp_path, f"""
[attribution]
trusted_hosts = ["*.provider.example"]
trusted_networks = ["198.51.100.0/24"]
directory_csv = "{tmp_path / 'customers.csv'}"
headers = [{{ kind = "customer", header = "X-PPP-Vhost" }}]

[attribution.order]
account = ["ledger", "header"]
""")
    rules = load_settings(path, env={}).attribution.rules
    assert rules.trust.hosts == ("*.provider.example",)
    assert rules.trust.networks == (ipaddress.ip_network("198.51.100.0/24"),)
    assert rules.directory == {"alice@example.com": "C1001"}
    assert [(rule.kind, rule.header) for rule in rules.headers] == [(IdentityKind.CUSTOMER, "X-PPP-Vhost")]
    assert rules.order[IdentityKind.ACCOUNT] == (Source.LEDGER, Source.HEADER)
    # Kinds the file does not name keep their default order.
    assert rules.order[IdentityKind.IP] == DEFAULT_ORDER[IdentityKind.IP]


def test_environment_overrides_lists_and_flags(tmp_path: Path) -> None:
    env = {"RICOCHET_ATTRIBUTION_TRUSTED_HOSTS": "mx1.provider.example, *.out.provider.example",
           "RICOCHET_ATTRIBUTION_VERP": '["^b-(?P<account>[^@]+)@"]',
           "RICOCHET_INGEST_IMPORT_BATCH_SIZE": "50",
           "RICOCHET_INGEST_HASH_RECIPIENTS": "true", "RICOCHET_RECIPIENT_SALT": SALT}
    settings = load_settings(env=env)
    assert settings.attribution.trusted_hosts == ["mx1.provider.example", "*.out.provider.example"]
    assert [pattern.pattern for pattern in settings.attribution.rules.verp] == ["^b-(?P<account>[^@]+)@"]
    assert settings.ingest.import_batch_size == 50
    assert settings.ingest.recipient_salt == SALT.encode()
    assert Pipeline.from_settings(settings).recipient_salt == SALT.encode()


def test_the_salt_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "salt").write_text(SALT + "\n", encoding="utf-8")
    path = write(tmp_path, f'[ingest]\nhash_recipients = true\nrecipient_salt_file = "{tmp_path / "salt"}"\n')
    assert load_settings(path, env={}).ingest.recipient_salt == SALT.encode()


@pytest.mark.parametrize(("toml", "env", "message"), [
    ("[ingest]\nhash_recipients = true\n", {},
     "[ingest].hash_recipients = true needs a secret salt: set the environment variable "
     "RICOCHET_RECIPIENT_SALT or [ingest].recipient_salt_file"),
    ("[ingest]\nhash_recipients = true\n", {"RICOCHET_RECIPIENT_SALT": "short"},
     "environment variable RICOCHET_RECIPIENT_SALT: the recipient salt must have at least 16 characters, "
     "got 5"),
    ("[ingest]\nimport_batch_size = 0\n", {},
     "ricochet.toml: [ingest].import_batch_size must be an integer between 1 and 100000 "
     "(messages per commit)"),
    ('[attribution]\ntrusted_networks = ["198.51.100.0/33"]\n', {},
     "ricochet.toml: [attribution].trusted_networks is not accepted: [attribution].trusted_networks: "
     "'198.51.100.0/33' is not an IP network"),
    ('[attribution]\nverp = ["(unclosed"]\n', {},
     "ricochet.toml: [attribution].verp is not accepted: [attribution].verp: '(unclosed' is not a valid "
     "regular expression"),
    ('[attribution.order]\naccount = ["telepathy"]\n', {},
     "ricochet.toml: [attribution].order is not accepted: [attribution].order.account: 'telepathy' "
     "is not one of"),
    ('[attribution]\ndirectory_csv = "missing.csv"\n', {},
     "[attribution].directory_csv missing.csv: cannot be read (No such file or directory)"),
    ('[attribution]\ntrusted_hostz = []\n', {}, "ricochet.toml: unknown key [attribution].trusted_hostz"),
])
def test_bad_values_name_the_key_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str,
                                             env: dict[str, str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), env=env)
    assert str(caught.value).startswith(message)


def test_a_bad_directory_csv_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("account,customer\nalice@example.com,\n", encoding="utf-8")
    path = write(tmp_path, f'[attribution]\ndirectory_csv = "{tmp_path / "customers.csv"}"\n')
    with pytest.raises(ConfigError, match="line 2: the customer is empty"):
        load_settings(path, env={})
