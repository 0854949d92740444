"""Offline emulator of the Gemini Live (BidiGenerateContent) WebSocket API.

The real google-genai client inside the real ADK connects to it; replies come from rules.
The same port also answers REST `models/{model}:streamGenerateContent?alt=sse` and
`:generateContent` (rest.py), which ADK's `run_async` with StreamingMode.SSE uses.
See `Emulator`, `EmulatorOptions`, `FaultController`, `rules` and `handles` for the details.
"""

from __future__ import annotations

from .emulator import Emulator, EmulatorOptions
from .faults import Fault, FaultController
from .handles import IssuedHandles
from .models import emulated_family
from .rules import FAULT_NAMES, Rule, Rules, default_rules, load_rules, parse_rules
from .stats import Compression, ConnectionRecord, EmulatorStats

__all__ = [
    "FAULT_NAMES",
    "Compression",
    "ConnectionRecord",
    "Emulator",
    "EmulatorOptions",
    "EmulatorStats",
    "Fault",
    "FaultController",
    "IssuedHandles",
    "Rule",
    "Rules",
    "default_rules",
    "emulated_family",
    "load_rules",
    "parse_rules",
]
