"""Signing secrets and signatures of customer webhooks (Standard Webhooks, standardwebhooks.com).

A secret is ``whsec_`` + the base64 of 32 random bytes, shown to the customer once at creation
(or rotation) and stored sealed by :class:`~chronapilot.common.crypto.TokenCipher` with the
endpoint id as associated data, so a sealed secret copied onto another endpoint does not open.
Signatures are made by the ``standardwebhooks`` library itself: ``v1,`` + base64 HMAC-SHA256 of
``{webhook-id}.{webhook-timestamp}.{body}``; after a rotation every live secret signs and the
signatures ride space-separated in one ``webhook-signature`` header, as the spec allows.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from standardwebhooks.webhooks import Webhook

from chronapilot.common.crypto import TokenCipher
from chronapilot.common.store.webhook_endpoints import secret_associated_data

PREFIX = "whsec_"
_SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def seal(cipher: TokenCipher, endpoint_id: str, secret: str) -> str:
    return cipher.encrypt(secret, associated_data=_associated(endpoint_id))


def unseal(cipher: TokenCipher, endpoint_id: str, sealed: str) -> str:
    return cipher.decrypt(sealed, associated_data=_associated(endpoint_id))


def signed_headers(
    message_id: str, timestamp: datetime, body: bytes, secrets_: Iterable[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` signed with every secret in ``secrets_``."""
    signatures = " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }


def _associated(endpoint_id: str) -> str:
    return secret_associated_data(endpoint_id)
