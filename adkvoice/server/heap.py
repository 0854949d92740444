"""Keep the garbage collector off the audio path of a long-running server.

A full collection walks every object the process holds, and most of them are modules,
classes and pydantic schemas that live as long as the process: with ADK and google-genai
loaded that is about 150,000 objects, 60 ms to walk on an idle machine, and at 32
real-time sessions `serve` paused for 90–105 ms in each full collection
(bench/serve_vs_baseline.py's "GC max"), which showed up as the downlink's p99. So, once
before the first session (about 0.4 s, before the server says it is ready):

1. import what ADK imports only when the first live run starts (measured with
   `python -X importtime` on ADK 2.13: the workflow scheduler alone takes 150 ms), so the
   first caller does not wait for it either, and it can be frozen with the rest;
2. collect, then `gc.freeze()`: everything alive now moves to a generation the collector
   never walks again. What a session allocates is collected as before.

The collector's thresholds stay Python's: collecting the young generation every 10,000
allocations instead of 700 made both the longest pause (26 ms) and the total time
collecting larger at 32 sessions, not smaller.
"""

from __future__ import annotations

import contextlib
import gc
import importlib

# ADK modules its first live run imports, in the order it does. A name a later ADK
# release moves is skipped: the import then happens on the first run, as before.
_LIVE_RUN_MODULES = (
    "google.adk.runners",
    "google.adk.apps.app",
    "google.adk.flows.llm_flows.base_llm_flow",
    "google.adk.flows.llm_flows.single_flow",
    "google.adk.flows.llm_flows.core._resume",
    "google.adk.live._live_llm_flow",
    "google.adk.live._runner_utils",
    "google.adk.workflow._workflow",
    "google.adk.tools.google_search_tool",
    "google.adk.tools.vertex_ai_search_tool",
    "google.genai.live",
)


def settle_before_sessions() -> int:
    """Import the live path, then freeze what is alive; returns how many objects were
    frozen."""
    for name in _LIVE_RUN_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
