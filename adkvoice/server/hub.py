"""What all connections of one server share: the agent, the session store, the registry
of live sessions and SSE streams, the session limit, and the graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

from adkvoice.backends.factory import embedded_backend
from adkvoice.server.options import ServeOptions

if TYPE_CHECKING:
    from google.adk.sessions.base_session_service import BaseSessionService

    from adkvoice.agents.loading import LoadedAgent
    from adkvoice.backends.embedded import EmbeddedBackend
    from adkvoice.live_options import LiveOptions

log = logging.getLogger("adkvoice.server")

GOING_AWAY = "the server is shutting down; reconnect to continue"
REPLACED = "replaced by a newer connection to this session"
PARTNER_CLOSED = "the newer connection to this session closed"
TAKEOVER_WAIT_S = 5.0


class LiveSession(Protocol):
    """What the hub needs from a live session: a WebSocket (ws.py) or an /events stream
    (seeds_sse.py)."""

    session_id: str
    idle: asyncio.Event
    # Replaced by a newer connection, it stays open and quiet instead of closing: the
    # seeds protocol, whose sample page keeps its first socket when it opens a second.
    stays_open_when_replaced: bool

    def request_close(self, code: int, reason: str) -> None: ...

    def request_quiet(self) -> None: ...

    def notify(self, message: str) -> None: ...

    async def wait_released(self) -> None:
        """Until its conversation is let go (its `run_live` closed)."""

    async def wait_done(self) -> None: ...


class Hub:
    def __init__(
        self,
        loaded: LoadedAgent,
        options: ServeOptions,
        session_service: BaseSessionService,
    ) -> None:
        self.loaded = loaded
        self.options = options
        self.session_service = session_service
        self.sessions: dict[str, LiveSession] = {}
        # Replaced seeds connections kept open and quiet: one per session id at most,
        # closed with the connection that replaced them.
        self.quiet: dict[str, LiveSession] = {}
        self.sse_streams = 0
        self._sse_idle = asyncio.Event()
        self._sse_idle.set()
        self.draining = False

    # Capacity ----------------------------------------------------------------------------
    @property
    def active(self) -> int:
        return len(self.sessions) + self.sse_streams

    def has_room(self, replacing: str | None = None) -> bool:
        taken = self.active - (1 if replacing is not None and replacing in self.sessions else 0)
        return taken < self.options.max_sessions

    @property
    def ready(self) -> bool:
        return not self.draining and self.has_room()

    def user_id(self, session_id: str) -> str:
        return self.options.user_id or session_id

    def session_backend(
        self, session_id: str, *, audio: bool, live: LiveOptions, user_id: str | None = None
    ) -> EmbeddedBackend:
        """The embedded backend for one live session of any route, not started yet.
        `user_id`: the route names the user (bidi-demo); else `user_id(session_id)`."""
        opts = self.options
        return embedded_backend(
            self.loaded,
            modality="AUDIO" if audio else "TEXT",
            model=opts.model,
            session_service=self.session_service,
            store_label=opts.store_label,
            handles_dir=opts.handles_dir,
            user_id=user_id or self.user_id(session_id),
            session_id=session_id,
            endpoint_label=opts.endpoint_label,
            context_compression=opts.context_compression,
            live=live,
        )

    async def history_state(self, session_id: str) -> tuple[bool, bool]:
        """Whether the conversation exists, and whether it ends with a user turn the agent
        has not answered (a new `run_live` replays the history and answers it)."""
        from google.adk.sessions.base_session_service import GetSessionConfig

        try:
            # One event tells; a long conversation in a remote store is not read twice.
            session = await self.session_service.get_session(
                app_name=self.loaded.app_name,
                user_id=self.user_id(session_id),
                session_id=session_id,
                config=GetSessionConfig(num_recent_events=1),
            )
        except Exception:  # a store hiccup must not cost the connection
            log.debug("session lookup failed", exc_info=True)
            return False, False
        if session is None or not session.events:
            return False, False
        last = session.events[-1].content
        return True, last is not None and last.role == "user"

    # WebSocket sessions ------------------------------------------------------------------
    async def register(self, session: LiveSession) -> None:
        """Make `session` the one live connection of its id. The older one lets its
        conversation go first, so two `run_live`s never write one conversation at once.

        It is closed (1000), except on the seeds protocol: the sample's page opens a
        second socket with the same id on Start Audio, keeps the first, and reconnects 5 s
        after any close, so closing the first made its audio connection flap for ever.
        There the older socket stays open and quiet (nothing is sent on it; a message on it
        closes it, saying why) until the newer one closes."""
        key = session.session_id
        old = self.sessions.get(key)
        self.sessions[key] = session
        if old is None or old is session:
            return
        if old.stays_open_when_replaced:
            log.info("session %s: a newer connection takes over; the older stays quiet", key)
            stale = self.quiet.pop(key, None)
            if stale is not None:
                stale.request_close(1000, REPLACED)
            self.quiet[key] = old
            old.request_quiet()
        else:
            log.info("session %s: a new connection replaces the old one", key)
            old.request_close(1000, REPLACED)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TAKEOVER_WAIT_S):
                await old.wait_released()

    def unregister(self, session: LiveSession) -> None:
        key = session.session_id
        if self.sessions.get(key) is session:
            del self.sessions[key]
            partner = self.quiet.pop(key, None)
            if partner is not None:
                partner.request_close(1000, PARTNER_CLOSED)
        elif self.quiet.get(key) is session:
            del self.quiet[key]

    # SSE streams -------------------------------------------------------------------------
    def sse_started(self) -> None:
        self.sse_streams += 1
        self._sse_idle.clear()

    def sse_finished(self) -> None:
        self.sse_streams -= 1
        if self.sse_streams <= 0:
            self.sse_streams = 0
            self._sse_idle.set()

    # Graceful shutdown -------------------------------------------------------------------
    async def drain(self, timeout_s: float | None = None) -> None:
        """Stop taking sessions, let running turns finish (bounded), close sockets 1001."""
        timeout = self.options.drain_timeout_s if timeout_s is None else timeout_s
        if not self.draining:
            self.draining = True
            log.info(
                "draining: %d session(s) and %d stream(s) may finish their turns (up to %.0f s)",
                len(self.sessions),
                self.sse_streams,
                timeout,
            )
            for session in list(self.sessions.values()):
                session.notify("the server is shutting down after the current turn")
        try:
            async with asyncio.timeout(timeout):
                await self._quiet()
        except TimeoutError:
            log.warning("drain timeout: closing turns that are still running")
        sessions = [*self.sessions.values(), *self.quiet.values()]
        for session in sessions:
            session.request_close(1001, GOING_AWAY)
        if sessions:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAKEOVER_WAIT_S):
                    await asyncio.gather(*(s.wait_done() for s in sessions))

    async def _quiet(self) -> None:
        while True:
            busy = [s for s in self.sessions.values() if not s.idle.is_set()]
            if not busy and self._sse_idle.is_set():
                return
            waits = [asyncio.ensure_future(s.idle.wait()) for s in busy]
            if not self._sse_idle.is_set():
                waits.append(asyncio.ensure_future(self._sse_idle.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
