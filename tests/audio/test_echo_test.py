"""`adkvoice talk --echo-test` on the virtual devices, with a real echo path: a PulseAudio
loopback from the speaker's monitor into the microphone's feed, at a known latency."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from rich.console import Console

from adkvoice.audio.echo_test import run_echo_test
from tests.audio.pulse import FEED_SINK, MIC_SOURCE, SPEAKER_SINK, PulseServer

LOOPBACK_MS = 80


@contextmanager
def echo_path(pulse: PulseServer, latency_ms: int) -> Iterator[None]:
    """The speaker heard by the microphone, `latency_ms` later (a room, in software)."""
    module = pulse.pactl(
        "load-module",
        "module-loopback",
        f"source={SPEAKER_SINK}.monitor",
        f"sink={FEED_SINK}",
        f"latency_msec={latency_ms}",
        "source_dont_move=true",
        "sink_dont_move=true",
    ).strip()
    try:
        yield
    finally:
        pulse.pactl("unload-module", module)


async def test_echo_test_measures_the_delay_and_the_reduction(pulse: PulseServer) -> None:
    pytest.importorskip("livekit.rtc")
    out = io.StringIO()
    with echo_path(pulse, LOOPBACK_MS):
        code = await run_echo_test(MIC_SOURCE, SPEAKER_SINK, Console(file=out, width=200))
    text = out.getvalue()
    print(f"\n{text}")
    assert code == 0
    delay = re.search(r"Echo path: (\d+) ms from speaker to microphone", text)
    erle = re.search(r"reduced the echo by (-?[\d.]+) dB", text)
    assert delay is not None, text
    assert erle is not None, text
    # The loopback keeps its latency within a few ms (measured 59–61 ms at 60, 146 at 150).
    assert abs(int(delay.group(1)) - LOOPBACK_MS) <= 25
    # Measured 41–48 dB on this path; far lower means the reference is misaligned.
    assert float(erle.group(1)) > 20.0
