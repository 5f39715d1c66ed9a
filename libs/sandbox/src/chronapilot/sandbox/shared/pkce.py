"""PKCE (RFC 7636) for the emulators' token endpoints.

- :func:`s256_challenge` computes ``BASE64URL(SHA256(verifier))`` without padding.
- :func:`verify_code_verifier` checks a verifier against the stored challenge and method
  (``S256`` or ``plain``; a missing method means ``plain``, as RFC 7636 §4.3 says).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SUPPORTED_METHODS = ("S256", "plain")


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge for ``verifier``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_code_verifier(verifier: str, challenge: str, method: str | None) -> bool:
    """True when ``verifier`` matches ``challenge`` under ``method``; False for unknown methods."""
    method = method or "plain"
    if method == "S256":
        expected = s256_challenge(verifier)
    elif method == "plain":
        expected = verifier
    else:
        return False
    return hmac.compare_digest(expected.encode("ascii", "replace"), challenge.encode("ascii", "replace"))
