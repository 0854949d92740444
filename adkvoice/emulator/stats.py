"""Counters the emulator keeps so tests can assert on what crossed the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import Setup


@dataclass
class EmulatorStats:
    connections: int = 0  # WebSocket connections accepted (any path)
    active_connections: int = 0
    setups: int = 0  # setup messages accepted (setupComplete sent)
    rejected_setups: int = 0  # unknown model, unknown handle, bad first frame
    resumed_sessions: int = 0  # setups that restored a conversation by handle
    turns_answered: int = 0  # model turns that reached turnComplete
    interruptions: int = 0  # replies cut short by the user
    tool_calls_sent: int = 0  # function calls sent in toolCall messages
    tool_responses_received: int = 0  # function responses matched to a pending call
    unmatched_tool_responses: int = 0  # responses with an unknown or already-answered id
    tool_call_cancellations: int = 0
    go_aways_sent: int = 0
    handles_issued: int = 0
    utterances: int = 0  # speech segments ended by VAD, activityEnd or audioStreamEnd
    audio_in_bytes: int = 0
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
