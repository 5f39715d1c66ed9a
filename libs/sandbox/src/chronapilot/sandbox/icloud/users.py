"""Apple-ID-like users of the iCloud stand-in: the htpasswd file Radicale checks logins against.

An iCloud login over CalDAV is the Apple Account e-mail plus an app-specific password
(`xxxx-xxxx-xxxx-xxxx`). Here each user is one line of an htpasswd file holding a SHA-512-crypt
digest of that password. Radicale re-reads the file on every login (its `htpasswd_cache` is off
by default), so users added, re-keyed or removed while it runs take effect on the next request.
Removing a user is how the sandbox stands in for revoking an app-specific password.
"""

from __future__ import annotations

import os
import random
import string
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from passlib.hash import sha512_crypt

# 5,000 is the SHA-crypt default of glibc; passlib's own default (656,000) costs ~0.3 s per login.
_ROUNDS = 5000


@dataclass(frozen=True)
class AppleIdCredentials:
    """What a user types into ChronaPilot to connect an iCloud account."""

    email: str
    app_password: str


def new_app_specific_password(rng: random.Random) -> str:
    """Return a password in the `xxxx-xxxx-xxxx-xxxx` shape Apple shows (lower-case letters)."""
    groups = ("".join(rng.choice(string.ascii_lowercase) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


class UsersFile:
    """The htpasswd file: one `login:digest` line per user, rewritten atomically on each change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def ensure_exists(self) -> None:
        """Create an empty users file if there is none (Radicale refuses to start without one)."""
        with self._lock:
            if not self.path.exists():
                self._write({})

    def logins(self) -> list[str]:
        """The logins currently in the file, in file order."""
        with self._lock:
            return list(self._read())

    def set_password(self, credentials: AppleIdCredentials) -> None:
        """Add the user, or replace their password (the old one stops working at once)."""
        if ":" in credentials.email or "\n" in credentials.email:
            raise ValueError(f"not a usable login: {credentials.email!r}")
        digest = sha512_crypt.using(rounds=_ROUNDS).hash(credentials.app_password)
        with self._lock:
            entries = self._read()
            entries[credentials.email] = digest
            self._write(entries)

    def remove(self, email: str) -> bool:
        """Remove the user; later requests with their password get `401`. False if absent."""
        with self._lock:
            entries = self._read()
            if entries.pop(email, None) is None:
                return False
            self._write(entries)
            return True

    def _read(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        entries: dict[str, str] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                login, _, digest = line.partition(":")
                entries[login] = digest
        return entries

    def _write(self, entries: dict[str, str]) -> None:
        # Radicale may read the file at any moment: never let it see a half-written one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{login}:{digest}\n" for login, digest in entries.items())
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
