"""Energy VAD and the emulator's speech helpers (pure parts; espeak-ng when installed)."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adkvoice.emulator import speech
from adkvoice.emulator.vad import SpeechDetector, SpeechEnded, SpeechStarted, VadEvent, frame_dbfs
from adkvoice.errors import EmulatorError

RATE = 16_000


def tone(seconds: float, level: float = 8000.0, freq: float = 220.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(seconds * RATE)


def test_frame_dbfs() -> None:
    full = np.frombuffer(tone(0.02, level=32767), dtype="<i2")
    assert frame_dbfs(full) == pytest.approx(-3.0, abs=0.1)
    assert frame_dbfs(np.zeros(320, dtype="<i2")) == -120.0
    assert frame_dbfs(np.zeros(0, dtype="<i2")) == -120.0


def test_silence_and_noise_floor_never_start() -> None:
    vad = SpeechDetector()
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal(RATE) * 100).astype("<i2").tobytes()  # about -50 dBFS
    assert vad.feed(silence(1.0) + hiss) == []
    assert vad.flush() is None


def test_utterance_start_and_end() -> None:
    vad = SpeechDetector(silence_ms=500)
    events = vad.feed(silence(0.5) + tone(0.6) + silence(0.6))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    start, end = events
    assert isinstance(start, SpeechStarted)
    assert isinstance(end, SpeechEnded)
    assert start.at_s == pytest.approx(0.5, abs=0.02)
    assert end.speech_s == pytest.approx(0.6, abs=0.03)
    assert end.at_s == pytest.approx(1.6, abs=0.03)
    # The utterance carries a pre-roll before the onset plus the trailing silence.
    assert len(end.pcm) / 2 / RATE == pytest.approx(0.2 + 0.6 + 0.5, abs=0.03)


def test_short_click_is_not_speech() -> None:
    vad = SpeechDetector(start_ms=100)
    assert vad.feed(silence(0.2) + tone(0.04) + silence(0.6)) == []


def test_pauses_shorter_than_silence_keep_one_utterance() -> None:
    vad = SpeechDetector(silence_ms=500)
    audio = tone(0.3) + silence(0.3) + tone(0.3) + silence(0.6)
    events = vad.feed(audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_silence_setting_is_honoured() -> None:
    quick = SpeechDetector(silence_ms=200)
    assert [type(e) for e in quick.feed(tone(0.3) + silence(0.3))] == [SpeechStarted, SpeechEnded]
    slow = SpeechDetector(silence_ms=800)
    assert [type(e) for e in slow.feed(tone(0.3) + silence(0.3))] == [SpeechStarted]
    assert slow.in_speech


def test_flush_ends_speech_in_progress() -> None:
    vad = SpeechDetector()
    assert [type(e) for e in vad.feed(tone(0.3))] == [SpeechStarted]
    ended = vad.flush()
    assert isinstance(ended, SpeechEnded)
    assert not vad.in_speech
    assert vad.flush() is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=40))
def test_chunking_does_not_change_events(cuts: list[int]) -> None:
    audio = silence(0.3) + tone(0.4) + silence(0.7) + tone(0.2) + silence(0.1)
    whole = SpeechDetector().feed(audio)
    vad = SpeechDetector()
    pieces: list[VadEvent] = []
    pos = 0
    for cut in cuts * (len(audio) // sum(cuts) + 1):
        if pos >= len(audio):
            break
        pieces += vad.feed(audio[pos : pos + cut])
        pos += cut
    assert pieces == whole


def test_vad_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        SpeechDetector(sample_rate=0)


# ------------------------------------------------------------------------------ speech helpers


def test_resample_keeps_duration_and_pitch() -> None:
    src = tone(1.0, freq=440.0)
    out = speech.resample(src, 16_000, 24_000)
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64)
    assert samples.size == 24_000
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1 s of audio: bin == Hz
    assert speech.resample(src, 16_000, 16_000) is src
    assert speech.resample(b"", 16_000, 24_000) == b""


def test_synthetic_tts_is_deterministic_and_speechlike() -> None:
    pcm = asyncio.run(speech.SyntheticTts().synthesize("Hello there, general Kenobi."))
    assert pcm == speech.synthesize_tones(
        "Hello there, general Kenobi.",
        32767 * 10 ** (-14 / 20),
        base_hz=speech.SpeechStyle().tone_hz,
    )
    assert len(pcm) % 2 == 0
    seconds = len(pcm) / 2 / 24_000
    assert 0.8 < seconds < 3.0
    # What the emulator says is loud enough for its own VAD (e.g. echo tests).
    events = SpeechDetector().feed(speech.resample(pcm, 24_000, 16_000) + silence(0.6))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert speech.synthesize_tones("") == b""


def _wav(pcm: bytes, rate: int, channels: int = 1, sizes_unknown: bool = False) -> bytes:
    size = 0xFFFFFFFF if sizes_unknown else len(pcm)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return (
        b"RIFF" + struct.pack("<I", size) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
        + b"LIST" + struct.pack("<I", 4) + b"INFO"
        + b"data" + struct.pack("<I", size) + pcm
    )  # fmt: skip


def test_parse_wav_tolerates_streamed_sizes() -> None:
    pcm = tone(0.1)
    assert speech.parse_wav(_wav(pcm, 22050, sizes_unknown=True)) == (pcm, 22050)
    stereo = np.repeat(np.frombuffer(pcm, dtype="<i2"), 2).astype("<i2").tobytes()
    assert speech.parse_wav(_wav(stereo, 16000, channels=2)) == (pcm, 16000)
    with pytest.raises(EmulatorError, match="WAV"):
        speech.parse_wav(b"not a wav file")


def test_placeholder_stt() -> None:
    assert asyncio.run(speech.PlaceholderStt().transcribe(silence(1.4))) == ""
    assert speech.placeholder_transcript(silence(1.4)) == "[speech 1.4 s]"


def test_make_tts_and_stt_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert speech.make_tts("synthetic").name == "synthetic"
    assert speech.make_stt("placeholder").name == "placeholder"
    monkeypatch.setattr(speech, "espeak_available", lambda: False)
    assert speech.make_tts("auto").name == "synthetic"
    with pytest.raises(EmulatorError, match="espeak-ng is not on PATH"):
        speech.make_tts("espeak")
    monkeypatch.setattr(speech, "pocketsphinx_available", lambda: False)
    assert speech.make_stt("auto").name == "placeholder"
    with pytest.raises(EmulatorError, match="pocketsphinx is not installed"):
        speech.make_stt("pocketsphinx")


@pytest.mark.skipif(not speech.pocketsphinx_available(), reason="pocketsphinx not installed")
def test_pocketsphinx_loads_once_and_decodes() -> None:
    stt = speech.make_stt("pocketsphinx")
    assert stt.name == "pocketsphinx"
    # Whatever it hears in a tone (it may "hear" a word), it returns plain text.
    assert isinstance(asyncio.run(stt.transcribe(tone(0.5))), str)
    decoder = speech._decoder
    assert decoder is not None
    asyncio.run(stt.transcribe(silence(0.2)))
    assert speech._decoder is decoder


@pytest.mark.skipif(not speech.espeak_available(), reason="espeak-ng not installed")
def test_espeak_speaks_at_24khz() -> None:
    tts = speech.make_tts("auto")
    assert tts.name == "espeak"
    pcm = asyncio.run(tts.synthesize("-- hello world"))  # leading dashes must not be flags
    seconds = len(pcm) / 2 / 24_000
    assert 0.4 < seconds < 3.0
    events = SpeechDetector().feed(speech.resample(pcm, 24_000, 16_000) + silence(0.6))
    assert SpeechStarted in [type(e) for e in events]
