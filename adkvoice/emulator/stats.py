"""Counters the emulator keeps so tests can assert on what crossed the wire."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .client_messages import Setup
from .vision import Sight


@dataclass
class ConnectionRecord:
    """One accepted Live connection (setupComplete sent), for per-connection assertions."""

    model: str
    resumed: bool  # the setup carried a handle that restored a conversation
    agent: str = ""  # the ADK agent it plays, as the system instruction names it
    turns_answered: int = 0
    tool_calls: Counter[str] = field(default_factory=Counter)  # function name -> calls sent
    go_aways_sent: int = 0
    interruptions: int = 0
    compressions: int = 0
    opened_at: float = field(default_factory=time.monotonic)  # setup accepted
    closed_at: float | None = None  # None while the connection is open
    sight: Sight = field(default_factory=Sight)  # the images and video frames it was shown

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True)
class Compression:
    """One sliding-window compression of a conversation's context."""

    tokens_before: int
    tokens_after: int
    turns_dropped: int


@dataclass
class EmulatorStats:
    connections: int = 0  # WebSocket connections accepted (any path)
    active_connections: int = 0
    setups: int = 0  # setup messages accepted (setupComplete sent)
    rejected_setups: int = 0  # unknown model, unknown handle, bad first frame, refused option
    refusals: list[tuple[int, str]] = field(default_factory=list)  # (close code, reason) each
    rejected_handles: int = 0  # setups refused for an unknown or expired resumption handle
    resumed_sessions: int = 0  # setups that restored a conversation by handle
    turns_answered: int = 0  # model turns that reached turnComplete
    interruptions: int = 0  # replies cut short by the user
    tool_calls_sent: int = 0  # function calls sent in toolCall messages
    tool_responses_received: int = 0  # function responses matched to a pending call
    unmatched_tool_responses: int = 0  # responses with an unknown or already-answered id
    tool_call_cancellations: int = 0
    background_calls: int = 0  # calls the model did not wait for (NON_BLOCKING)
    schedulings: Counter[str] = field(default_factory=Counter)  # of background results received
    interaction_statuses: list[str] = field(default_factory=list)  # sent with each turnComplete
    go_aways_sent: int = 0
    handles_issued: int = 0
    utterances: int = 0  # speech segments ended by VAD, activityEnd or audioStreamEnd
    ignored_utterances: int = 0  # not answered: no words in them, and proactive audio is on
    audio_in_bytes: int = 0
    media_in: int = 0  # images and video frames in realtimeInput (mediaChunks or video)
    refused_images: int = 0  # image blobs closed with 1007: a type or size Gemini refuses
    audio_out_bytes: int = 0
    protocol_errors: int = 0
    rest_requests: int = 0  # HTTP requests to :streamGenerateContent / :generateContent
    rest_errors: int = 0  # HTTP requests answered with an error status
    rest_tool_calls: int = 0  # functionCall parts sent over REST
    faults_fired: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # model of every accepted setup, in order
    setup_log: list[Setup] = field(default_factory=list)
    user_texts: list[str] = field(default_factory=list)  # every user turn the emulator answered
    transcripts: list[str] = field(default_factory=list)  # input transcriptions sent
    connection_log: list[ConnectionRecord] = field(default_factory=list)  # accepted, in order
    tool_calls_by_name: Counter[str] = field(default_factory=Counter)  # Live and REST
    compressions: list[Compression] = field(default_factory=list)  # context window slides

    @property
    def connections_opened(self) -> int:
        """Live connections that got past setup (resumed ones included)."""
        return len(self.connection_log)

    @property
    def resumed_connections(self) -> int:
        return sum(1 for record in self.connection_log if record.resumed)
