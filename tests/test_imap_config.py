"""[imap] and its [[imap.mailbox]] tables: defaults, checks and the sentences a mistake gets.

Expected defaults come from the RFCs (993 for implicit TLS, RFC 8314 section 7.3; 143 for IMAP,
RFC 3501) and docs/imap.md; the sentences from STYLE.md ("name the key and the fix").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    path = tmp_path / "ricochet.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env=env or {})


FBL = """
[[imap.mailbox]]
name = "fbl"
host = "imap.provider.example"
user = "fbl@provider.example"
password_env = "FBL_PASSWORD"
"""


def test_no_mailbox_by_default():
    imap = load_settings(env={}).imap
    assert imap.enabled is True
    assert imap.mailboxes == ()


def test_a_mailbox_gets_safe_defaults(tmp_path: Path):
    (mailbox,) = load(tmp_path, FBL).imap.mailboxes
    assert (mailbox.security, mailbox.port) == ("tls", 993)
    assert (mailbox.folder, mailbox.processed_folder, mailbox.quarantine_folder) == \
        ("INBOX", "Ricochet/Processed", "Ricochet/Quarantine")
    assert mailbox.flag_instead_of_move is False
    assert mailbox.source == "imap:fbl"
    assert (mailbox.batch_size, mailbox.poll_seconds) == (100, 60)


def test_starttls_defaults_to_port_143(tmp_path: Path):
    (mailbox,) = load(tmp_path, FBL + 'security = "STARTTLS"\n').imap.mailboxes
    assert (mailbox.security, mailbox.port) == ("starttls", 143)


def test_several_mailboxes(tmp_path: Path):
    text = FBL + FBL.replace('"fbl"', '"bounces"') + "flag_instead_of_move = true\n"
    fbl, bounces = load(tmp_path, text).imap.mailboxes
    assert (fbl.name, bounces.name, bounces.flag_instead_of_move) == ("fbl", "bounces", True)


@pytest.mark.parametrize(("extra", "message"), [
    ('security = "ssl"', "[[imap.mailbox]] #1 ('fbl'): security must be one of 'tls', 'starttls', 'none', "
                         "got 'ssl'"),
    ('security = "none"', '[[imap.mailbox]] #1 (\'fbl\'): security = "none" would send the password '
                          'unencrypted to imap.provider.example; use "tls" or "starttls", or set '
                          'allow_plaintext = true'),
    ('password_file = "/run/secrets/fbl"', "[[imap.mailbox]] #1 ('fbl'): set exactly one of password_env"),
    ("batch_size = 0", "[[imap.mailbox]] #1 ('fbl'): batch_size must be an integer from 1 to 100000 "
                       "(messages per poll), got 0"),
    ('processed_folder = "INBOX"', "[[imap.mailbox]] #1 ('fbl'): processed_folder and quarantine_folder must "
                                   "differ from folder ('INBOX'); or set flag_instead_of_move = true"),
    ('password = "hunter2"', "[[imap.mailbox]] #1 ('fbl'): unknown key password; a mailbox has name, host, "
                             "user, port"),
])
def test_bad_mailboxes_are_sentences_naming_the_mailbox_and_key(tmp_path: Path, extra: str, message: str):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, FBL + extra + "\n")
    assert str(caught.value).startswith(message)


def test_plaintext_is_allowed_on_loopback_or_when_asked(tmp_path: Path):
    local = FBL.replace("imap.provider.example", "127.0.0.1") + 'security = "none"\n'
    assert load(tmp_path, local).imap.mailboxes[0].port == 143
    asked = FBL + 'security = "none"\nallow_plaintext = true\n'
    assert load(tmp_path, asked).imap.mailboxes[0].allow_plaintext is True


def test_names_must_be_unique_and_usable_as_a_source(tmp_path: Path):
    with pytest.raises(ConfigError, match="two mailboxes are named 'fbl'"):
        load(tmp_path, FBL + FBL)
    with pytest.raises(ConfigError, match="name must be letters, digits"):
        load(tmp_path, FBL.replace('"fbl"', '"my mailbox"'))


def test_required_keys(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"#1 \('fbl'\): host is missing"):
        load(tmp_path, FBL.replace('host = "imap.provider.example"\n', ""))


def test_environment_overrides(tmp_path: Path):
    env = {"RICOCHET_IMAP_ENABLED": "false", "RICOCHET_IMAP_CONNECT_ATTEMPTS": "5",
           "RICOCHET_IMAP_MAILBOX": '[{ name = "env", host = "imap.example", user = "u", '
                                    'password_env = "P" }]'}
    imap = load(tmp_path, FBL, env).imap
    assert (imap.enabled, imap.connect_attempts) == (False, 5)
    assert [mailbox.name for mailbox in imap.mailboxes] == ["env"]
    with pytest.raises(ConfigError, match=r"RICOCHET_IMAP_ENABLED: \[imap\].enabled must be true or false"):
        load(tmp_path, FBL, {"RICOCHET_IMAP_ENABLED": "maybe"})
