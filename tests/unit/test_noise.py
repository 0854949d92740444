"""The noise suppressor and gain control wrapper (WebRTC through livekit), and how the
voice loop and the status line use it."""

from __future__ import annotations

import importlib
import io
from collections.abc import AsyncIterator

import numpy as np
import pytest
from rich.console import Console

from adkvoice.audio.dsp import Int16Array, rms_dbfs
from adkvoice.audio.noise import (
    GAIN_CONTROL,
    NOISE_SUPPRESSION,
    CleanerUnavailable,
    MicCleaner,
    try_cleaner,
)
from adkvoice.ui.talk_view import TalkState, TalkView, status_line
from tests.audio.signals import voiced

RATE = 16_000
CHUNK = 320  # 20 ms, as the microphone sends


def _run(cleaner: MicCleaner, samples: Int16Array) -> Int16Array:
    return np.concatenate(
        [cleaner.process(samples[k : k + CHUNK]) for k in range(0, len(samples), CHUNK)]
    )


def _white(seconds: float, rms: float, seed: int = 3) -> Int16Array:
    x = np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * rms
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def test_missing_livekit_is_one_line_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.import_module

    def no_livekit(name: str, package: str | None = None) -> object:
        if name.startswith("livekit"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_livekit)
    with pytest.raises(CleanerUnavailable, match=r"pip install 'livekit>=1\.2,<2'"):
        MicCleaner()
    assert "pip install 'livekit" in str(try_cleaner())


def test_frames_in_and_out_keep_their_size_and_the_flags_name_the_features() -> None:
    pytest.importorskip("livekit.rtc")
    cleaner = MicCleaner()
    assert cleaner.features == (NOISE_SUPPRESSION,)  # gain control is opt-in
    assert MicCleaner(gain_control=True).features == (NOISE_SUPPRESSION, GAIN_CONTROL)
    assert cleaner.high_pass_filter
    for n in (160, 320, 640):
        out = cleaner.process(np.zeros(n, dtype=np.int16))
        assert out.dtype == np.int16
        assert len(out) == n
    assert cleaner.stats.frames == (160 + 320 + 640) // 160
    assert cleaner.stats.cpu_s >= 0.0
    with pytest.raises(ValueError, match="multiple of 160"):
        cleaner.process(np.zeros(100, dtype=np.int16))
    ns_only = MicCleaner(gain_control=False, high_pass_filter=False)
    assert ns_only.features == (NOISE_SUPPRESSION,)
    assert not ns_only.high_pass_filter
    assert MicCleaner(noise_suppression=False, gain_control=True).features == (GAIN_CONTROL,)
    cleaner_after_aec = try_cleaner(high_pass_filter=False)
    assert isinstance(cleaner_after_aec, MicCleaner)
    assert not cleaner_after_aec.high_pass_filter


def test_suppression_lowers_white_noise() -> None:
    pytest.importorskip("livekit.rtc")
    noise = _white(3.0, 300.0)  # about -41 dBFS
    for cleaner in (MicCleaner(), MicCleaner(gain_control=True)):
        out = _run(cleaner, noise)
        settled_in, settled_out = rms_dbfs(noise[RATE:]), rms_dbfs(out[RATE:])
        # Measured: -12.7 dB with suppression alone, -8.4 dB with gain control after it.
        assert settled_out < settled_in - 6.0, (cleaner.features, settled_in, settled_out)


def test_suppression_keeps_the_level_of_speech_without_noise() -> None:
    pytest.importorskip("livekit.rtc")
    speech = voiced(3.0, RATE, level=0.3)
    level_in = rms_dbfs(speech[RATE:])  # about -28 dBFS
    suppressed = rms_dbfs(_run(MicCleaner(gain_control=False), speech)[RATE:])
    assert abs(suppressed - level_in) < 3.0, (level_in, suppressed)
    # Gain control brings a voice towards its target (measured: -28 → -19 dBFS), short of
    # clipping.
    controlled = rms_dbfs(_run(MicCleaner(gain_control=True), speech)[RATE:])
    assert level_in - 3.0 < controlled < -12.0, (level_in, controlled)


def test_gain_control_lifts_a_quiet_voice() -> None:
    pytest.importorskip("livekit.rtc")
    quiet = voiced(4.0, RATE, level=0.01)
    plain = rms_dbfs(_run(MicCleaner(gain_control=False), quiet)[2 * RATE :])
    lifted = rms_dbfs(_run(MicCleaner(gain_control=True), quiet)[2 * RATE :])
    assert lifted > plain + 6.0, (plain, lifted)


def test_status_line_names_what_cleans_the_microphone() -> None:
    state = TalkState(mic_processing=("echo cancel", NOISE_SUPPRESSION, GAIN_CONTROL))
    assert "echo cancel · noise suppression · gain control" in status_line(state).plain
    assert "·" not in status_line(TalkState()).plain.split("m mute")[0]


def test_talk_session_shows_the_chain_and_drops_a_failing_cleaner() -> None:
    import asyncio

    from adkvoice.audio.capture import CaptureChunk
    from adkvoice.conversation.voice import TalkSession

    class FailingCleaner:
        features = (NOISE_SUPPRESSION, GAIN_CONTROL)

        def process(self, samples: Int16Array) -> Int16Array:
            raise RuntimeError("boom")

    class Playback:
        playing = False
        on_reply_start = None

        def read_played(self) -> list[object]:
            return []

    class Backend:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        async def send_audio(self, pcm: bytes) -> None:
            self.sent.append(pcm)

    view = TalkView(Console(file=io.StringIO(), width=120), TalkState())
    backend = Backend()
    session = TalkSession(
        backend,  # type: ignore[arg-type]
        view,
        Playback(),  # type: ignore[arg-type]
        push_to_talk=False,
        half_duplex=False,
        cleaner=FailingCleaner(),  # type: ignore[arg-type]
    )
    assert view.state.mic_processing == (NOISE_SUPPRESSION, GAIN_CONTROL)
    pcm = (np.arange(320, dtype=np.int16) % 50).astype("<i2").tobytes()

    async def mic() -> AsyncIterator[CaptureChunk]:
        yield CaptureChunk(pcm=pcm, captured_at=1.0, level_dbfs=-40.0)

    asyncio.run(session.pump_mic(mic()))
    assert backend.sent == [pcm]  # the chunk as it was
    assert session.cleaner is None
    assert len(view.state.mic_processing) == 0
    half = TalkSession(
        Backend(),  # type: ignore[arg-type]
        TalkView(Console(file=io.StringIO()), TalkState()),
        Playback(),  # type: ignore[arg-type]
        push_to_talk=False,
        half_duplex=True,
    )
    assert half.view.state.mic_processing == ("half duplex",)
