"""The diagnostic phrases that name a bounce reason: one table per reason, matched on lower-case text.

Phrases after the `match` lists of Sisimai::Reason::* (BSD-2-Clause) as Sisimai 5 split them
(authfailure, badreputation, requireptr, notcompliantrfc, speeding, failedstarttls), plus the
wording of the corpus samples named in the comments. A plain string matches as a substring; a
compiled pattern as a regular expression. Each reason's entries are compiled once, at import: the
plain phrases into substring tests, the patterns into one alternation per reason.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # the re module's own parser
import re._parser as sre_parse  # type: ignore[import-not-found]
from collections.abc import Iterable

from bounces.model import Reason

__all__ = ["PHRASES", "Said", "first_match", "matches"]

R = Reason
Entry = str | re.Pattern[str]


def rx(pattern: str) -> re.Pattern[str]:
    """A phrase that needs a regular expression (spaces are literal, as in Sisimai's [ ])."""
    return re.compile(pattern)


PHRASES: dict[Reason, tuple[Entry, ...]] = {
    R.MAILBOXFULL: (
        # Sisimai::Reason::MailboxFull: Postfix/Sendmail/qmail local delivery, vpopmail, Exchange
        "account disabled temporarly for exceeding receiving limits", "account is exceeding their quota",
        "account is over quota", "account is temporarily over quota", "delivery failed: over quota",
        "disc quota exceeded", "does not have enough space", "exceeded storage allocation",
        "exceeding its mailbox quota", "full mailbox", "is over disk quota", "is over quota temporarily",
        "mail file size exceeds the maximum size allowed for mail delivery", "mail quota exceeded",
        "mailbox exceeded the local limit", "mailbox full", "mailbox has exceeded its disk space limit",
        "mailbox is full", "mailbox over quota", "mailbox quota usage exceeded",
        "mailbox size limit exceeded",
        "maildir over quota", "maildir delivery failed: userdisk quota ",
        "maildir delivery failed: domaindisk quota ", "mailfolder is full", "not enough storage space in",
        "over the allowed quota", "quota exceeded", "quota violation for", "recipient reached disk quota",
        "recipient rejected: mailbox would exceed maximum allowed storage",
        "the recipient mailbox has exceeded its disk space limit", "the user's space has been used up",
        "the user you are trying to reach is over quota", "user has exceeded quota, bouncing mail",
        "user has too many messages on the server", "user is over quota", "user is over the quota",
        "user over quota", "was automatically rejected: quota exceeded", "would be over the allowed quota",
        "too much mail data",            # NTT docomo: "552 too much mail data"
        "boite du destinataire pleine",  # Orange / La Poste (French)
        "mailbox exceeds allowed size", "quotaexceeded",  # Exchange Online (STOREDRV QuotaExceededException)
        "inbox is out of storage space",  # Gmail (recent wording)
        # German (GMX, Web.de, T-Online), Italian (Libero, Aruba), French, Spanish, Portuguese, Japanese
        "postfach voll", "postfach ist voll", "mailbox voll", "casella piena", "casella di posta piena",
        "spazio esaurito", "quota superata", "boite pleine", "boîte pleine", "boite aux lettres pleine",
        "boîte aux lettres pleine", "buzón lleno", "buzon lleno", "caixa postal cheia",
        "caixa de correio cheia",
        "容量オーバー", "容量超過", "メールボックスがいっぱい", "メールボックスが一杯",
    ),
    R.MESGTOOBIG: (
        # Sisimai::Reason::MesgTooBig
        "exceeded maximum inbound message size", "line limit exceeded", "max message size exceeded",
        "message file too big", "message length exceeds administrative limit",
        "message size exceeds fixed limit", "message size exceeds fixed maximum message size",
        "message size exceeds maximum value", "message too big", "message too large for this ",
        "size limit", "taille limite du message atteinte",
        "message is too large", "message size exceeds",  # Amazon SES receiving, Exim
    ),
    R.EXCEEDLIMIT: (
        # Sisimai::Reason::ExceedLimit
        "message header size exceeds limit", "message too large",
    ),
    R.SUSPEND: (
        # Sisimai::Reason::Suspend: QQ, 163.com, vpopmail, Orange, Gmail, Yahoo
        " is currently suspended", " temporary locked", "boite du destinataire archivee",
        "email account that you tried to reach is disabled", "has been suspended", "invalid/inactive user",
        "is a deactivated mailbox", "mailbox currently suspended", "mailbox is frozen",
        "mailbox unavailable or access denied", "recipient rejected: temporarily inactive",
        "recipient suspend the service", "this account has been disabled or discontinued",
        "this mailbox is disabled", "user suspended", "vdelivermail: account is locked email bounced",
        "email account that you tried to reach is inactive",  # Gmail (rhost-google)
        "account that you tried to reach is disabled",
        "compte desactive", "compte désactivé", "le compte du destinataire est bloque",  # French
        "konto deaktiviert", "account disattivato", "conta desativada",  # German, Italian, Portuguese
        "account has been disabled", "account is disabled", "mailbox disabled",  # Exchange, Yahoo
        "account is inactive", "inactive account",
        "user account is expired", "account expired",
    ),
    R.HASMOVED: (
        # Sisimai::Reason::HasMoved
        " has been replaced by ",
        "no longer on server",  # Postfix relay: "recipient no longer on server" (5.1.6)
    ),
    R.NORELAYING: (
        # Sisimai::Reason::NoRelaying: Sendmail, Postfix, qmail, MailEnable
        "as a relay", "insecure mail relay",
        "is not permitted to relay through this server without authentication",
        "mail server requires authentication when attempting to send to a non-local e-mail address",
        "not a gateway", "not allowed to relay through this machine", "not an open relay, so get lost",
        "not local host", "relay access denied", "relay denied", "relaying mail to ", "relay not permitted",
        "relaying denied", "that domain isn't in my list of allowed rcpthost",
        "this system is not configured to relay mail", "unable to relay for", "we don't handle mail for",
        "relaying not allowed", "relay not allowed", "relaying is not allowed",
        "message rejected: email address is not verified",  # Amazon SES: unverified sending identity
    ),
    R.AUTHFAILURE: (
        # Sisimai 5 AuthFailure: SPF, DKIM and DMARC failures (Gmail, Outlook, Yahoo, Exim ACLs)
        "//spf.pobox.com", "bad spf records for", "dmarc policy", "please inspect your spf settings",
        "sender policy framework (spf) fail", "sender policy framework violation",
        "spf (sender policy framework) domain authentication fail", "spf check: fail",
        "spf check failed", "dmarc check failed",  # Tencent QQ
        "spf validation failed", "spf: fail", "spf fail", "failed spf", "dkim validation failed",
        "dmarc validation failed", "failed dmarc", "dmarc reject", "dmarc verification failed",
        "is not allowed to send mail from", "is not authorized to send mail on behalf of",
        "does not designate", "not permitted by domain",  # SPF receivers quoting RFC 7208 results
        "unauthenticated email from", "this message does not pass authentication checks",  # Gmail 5.7.26
        "sender is unauthenticated",  # Gmail 2024 bulk-sender rules
        "message not authenticated", "fails to pass authentication checks",  # Gmail 5.7.1 / 5.7.26
        "does not have authentication information", "doesn't meet the required authentication level",
        # Gmail 2024 sender requirements: 4.7.27 / 4.7.30 / 4.7.32 / 5.7.26
        "authentication didn't pass", "isn't aligned with either the authenticated spf or dkim",
        "did not pass dmarc", "does not pass dmarc",
        "rejected due to dmarc", "rejected by dmarc", "dmarc_reject",
        rx(r"is not allowed to send from <[^ ]+> per it's spf record"),
        rx(r"spf: [^ ]+ is not allowed to send mail"),
        rx(r"spf(?: record)? (?:check )?(?:failed|fail|failure)"),
    ),
    R.USERUNKNOWN: (
        # Sisimai::Reason::UserUnknown: Sendmail, Postfix, qmail, Exim, Exchange, Courier, Domino...
        rx(r"#5\.1\.1 bad address"), rx(r"<[^ ]+> not found"), rx(r"<[^ ]+@[^ ]+>\.\.\. blocked by "),
        "550 address invalid", "5.1.0 address rejected.",
        rx(r"account [^ ]+ does not exist at the organization"),
        rx(r"adresse d au moins un destinataire invalide\. invalid recipient\.[0-9a-z_]+41[68]"),
        "address does not exist", "address not present in directory", "address unknown",
        "archived recipient", rx(r"bad[-_ \t]recipient"), "can't accept user", "does not exist.",
        "destination addresses were unknown", "destination server rejected recipients",
        "email address does not exist", "email address could not be found",
        "invalid address", "invalid mailbox", "invalid recipient",
        "is not a known user", "is not a valid mailbox", "is not an active address at this host",
        rx(r"mailbox [^ ]+ does not exist"), rx(r"mailbox [^ ]+@[^ ]+ unavailable"),
        "mailbox does not exist", "mailbox invalid", "mailbox is inactive", "mailbox is unavailable",
        "mailbox not present", "mailbox not found", "mailbox unavailable",
        rx(r"no  [^ ]+ in name directory"), "no account by that name here", "no existe dicha persona",
        "no existe ese usuario ", "no mail box available for this user",
        "no mailbox by that name is currently available", "no mailbox found",
        "no matches to nameserver query", "no such address here", "no such mailbox",
        "no such person at this address", "no such recipient", "no such user",
        "no thank you rejected: account unavailable:", "no valid recipients, bye",
        rx(r"non[- ]?existent user"), "not a valid recipient", "not a valid user here", "not a local address",
        "not email addresses", rx(r"rcpt <[^ ]+> does not exist"),
        "recipient address rejected. (in reply to rcpt to command)",
        rx(r"recipient [^ ]+ was not found in"), "recipient address rejected: access denied",
        "recipient address rejected: invalid user", "recipient address rejected: invalid-recipient",
        rx(r"recipient address rejected: user [^ ]+ does not exist"),
        rx(r"recipient address rejected: user unknown in [^ ]+ table"),
        "recipient address rejected: unknown user", "recipient does not exist",
        "recipient is not local", "recipient not exist", "recipient not found", "recipient not ok",
        "recipient refuses to accept your mail", "recipient unknown",
        "requested action not taken: mailbox unavailable", "resolver.adr.recipient notfound",
        "resolver.adr.recipientnotfound",  # Exchange Online
        rx(r"said: 550[- ]5\.1\.1 [^ ]+ user unknown "), "sorry, user unknown", "sorry, badrcptto",
        "sorry, no mailbox here by that name", "sorry, your envelope recipient has been denied",
        "that domain or user isn't in my list of allowed rcpthosts",
        "the email account that you tried to reach does not exist",
        "the following recipients was undeliverable", "the user's email name is not found",
        "there is no one at this address", "this address no longer accepts mail",
        "this email address is wrong or no longer valid", "this recipient is in my badrecipientto list",
        "this recipient is not in my validrcptto list", "this spectator does not exist",
        rx(r"this user doesn'?t have a [^ ]+ account"),
        rx(r"unknown e-?mail address"), rx(r"unknown local[- ]part"), "unknown mailbox",
        "unknown recipient", "unknown user",
        rx(r"user [^ ]+ was not found"), rx(r"user [^ ]+ does not exist"), "user does not exist",
        "user missing home directory", "user not active", "user not exist", "user not found",
        "user not known", "user unknown", "utilisateur inconnu !",
        "vdeliver: invalid or unknown virtual user",
        "your envelope recipient is in my badrcptto list",
        "because the address couldn't be found",  # Gmail "Address not found" notice
        "no mailbox here by that name", "no such local user", "unknown or illegal alias",  # qmail, Sendmail
        "user doesn't exist", "this address does not receive mail", "account does not exist",
        # Exchange 2007 and later (lhost-exchange2007-06)
        "resolver.adr.recipnotfound", "resolver.adr.exrecipnotfound",
        "nessun utente simile in questo indirizzo",  # Italian (Libero / Virgilio)
        "utente inesistente", "utente non esistente", "utente sconosciuto", "indirizzo inesistente",
        "destinatario inesistente", "destinatario sconosciuto", "casella di posta inesistente",  # Italian
        "benutzer unbekannt", "unbekannter benutzer", "empfänger unbekannt", "unbekannter empfänger",
        "adresse unbekannt", "postfach existiert nicht",  # German
        "adresse inconnue", "destinataire inconnu", "utilisateur inconnu", "adresse destinataire invalide",
        "destinataire invalide",  # French (La Poste "Adresse destinataire invalide", rhost-franceptt-02)
        "usuario desconocido", "usuário desconhecido", "usuario inexistente",  # Spanish, Portuguese
        "存在しない", "存在しません", "宛先不明",  # Japanese: "does not exist", "unknown destination"
    ),
    R.FILTERED: (
        # Sisimai::Reason::Filtered: recipient-side filters (AOL, Facebook, Exchange, mail.ru...)
        "because the recipient is only accepting mail from specific email addresses",
        "bounced address",
        "due to extended inactivity new mail is not currently being accepted for this mailbox",
        "has restricted sms e-mail", "is not accepting any mail", "message rejected due to user rules",
        "not found recipient account", "refused due to recipient preferences", "resolver.rst.notauthorized",
        "this account is protected by", "user not found", "user reject",
        "we failed to deliver mail because the following address recipient id refuse to receive mail",
        "you have been blocked by the recipient",
        "mail is rejected by recipients",  # Tencent QQ
        "受信拒否",  # Japanese carriers: the recipient's reception-refusal setting
    ),
    R.REQUIREPTR: (
        # Sisimai 5 RequirePTR: no or bad reverse DNS (Yahoo, Gmail, Outlook, mail.ru, Exim ACLs)
        "access denied. ip name lookup failed",
        "all mail servers must have a ptr record with a valid reverse dns entry",
        "bad dns ptr resource record", "cannot find your hostname", "cannot resolve your address",
        "fix reverse dns for", "ips with missing ptr records", "no ptr record found.",
        "please get a custom reverse dns name from your isp for your host", "ptr record setup",
        "reverse dns failed", "reverse dns required", "sender ip reverse lookup rejected",
        "the ip address sending this message does not have a ptr record",  # Gmail
        "the corresponding forward dns entry does not point to the sending ip",  # Gmail
        "this system will not accept messages from servers/devices with no reverse dns",
        "unresolvable relay host name",
        "we do not accept mail from hosts with dynamic ip or generic dns ptr-records",  # mail.ru
        "must have a reverse dns record",  # Exchange Online 5.7.25
        "reverse dns lookup failed", "no reverse dns", "reverse dns entry", "reverse hostname",
        "missing ptr record", "does not have a ptr record", "invalid ptr record", "ptr record",
        "rdns", "reverse lookup",
        rx(r"domain [^ ]+ mismatches client ip"), rx(r"dns lookup failure: [^ ]+ try again later"),
        rx(r"reverse dns lookup for host [^ ]+ failed permanently"),
        rx(r"server access [^ ]+ forbidden by invalid rdns record of your mail server"),
        rx(r"service permits \d+ unverifyable sending ips"),
        rx(r"client host rejected: cannot find your (?:reverse )?hostname"),
    ),
    R.NOTCOMPLIANTRFC: (
        # Sisimai 5 NotCompliantRFC: RFC 5322 violations (Gmail, amavis "bad header")
        "this message is not rfc 5322 compliant", "not rfc 5322 compliant", "rfc 5322 compliant",
        "https://support.google.com/mail/?p=rfcmessagenoncompliant",
        "duplicate header", "multiple addresses in from", "message contains multiple from",
        rx(r"(?:bad|invalid|malformed) header (?:found|detected)|bad_header|badh\b"),
    ),
    R.BADREPUTATION: (
        # Sisimai 5 BadReputation: Gmail, Yahoo, Microsoft reputation deferrals
        "a poor email reputation score", "has been temporarily rate limited due to ip reputation",
        "ip/domain reputation problems", "likely suspicious due to the very low reputation",
        "temporarily deferred due to unexpected volume or user complaints",
        "the sending mta's poor reputation", "poor reputation", "low reputation", "bad reputation",
        "ip reputation", "sender reputation", "domain reputation",
        rx(r"messages from [^ ]+ temporarily deferred due to user complaints"),
    ),
    R.REJECTED: (
        # Sisimai::Reason::Rejected: the envelope sender was refused (Exim, McAfee, SonicWall...)
        "access denied (in reply to mail from command)", "access denied (sender blacklisted)",
        "address rejected", "administrative prohibition", "batv failed to verify", "batv validation failure",
        "backscatter protection detected an invalid or expired email address",
        "because the sender isn't on the recipient's list of senders to accept mail from",
        "bogus mail from", "connections not accepted from servers without a valid sender domain",
        "denied [bouncedeny]", "denied by secumail valid-address-filter",
        "delivery not authorized, message refused", "does not exist e2110", "domain of sender address ",
        "email address is on senderfilterconfig list", "emetteur invalide",
        "empty envelope senders not allowed",
        "envelope blocked – ", "error: no third-party dsns",
        "from: domain is invalid. please provide a valid from:", "fully qualified email address required",
        "invalid domain, see <url:", "invalid sender", "is not a registered gateway user",
        "mail from not owned by user", "mx records for ",
        "null sender is not allowed", "recipient addresses rejected : access denied",
        "recipient not accepted. (batv: no tag", "returned mail not accepted here",
        "rfc 1035 violation: recursive cname records for", "rule imposed mailbox access for",
        "sender address has been blacklisted", "sender email address rejected", "sender is in my black list",
        "sender is spammer", "sender not pre-approved", "sender rejected", "sender domain is empty",
        "sender verify failed", "syntax error: empty email address",
        "the message has been rejected by batv defense", "this server does not accept mail from",
        "transaction failed unsigned dsn for", "unroutable sender address",
        "you are not allowed to post to this mailing list",
        "you are sending to/from an address that has been blacklisted",
        "your access to submit messages to this e-mail system has been rejected",
        "sender address rejected",  # Postfix smtpd_sender_restrictions
    ),
    R.HOSTUNKNOWN: (
        # Sisimai::Reason::HostUnknown
        "domain does not exist", "domain is not reachable", "domain must exist",
        "host or domain name not found",
        "host unknown", "host unreachable", "mail domain mentioned in email address is unknown",
        "name or service not known", "no such domain", "recipient address rejected: unknown domain name",
        "recipient domain must exist", "the account or domain may not exist", "unknown host",
        "unroutable address", "unrouteable address",
        rx(r"553 [^ ]+ does not exist"),
        "domain not found", "dominio inesistente",  # Italian
    ),
    R.SPAMDETECTED: (
        # Sisimai::Reason::SpamDetected: SpamAssassin, Barracuda, cPanel/Exim, mail.ru, QQ, SendGrid...
        "\"the mail server detected your message as spam and has prevented delivery.\"",
        rx(r"(?:\d\.\d\.\d|\d{3}) spam\Z"), rx(r"554 5\.7\.0 reject, id=\d+"),
        "appears to be unsolicited", "blacklisted url in message", "block for spam",
        "blocked by policy: no spam please", "blocked by spamassassin",
        "blocked for abuse. see http://att.net/blocks", "bulk email",
        "considered unsolicited bulk e-mail (spam) by our mail filters", "content filter rejection",
        "cyberoam anti spam engine has identified this email as a bulk email", "denied due to spam list",
        rx(r"greylisted.?. please try again in"), "high probability of spam",
        rx(r"https?://(?:www\.spamhaus\.org|dsbl\.org|mail\.163\.com/help/help_spam_16\.htm)"),
        "listed in work.drbl.imedia.ru", "mail appears to be unsolicited", "mail content denied",
        rx(r"mail rejete\. mail rejected\. [0-9a-z_]+506"), "may consider spam",
        "message considered as spam or virus", "message contains spam or virus", "message content rejected",
        "message detected as spam", "message filtered",
        "message is being rejected as it seems to be a spam", "message looks like spam",
        "message refused by mailmarshal spamprofiler", "message refused by trustwave seg spamprofiler",
        "message rejected as spam", "message rejected because of unacceptable content",
        "message rejected due to suspected spam content", "message rejected for policy reasons",
        "our email server thinks this email is spam",
        rx(r"our filters rate at and above \d+ percent probability of being spam"),
        "our system has detected that this message is", "probable spam", "reject bulk.advertising",
        "rejected: spamassassin score ", rx(r"rejected by [^ ]+ \(spam\)"),
        rx(r"rejected due to spam (?:url in )?(?:classification|content)"),
        "rejecting banned content", "rejecting mail content",
        "related to content with spam-like characteristics",
        rx(r"rule imposed as [^ ]+ is blacklisted on"), rx(r"sender domain listed at [^ ]+"),
        "sending address not accepted due to spam filter", rx(r"spam [^ ]+ exceeded"), "spam blocked",
        "spam check", "spam content matched", "spam detected", "spam email", "spam message rejected.",
        "spam not accepted", "spam refused", "spam rejection", "spam reporting address", "spam score ",
        "spambouncer identified spam", "spamming not allowed", "too much spam.",
        "the email message was detected as spam", "the message has been rejected by spam filtering engine",
        "the message was rejected due to classification as bulk mail",
        "the content of this message looked like spam",
        "cannot be forwarded because it was detected as spam", "is classified as spam and is rejected",
        "this message appears to be spam", "this message has been identified as spam",
        "this message has been scored as spam with a probability",
        rx(r"this message scored [^ ]+ spam points"),
        "this message was classified as spam",
        "this message was rejected by recurrent pattern detection system",
        "transaction failed spam message not queued", "we dont accept spam", "you're using a mass mailer",
        "your email appears similar to spam we have received before",
        "your email breaches local uribl policy",
        "your email had spam-like ", rx(r"your email is (?:considered|probably) spam"),
        "your email was detected as spam", "your message as spam and has prevented delivery",
        "your message has been temporarily blocked by our filter",
        "your message has been rejected because it appears to be spam",
        "your message has triggered a spam block", "your message may contain the spam contents",
        "your message failed several antispam checks",
        "spam is embedded in the email", "suspected spam",  # Tencent QQ
        "likely unsolicited mail",  # Gmail 5.7.1 "...is likely unsolicited mail"
    ),
    R.SPEEDING: (
        # Sisimai 5 Speeding: rate limits (Gmail 4.7.28, Yahoo, Outlook)
        "mail sent from your ip address has been temporarily rate limited", "please try again slower",
        "receiving mail at a rate that prevents additional messages from being delivered",
        "has been rate limited", "are being rate limited", "exceeded the rate limit", "sending too fast",
        "mail flood detected",  # IANA X.7.28
    ),
    R.TOOMANYCONN: (
        # Sisimai::Reason::TooManyConn: SendGrid, Microsoft, free.fr, Sendmail, NTT docomo
        "all available ips are at maximum connection limit", "connection rate limit exceeded",
        "exceeds per-domain connection limit for", "has exceeded the max emails per hour ",
        "throttling failure: daily message quota exceeded",
        "throttling failure: maximum sending rate exceeded",
        "too many connections", "too many concurrent smtp connections", "too many errors from your ip",
        "too many recipients", "too many smtp sessions for this host", "trop de connexions, ",
        "we have already made numerous attempts to deliver this message",
        "too many sessions from",  # Cox
        "connection frequency limited", "ip frequency limited", "domain frequency limited",
        "sender frequency limited",  # Tencent QQ
    ),
    R.BLOCKED: (
        # Sisimai::Reason::Blocked: blocklists and refused hosts (Spamhaus, Barracuda, SFR, iCloud...)
        " said: 550 blocked", rx(r"\([^ ]+@[^ ]+:blocked\)"), rx(r"access from ip address [^ ]+ blocked"),
        "banned sending ip", "bad sender ip address", "blacklisted by",
        rx(r"(?:blocked|refused) - see https?://"), "blocked using ",
        "can't determine purported responsible address", rx(r"client host [^ ]+ blocked using"),
        rx(r"client host rejected: abus detecte gu_eib_0[24]"),
        "client host rejected: may not be mail exchanger", "client host rejected: was not authenticated",
        "confirm this mail server", "connection dropped", "connection refused by", "connection reset by peer",
        "connection was dropped by remote host",
        "connections not accepted from ip addresses on spamhaus xbl",
        rx(r"connections will not be accepted from [^ ]+, because the ip is in spamhaus's list"),
        "currently sending spam see: ", "domain does not exist:",
        rx(r"dnsbl:(?:attrbl|rbl \d+< .+ >_is_blocked)"), "dynamic/zombied/spam ips blocked",
        rx(r"email blocked by (?:[^ ]+\.barracudacentral\.org|spamhaus)"), "error: no valid recipients from ",
        "esmtp not accepting connections", "extreme bad ip profile", "go away", "helo command rejected:",
        rx(r"host [^ ]+ refused to talk to me: \d+ blocked"), "host network not allowed",
        "hosts with dynamic ip", "http://www.spamcop.net/bl.", "invalid ip for sending mail of domain",
        rx(r"ip \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} is blocked by earthlink"),
        rx(r"is in a black list(?: at [^ ]+\.)?"), rx(r"is in an [^ ]+rbl on [^ ]+"),
        rx(r"mail server at [^ ]+ is blocked"), rx(r"mail from \d+\.\d+\.\d+\.\d refused:"),
        rx(r"message from [^ ]+ rejected based on blacklist"),
        "message was rejected for possible spam/virus content",
        "no access from mail server", "not currently accepting mail from your ip",
        "part of their network is on our block list", "please use the smtp server of your isp",
        "rejected because the sending mta or the sender has not passed validation", "rejecting open proxy",
        "sender ip address rejected", rx(r"server access forbidden by your ip "),
        rx(r"server ip [^ ]+ listed as abusive"), "service not available, closing transmission channel",
        "smtp error from remote mail server after initial connection:",
        "sorry, that domain isn't in my list of allowed rcpthosts",
        "sorry, your remotehost looks suspiciously like spammer",
        rx(r"the (?:email|domain|ip) [^ ]+ is blacklisted"),
        "to submit messages to this e-mail system has been rejected", "too many spams from your ip",
        "too many unwanted messages have been sent from the following ip address above",
        rx(r"veuillez essayer plus tard\. service refused, please try later\. [0-9a-z_]+(?:103|510)"),
        rx(r"was blocked by [^ ]+"), "we do not accept mail from dynamic ips",
        "you are not allowed to connect", "you are sending spam", "your email address has been blacklisted",
        "your network is temporary blacklisted",
        rx(r"your sender's ip address is listed at [^ ]+\.abuseat\.org"), "your server requires confirmation",
        "suspected spam ip",  # Tencent QQ
        "access denied, banned sender", "access denied, banned sending ip",  # Exchange Online
        "using customer block list", "blocked by customer block list",
        "listed on spamhaus", "listed at spamhaus", "is listed on", "blocklisted", "blacklisted",
        "ip address is block listed", "on our block list", "banned ip",
        "will be permanently deferred",  # Yahoo [TS03] / [TSS09]
    ),
    R.VIRUSDETECTED: (
        # Sisimai::Reason::VirusDetected
        "it has a potentially executable attachment",
        "the message was rejected because it contains prohibited virus or spam content",
        "this form of attachment has been used by recent viruses or other malware", "virus detected",
        "your message was infected with a virus", "virus found", "infected with", "contains a virus",
    ),
    R.POLICYVIOLATION: (
        # Sisimai::Reason::PolicyViolation: Gmail, AOL, Yahoo, Google Groups, Mimecast
        "an illegal attachment on your message", "because the recipient is not accepting mail with ",
        "by non-member to a members-only list", "closed mailing list", "denied by policy",
        "email not accepted for policy reasons", "email rejected due to security policies",
        "header are not accepted", "header error", "local policy violation",
        "message bounced due to organizational settings", "message given low priority",
        "message not accepted for policy reasons", "message rejected due to local policy",
        "messages with multiple addresses", "rejected for policy reasons", "protocol violation",
        "the email address used to send your message is not subscribed to this group",
        "the message was rejected by organization policy",
        "this message was blocked because its content presents a potential",
        "we do not accept messages containing images or other attachments",
        "you have exceeded the allowable number of posts without solving a captcha",
        "you have exceeded the the allowable number of posts without solving a captcha",
        "attachment extension is forbidden",  # Cox
    ),
    R.SECURITYERROR: (
        # Sisimai::Reason::SecurityError: authentication required, Amazon SES account problems
        "account not subscribed to ses", "authentication credentials invalid", "authentication failure",
        rx(r"authentication failed; server [^ ]+ said:"), "authentication required",
        "authentication turned on in your email client",
        rx(r"authentification requise.+[0-9a-z_]+402"),
        rx(r"codes? d'? *authentification invalide.+[0-9a-z_]+305"),
        rx(r"domain [^ ]+ is a dead domain"), "executable files are not allowed in compressed files",
        "insecure mail relay", "recipient address rejected: access denied",
        rx(r"sorry, you don'?t authenticate or the domain isn'?t in my list of allowed rcpthosts"),
        "unauthenticated senders not allowed",
        rx(r"user [^ ]+ is not authorized to perform ses:sendrawemail on resource"),
        "you are not authorized to send mail, authentication is required", "verification failure",
    ),
    R.FAILEDSTARTTLS: (
        # Sisimai 5 FailedSTARTTLS: STARTTLS required or broken (SendGrid, Postfix, Exchange)
        "starttls is required to send mail", "tls required but not supported",
        "must issue a starttls command first", "tls required", "requires tls", "encryption required",
        "tls is required", "starttls required", "tls negotiation failed", "must use tls",
    ),
    R.SYSTEMERROR: (
        # Sisimai::Reason::SystemError: remote configuration problems, mail loops, LDAP failures
        "aliasing/forwarding loop broken", "can't create user output file", "could not load drd for domain",
        "internal error reading data", "internal server error: operation now in progress",
        "interrupted system call", "it encountered an error while being processed",
        "it would create a mail loop", "local configuration error", "local error in processing",
        "loop was found in the mail exchanger", "loops back to myself", "queue file write error",
        "mail system configuration error", "remote server is misconfigured", "server configuration error",
        "service currently unavailable", "system config error", "temporary local problem",
        "timeout waiting for input", "transaction failed",
    ),
    R.NETWORKERROR: (
        # Sisimai::Reason::NetworkError: DNS failures and mail loops
        "could not connect and send the mail to",
        "dns records for the destination computer could not be found",
        "hop count exceeded - possible mail loop", "host is unreachable", "host name lookup failure",
        "host not found, try again", "mail forwarding loop for ", "malformed name server reply",
        "malformed or unexpected name server reply", "maximum forwarding loop count exceeded",
        "message looping", "message probably in a routing loop", "no route to host", "too many hops",
        "unable to resolve route ", "unrouteable mail domain",
        rx(r"dns type '[a-z]+' lookup of [^ ]+ responded with code"),  # Gmail "DNS Error: ..."
        "dns error:",
    ),
    R.CONTENTERROR: (
        # Sisimai::Reason::ContentError: malformed headers or MIME (Exchange, Sendmail)
        "header size exceeds maximum permitted", "improper use of 8-bit data in message header",
        "message header size, or recipient list, exceeds policy limit",
        "message mime complexity exceeds the policy maximum",
        "routing loop detected -- too many received: headers", "this message contain invalid mime headers",
        "this message contain improperly-formatted binary content",
        "this message contain text that uses unnecessary base64 encoding",
    ),
    R.SYSTEMFULL: (
        # Sisimai::Reason::SystemFull
        "mail system full", "requested mail action aborted: exceeded storage allocation",
    ),
    R.NOTACCEPT: (
        # Sisimai::Reason::NotAccept: null MX (RFC 7505) and hosts that take no mail
        "does not accept mail (nullmx)", "host/domain does not accept mail", "host does not accept mail",
        "name server: .: host not found", "no mx record found for domain=", "no route for current request",
        "smtp protocol returned a permanent error", "null mx", "nullmx",
        "rfc7505", "rfc 7505", "doesn't receive email according to the administrator",  # Gmail null MX
        "no mx found for domain",  # OpenSMTPD
        "an mx or srv record indicated no smtp service",  # mail.ru / Exim null MX
    ),
    R.EXPIRED: (
        # Sisimai::Reason::Expired: queue lifetime exceeded (Sendmail, Postfix, Exim, qmail, Exchange)
        "connection timed out", "could not find a gateway for", "delivery attempts will continue to be",
        "delivery time expired", "failed to deliver to domain ", "giving up on",
        "have been failing for a long time", "has been delayed", "it has not been collected after",
        "message expired after sitting in queue for", "message expired, connection refulsed",
        "message timed out", "retry time not reached for any host after a long failure period",
        "server did not respond", "this message has been in the queue too long",
        "unable to deliver message after multiple retries",
        "was not reachable within the allowed queue period",
        "your message could not be delivered for more than",
        "retry timeout exceeded",  # Exim
    ),
    R.MAILERERROR: (
        # Sisimai::Reason::MailerError: local delivery programs (procmail, maildrop, pipes)
        rx(r"\Aprocmail: "), rx(r"bin/(?:procmail|maildrop)"), "command failed: ",
        rx(r"command died with status \d+"), "command output:", rx(r"exit \d+"), "mailer error",
        rx(r"pipe to \|/[^ ]+"), rx(r"x-unix; \d+"),
    ),
    R.VACATION: (
        # Sisimai::Reason::Vacation
        "i am away on vacation", "i am away until", "i am out of the office",
        "i will be traveling for work on",
    ),
}
del R


class _Matcher:
    """One reason's phrases, compiled once: plain phrases as substring tests (fast C searches; one
    big regex alternation costs ~100 us on a 200-character text), patterns as one alternation,
    tried only when the text holds a piece of literal text that one of the patterns requires."""

    __slots__ = ("anchors", "literals", "pattern")

    def __init__(self, entries: Iterable[Entry]) -> None:
        items = tuple(entries)
        self.literals = tuple(e for e in items if isinstance(e, str))
        patterns = [e.pattern for e in items if isinstance(e, re.Pattern)]
        self.pattern = re.compile("|".join(patterns)) if patterns else None
        anchors = tuple(_required_text(pattern) for pattern in patterns)
        # A pattern with no literal text of its own could match anywhere: then always search.
        self.anchors = anchors if all(anchors) else None

    def search(self, text: str) -> bool:
        for literal in self.literals:
            if literal in text:
                return True
        if self.pattern is None:
            return False
        if self.anchors is not None and not any(anchor in text for anchor in self.anchors):
            return False
        return self.pattern.search(text) is not None


def _required_text(pattern: str) -> str:
    """The longest run of plain characters that every match of ``pattern`` contains, or ''.

    Read from the parsed pattern's top level, where every item must match in sequence: a run of
    literal characters there ("spf" in "spf(?: record)? (?:check )?fail") is in every match.
    """
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        return ""
    best = run = ""
    for op, argument in parsed:
        if op is sre_constants.LITERAL:
            run += chr(argument)
            best = run if len(run) > len(best) else best
        else:
            run = ""
    return best


_MATCHERS: dict[Reason, _Matcher] = {reason: _Matcher(entries) for reason, entries in PHRASES.items()}
# Sisimai::Reason::Rejected: these look like a refused sender but name the recipient or the host.
# A sending quota is not a mailbox quota (Amazon SES "Throttling failure: Daily message quota exceeded").
_NOT_MAILBOXFULL = _Matcher(("daily message quota exceeded", "sending quota", "submission quota"))
_NOT_REJECTED = _Matcher(
    ("5.1.0 address rejected", "recipient address rejected", "sender ip address rejected"))


def matches(reason: Reason, text: str) -> bool:
    """True when the lower-case diagnostic ``text`` contains one of ``reason``'s phrases."""
    matcher = _MATCHERS.get(reason)
    if matcher is None or not text:
        return False
    if reason is Reason.REJECTED and _NOT_REJECTED.search(text):
        return False
    if reason is Reason.MAILBOXFULL and _NOT_MAILBOXFULL.search(text):
        return False
    return matcher.search(text)


def first_match(order: Iterable[Reason], text: str) -> Reason | None:
    """The first reason in ``order`` whose phrases occur in the lower-case ``text``, or None."""
    if not text:
        return None
    for reason in order:
        if matches(reason, text):
            return reason
    return None


class Said:
    """What one lower-case diagnostic text says: ``matches`` for each reason, looked up at most once.

    Classifying one recipient asks about the same reasons more than once (the first loop, the
    reasons that overrule a 5.1.1, the phrase-only pass); the answers are kept for that recipient.
    """

    __slots__ = ("_found", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._found: dict[Reason, bool] = {}

    def __call__(self, reason: Reason) -> bool:
        """``matches(reason, text)``."""
        found = self._found.get(reason)
        if found is None:
            found = self._found[reason] = matches(reason, self.text)
        return found

    def first(self, order: Iterable[Reason]) -> Reason | None:
        """``first_match(order, text)``."""
        return next((reason for reason in order if self(reason)), None)
