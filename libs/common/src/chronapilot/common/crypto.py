"""TokenCipher: AES-256-GCM for credentials at rest, with key ids so keys can rotate.

A ciphertext is the string ``v1.<key id>.<nonce b64url>.<sealed b64url>``. The key id says
which key of the ring opens it, so new keys can be added and made active while old
ciphertexts stay readable; :meth:`TokenCipher.rotate` re-seals one under the active key.
Associated data (the connection id) binds a ciphertext to its owner: copying one onto
another connection makes it fail to open.

Keys come from settings (``CHRONAPILOT_ENCRYPTION_KEYS``). In development and test mode,
when none is configured, a key ring is generated once into ``<run_dir>/encryption-keys``
and shared by every process using that run directory; in production a missing key is a
configuration error.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chronapilot.common.errors import ConfigurationError, CryptoError
from chronapilot.common.settings import Environment, Settings, parse_key_ring

_VERSION = "v1"
DEV_KEY_FILE = "encryption-keys"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCipher:
    def __init__(self, keys: dict[str, bytes], active_key_id: str | None = None) -> None:
        if not keys:
            raise ConfigurationError("no encryption key configured")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id or next(iter(keys))
        if self.active_key_id not in self._keys:
            raise ConfigurationError(f"active key id {self.active_key_id!r} is not in the key ring")

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        ring = settings.crypto.parsed_keys()
        if not ring:
            if settings.env is Environment.PRODUCTION:
                raise ConfigurationError("CHRONAPILOT_ENCRYPTION_KEYS is required in production")
            ring = load_or_create_dev_keys(settings.run_dir)
        return cls(ring, settings.crypto.encryption_active_key_id)

    def encrypt(self, plaintext: str, *, associated_data: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.active_key_id].encrypt(nonce, plaintext.encode(), associated_data.encode())
        return ".".join((_VERSION, self.active_key_id, _b64(nonce), _b64(sealed)))

    def decrypt(self, ciphertext: str, *, associated_data: str) -> str:
        try:
            version, kid, nonce, sealed = ciphertext.split(".")
        except ValueError:
            raise CryptoError("malformed ciphertext") from None
        if version != _VERSION:
            raise CryptoError(f"unsupported ciphertext version {version!r}")
        key = self._keys.get(kid)
        if key is None:
            raise CryptoError(f"ciphertext sealed with unknown key id {kid!r}")
        try:
            return key.decrypt(_unb64(nonce), _unb64(sealed), associated_data.encode()).decode()
        except (InvalidTag, ValueError):
            raise CryptoError("ciphertext does not open (wrong key, owner or tampered)") from None

    def key_id_of(self, ciphertext: str) -> str | None:
        """The id of the key that sealed ``ciphertext`` (None when it is not one of ours)."""
        parts = ciphertext.split(".")
        return parts[1] if len(parts) == 4 and parts[0] == _VERSION else None

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` is sealed under the active key (nothing to re-seal)."""
        return self.key_id_of(ciphertext) == self.active_key_id

    def rotate(self, ciphertext: str, *, associated_data: str) -> str:
        """Re-seal ``ciphertext`` under the active key."""
        return self.encrypt(
            self.decrypt(ciphertext, associated_data=associated_data),
            associated_data=associated_data,
        )


def generate_key_ring_text(key_id: str = "dev1") -> str:
    """A new ``key_id:base64`` ring with one random 256-bit key (``CHRONAPILOT_ENCRYPTION_KEYS``)."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def load_or_create_dev_keys(run_dir: Path) -> dict[str, bytes]:
    """The development key ring in ``run_dir``, created (atomically, mode 0600) on first use."""
    path = run_dir / DEV_KEY_FILE
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_ring_text() + "\n")
        try:
            os.link(tmp, path)  # fails if another process won the race; theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return parse_key_ring(path.read_text().strip())
