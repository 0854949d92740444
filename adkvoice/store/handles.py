"""Live session resumption handles, kept on disk so a new process can resume.

The Live API issues a fresh handle after each turn; a handle stays valid for two hours
after its session ends. Keeping the latest one per conversation lets `--resume` after a
crash or a closed terminal pick the model's session up where it was, instead of
replaying the history. A handle belongs to one endpoint and model, so the key includes
both: a handle from another endpoint would only be refused.

One small file per conversation, replaced atomically: processes sharing the directory
(several `serve` instances on one machine) never overwrite each other's entries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from adkvoice.config import uses_vertex

log = logging.getLogger(__name__)

# Gemini keeps a handle for 2 hours; stop offering it a little before.
HANDLE_TTL_S = 2 * 3600 - 300


def handle_key(*parts: str) -> str:
    """A stable file-safe key for (endpoint, model, store, app, user, session)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def live_endpoint_identity() -> str:
    """Which Live API endpoint google-genai will reach: a resumption handle is only valid
    there (each in-process emulator has its own port, so its handles never match)."""
    env = os.environ
    if uses_vertex(env):
        return (
            f"vertex:{env.get('GOOGLE_CLOUD_PROJECT', '')}:{env.get('GOOGLE_CLOUD_LOCATION', '')}"
        )
    return env.get("GOOGLE_GEMINI_BASE_URL") or "gemini-api"


def conversation_key(*, model: str, store: str, app: str, user: str, session: str) -> str:
    """The key of one conversation's handle on the Live API endpoint genai will reach."""
    return handle_key(live_endpoint_identity(), model, store, app, user, session)


@dataclass(frozen=True)
class SavedHandle:
    handle: str
    saved_at: float  # wall-clock seconds


class HandleStore:
    def __init__(self, directory: Path, *, ttl_s: float = HANDLE_TTL_S) -> None:
        self._dir = directory
        self._ttl_s = ttl_s

    def _path(self, key: str) -> Path:
        return self._dir / f"{key}.json"

    def load(self, key: str, *, now: float | None = None) -> SavedHandle | None:
        """The handle saved for `key` if it is still valid."""
        now = time.time() if now is None else now
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            saved = SavedHandle(handle=str(data["handle"]), saved_at=float(data["saved_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if now - saved.saved_at > self._ttl_s:
            self.forget(key)
            return None
        return saved

    def save(self, key: str, handle: str, *, now: float | None = None) -> None:
        """Keep `handle` for `key`. Failing to write only costs a later resume: logged."""
        now = time.time() if now is None else now
        path = self._path(key)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"handle": handle, "saved_at": now}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not save the live session handle in %s: %s", self._dir, exc)

    def forget(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def prune(self, *, now: float | None = None) -> int:
        """Delete expired handles; how many went."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(self._dir.glob("*.json"))
        except OSError:
            return 0
        for path in entries:
            try:
                if now - path.stat().st_mtime > self._ttl_s:
                    path.unlink(missing_ok=True)
                    removed += 1
            except OSError:
                continue
        return removed
