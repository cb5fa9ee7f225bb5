"""Notifications: signed webhooks and admin e-mails on state changes and blocklisted outbound IPs.

Enqueued in the delivery log (storage/notify_models.py) where decisions are written; sent by the
scheduler's ``notify:deliver`` job (notify/deliver.py); the daily ``notify:retention`` job prunes the
log (notify/retention.py). docs/notify.md describes the webhook body and its signature.
"""

from bounces.blocklists import BLOCKLISTS, blocklists_named
from notify.deliver import DeliveryReport, NotifyJobs, attempt, enqueue_blocklisted, fan_out, retry_at
from notify.mail import mail_message, mail_subject, mail_text, send_mail, smtp_password
from notify.retention import Pruned, prune_deliveries
from notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signature_header, verify
from notify.webhook import DeliveryError, post_webhook, webhook_body

__all__ = [
    "BLOCKLISTS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryError",
    "DeliveryReport",
    "NotifyJobs",
    "Pruned",
    "attempt",
    "blocklists_named",
    "enqueue_blocklisted",
    "fan_out",
    "mail_message",
    "mail_subject",
    "mail_text",
    "post_webhook",
    "prune_deliveries",
    "retry_at",
    "send_mail",
    "sign",
    "signature_header",
    "smtp_password",
    "verify",
    "webhook_body",
]
