"""OpenID Connect ID tokens: RS256 JWTs signed with a key generated once per process.

:class:`IdTokenSigner` signs claims and publishes the public key as a JWK set (served at
``/oauth2/v3/certs``, listed as ``jwks_uri`` in the discovery document).
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@lru_cache(maxsize=1)
def _process_key() -> rsa.RSAPrivateKey:
    """The process's signing key (generating one takes a noticeable fraction of a second)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class IdTokenSigner:
    """Signs ID tokens with the process's RSA key."""

    def __init__(self) -> None:
        self._key = _process_key()
        numbers = self._key.public_key().public_numbers()
        self.kid = hashlib.sha256(_int_bytes(numbers.n)).hexdigest()[:40]
        self._jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url(_int_bytes(numbers.n)),
            "e": _b64url(_int_bytes(numbers.e)),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS (``header.payload.signature``) over ``claims``."""
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        return {"keys": [self._jwk]}


def access_token_hash(access_token: str) -> str:
    """The ``at_hash`` claim: left half of SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])
