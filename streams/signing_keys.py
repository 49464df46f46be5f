"""The signing keys file of a worker or producer: read at start-up, re-read when it changes.

A broken keys file at start-up stops the process with an error naming the key and field; a
broken edit later is logged (never with a secret) and the keys in force stay in force, so a
rotation is: add the new key to the file, move producers to it, set the old key's
``not_after`` to the end of the overlap window.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from twins.errors import ConfigurationError
from twins.signing import Keyring, Verifier, parse_keyring

log = logging.getLogger(__name__)

#: How often (seconds) the file's modification time is looked at.
RELOAD_CHECK_S = 10.0


def read_keyring(path: Path) -> Keyring:
    """Parse the keys file at ``path`` (:func:`twins.signing.parse_keyring`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"FLEET_SIGNING_KEYS={path}: cannot read the keys file ({exc.strerror})") from None
    return parse_keyring(raw, f"FLEET_SIGNING_KEYS={path}")


class SigningKeys:
    """Mode plus keyring of one process; :meth:`verifier` is asked once per fetched batch."""

    def __init__(self, mode: str, path: Path | None) -> None:
        self.mode = mode
        self.path = path
        self.keyring = read_keyring(path) if path is not None else Keyring(())
        self._stamp = self._mtime()
        self._next_check = time.monotonic() + RELOAD_CHECK_S
        log.info("record signing %s with %r", mode, self.keyring)

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path is not None else None
        except OSError:
            return None

    def verifier(self, now_ms: int) -> Verifier | None:
        """The batch's verifier (None when signing is off); re-reads a changed keys file first."""
        if self.mode == "off":
            return None
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + RELOAD_CHECK_S
            self.reload()
        return self.keyring.at(now_ms, require=self.mode == "require")

    def reload(self) -> bool:
        """Re-read the keys file if it changed; True when new keys are in force."""
        stamp = self._mtime()
        if stamp == self._stamp or self.path is None:
            return False
        self._stamp = stamp
        try:
            self.keyring = read_keyring(self.path)
        except ConfigurationError as exc:
            log.error("signing keys not reloaded, keeping %r: %s", self.keyring, exc)
            return False
        log.info("signing keys reloaded: %r", self.keyring)
        return True
