"""A session service that keeps a live run's memory flat.

ADK appends every finished event of a run to the in-memory `Session` the run holds, as
well as to the store. A voice conversation makes about five per turn (transcriptions,
turn complete, usage, resumption updates), so an hour-long live run would keep growing
although the store already has every event. This wrapper stores each event through the
real service, then keeps only the newest `keep_events` in the run's own `Session`.

What reads that list during a live run only looks back a little way (the user message of
the current invocation, open tool calls, a transfer's recent context); a new `run_live`
loads the whole conversation from the store again.

A store that cannot be written (a read-only or full disk) is a `StoreError` naming it,
and the owner hears of a failed append at once: ADK appends the user's message in its
send task, whose failure it only looks at once the model's reply has ended, and a reply
to a message the model never got does not come.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session

from adkvoice.store.sessions import store_failure

# About 100 spoken turns: plenty for anything that looks back within a run.
KEEP_EVENTS = 500


class SessionWindow(BaseSessionService):
    """Delegates to `inner`; trims the live run's `Session.events` after each append.
    `on_write_error` hears of each append the store could not write."""

    def __init__(
        self,
        inner: BaseSessionService,
        *,
        label: str = "",
        on_write_error: Callable[[Exception], None] | None = None,
        keep_events: int = KEEP_EVENTS,
    ) -> None:
        self.inner = inner
        self._label = label  # the store, as it may be printed
        self._on_write_error = on_write_error
        self._keep = keep_events

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        try:
            return await self.inner.create_session(
                app_name=app_name, user_id=user_id, state=state, session_id=session_id
            )
        except Exception as exc:
            failure = store_failure(self._label, exc)
            if failure is None:
                raise
            raise failure from exc

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        return await self.inner.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        return await self.inner.list_sessions(app_name=app_name, user_id=user_id)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        await self.inner.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self.inner.get_user_state(app_name=app_name, user_id=user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        try:
            stored = await self.inner.append_event(session, event)
        except Exception as exc:
            failure = store_failure(self._label, exc)
            if failure is None:
                # Not the store's disk (ADK's stale-session check, say): ADK's own flow
                # raises it and a new run_live, which reloads the session, recovers.
                raise
            if self._on_write_error is not None:
                self._on_write_error(failure)
            raise failure from exc
        excess = len(session.events) - self._keep
        if excess > 0:
            del session.events[:excess]
        return stored

    async def flush(self) -> None:
        await self.inner.flush()
