"""Speech for the emulator: text to 24 kHz PCM and 16 kHz PCM to text.

Speech out uses espeak-ng when it is installed (run as an asyncio subprocess so the loop
never blocks), otherwise a clearly synthetic tone burst per word, so nobody mistakes the
emulator for a model. Speech in uses pocketsphinx's bundled en-us model (loaded once per
process, decoded in a worker thread), otherwise a placeholder such as "[speech 1.4 s]".
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from adkvoice.errors import EmulatorError
from adkvoice.live_models import DEFAULT_VOICE

from .client_messages import INPUT_RATE, OUTPUT_RATE

if TYPE_CHECKING:
    import numpy as np

TtsMode = Literal["auto", "espeak", "synthetic"]
SttMode = Literal["auto", "pocketsphinx", "placeholder"]


@dataclass(frozen=True)
class SpeechStyle:
    """How the emulated model speaks: the setup's voice and language. Each voice gets its
    own pitch and each language espeak-ng's voice for it, so tests can hear the choice."""

    voice: str = DEFAULT_VOICE
    language: str | None = None  # BCP-47, e.g. de-DE; None: English

    @property
    def pitch(self) -> int:
        """0-99 (espeak-ng's -p), stable per voice name."""
        return 20 + zlib.crc32(self.voice.lower().encode()) % 60

    @property
    def tone_hz(self) -> float:
        """The base pitch of the synthetic voice (when espeak-ng is missing)."""
        return 120.0 + 2 * self.pitch

    @property
    def espeak_voice(self) -> str:
        primary = (self.language or "en-US").split("-")[0].lower()
        return "en-us" if primary == "en" or primary not in ESPEAK_LANGUAGES else primary


# Languages of the Live API's list that espeak-ng speaks (its voice is the primary subtag).
_ESPEAK_LANGUAGE_LIST = "ar bn de es fr hi id it ja ko mr nl pl pt ro ru ta te th tr uk vi"
ESPEAK_LANGUAGES = frozenset(_ESPEAK_LANGUAGE_LIST.split())


class Tts(Protocol):
    name: str

    async def synthesize(self, text: str, style: SpeechStyle = SpeechStyle()) -> bytes:
        """Return 24 kHz s16le mono PCM speaking `text`."""
        ...


class Stt(Protocol):
    name: str

    async def transcribe(self, pcm: bytes) -> str:
        """Return the words in 16 kHz s16le mono `pcm` ("" if none were recognised)."""
        ...


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Linear-interpolation resampling of s16le mono; good enough for speech."""
    # numpy is imported where audio is handled: a text-only emulator never loads it.
    import numpy as np

    if src_rate == dst_rate or not pcm:
        return pcm
    src = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64)
    if src.size == 0:
        return b""
    n_out = max(1, round(src.size * dst_rate / src_rate))
    positions = np.arange(n_out, dtype=np.float64) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(src.size, dtype=np.float64), src)
    return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def placeholder_transcript(pcm: bytes, sample_rate: int = INPUT_RATE) -> str:
    return f"[speech {len(pcm) / 2 / sample_rate:.1f} s]"


# ------------------------------------------------------------------------------ speech out


def parse_wav(data: bytes) -> tuple[bytes, int]:
    """Return (s16le mono PCM, sample rate) from a WAV stream.

    espeak-ng writing to a pipe cannot seek back to fix the chunk sizes, so the data chunk
    is taken as "everything after its header" rather than trusting its length.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EmulatorError("espeak-ng did not produce WAV audio")
    pos = 12
    rate = 0
    channels = 1
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            (bits,) = struct.unpack("<H", data[body + 14 : body + 16])
            if fmt != 1 or bits != 16:
                raise EmulatorError("espeak-ng produced audio that is not 16-bit PCM")
        elif chunk_id == b"data":
            if rate == 0:
                raise EmulatorError("espeak-ng WAV output has no fmt chunk")
            pcm = data[body:]
            pcm = pcm[: len(pcm) - len(pcm) % (2 * channels)]
            if channels > 1:
                import numpy as np

                frames = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
                pcm = frames[:, 0].astype("<i2").tobytes()
            return pcm, rate
        pos = body + size + (size & 1)
    raise EmulatorError("espeak-ng WAV output has no data chunk")


class EspeakTts:
    name = "espeak"

    def __init__(self, executable: str = "espeak-ng", wpm: int = 175) -> None:
        self._argv = [executable, "--stdout", "--stdin", "-s", str(wpm)]

    async def synthesize(self, text: str, style: SpeechStyle = SpeechStyle()) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *self._argv,
            "-v",
            style.espeak_voice,
            "-p",
            str(style.pitch),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            # Text goes through stdin so a reply starting with "-" is never read as a flag.
            out, err = await proc.communicate(text.encode("utf-8"))
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            reason = err.decode("utf-8", "replace").strip().splitlines()
            raise EmulatorError(f"espeak-ng failed: {reason[-1] if reason else proc.returncode}")
        pcm, rate = parse_wav(out)
        return resample(pcm, rate, OUTPUT_RATE)


class SyntheticTts:
    """One tone burst per word: unmistakably not a voice, but shaped like speech for VAD."""

    name = "synthetic"

    def __init__(self, level_dbfs: float = -14.0) -> None:
        self._amplitude = 32767.0 * 10 ** (level_dbfs / 20.0)

    async def synthesize(self, text: str, style: SpeechStyle = SpeechStyle()) -> bytes:
        return synthesize_tones(text, self._amplitude, base_hz=style.tone_hz)


def synthesize_tones(
    text: str, amplitude: float = 6500.0, rate: int = OUTPUT_RATE, base_hz: float = 170.0
) -> bytes:
    """Deterministic tone bursts (pure; no I/O); `base_hz` sets the voice's pitch."""
    import numpy as np

    pieces: list[np.ndarray] = []
    gap = np.zeros(int(0.07 * rate))
    pause = np.zeros(int(0.18 * rate))
    for word in text.split():
        duration = min(0.12 + 0.03 * len(word), 0.45)
        t = np.arange(int(duration * rate)) / rate
        # Pitch from the word's checksum so the same reply always sounds the same.
        pitch = base_hz + (zlib.crc32(word.lower().encode()) % 140)
        tone = np.sin(2 * np.pi * pitch * t) + 0.35 * np.sin(2 * np.pi * 2 * pitch * t)
        fade = np.minimum(1.0, np.minimum(t, duration - t) / 0.015)
        pieces.append(amplitude / 1.35 * tone * fade)
        pieces.append(pause if word[-1] in ".!?,;:" else gap)
    if not pieces:
        return b""
    signal = np.concatenate(pieces)
    pcm: bytes = np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()
    return pcm


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def make_tts(mode: TtsMode) -> Tts:
    if mode == "synthetic" or (mode == "auto" and not espeak_available()):
        return SyntheticTts()
    if not espeak_available():
        raise EmulatorError(
            "tts='espeak' but espeak-ng is not on PATH: install it (apt-get install espeak-ng) "
            "or use tts='auto'"
        )
    return EspeakTts()


# ------------------------------------------------------------------------------- speech in


class PlaceholderStt:
    """Recognises no words: the session stands in "[speech 1.4 s]" for what was said."""

    name = "placeholder"

    async def transcribe(self, pcm: bytes) -> str:
        return ""


_decoder_lock = threading.Lock()
_decoder: Any = None


def _load_decoder() -> Any:
    """Load pocketsphinx's en-us model once per process; later calls reuse it."""
    global _decoder
    if _decoder is None:
        from pocketsphinx import Decoder

        _decoder = Decoder(samprate=INPUT_RATE, logfn=os.devnull)
    return _decoder


# pocketsphinx holds the GIL while it decodes: fed a whole utterance at once it held it
# for 2.3 s on 2 s of audio, long enough to starve the audio callbacks of a `talk` running
# the emulator in-process (its capture watchdog calls a 1.5 s silence a dead device). Fed
# 100 ms at a time, the longest hold measured 0.17 s, and decoding was faster too.
DECODE_CHUNK_BYTES = 2 * INPUT_RATE // 10


def _decode_blocking(pcm: bytes) -> str:
    with _decoder_lock:  # one Decoder, not reentrant: serialise across emulators/threads
        decoder = _load_decoder()
        decoder.start_utt()
        for start in range(0, len(pcm), DECODE_CHUNK_BYTES):
            decoder.process_raw(pcm[start : start + DECODE_CHUNK_BYTES], False, False)
        decoder.end_utt()
        hyp = decoder.hyp()
    return str(hyp.hypstr).strip() if hyp is not None else ""


class PocketsphinxStt:
    name = "pocketsphinx"

    async def transcribe(self, pcm: bytes) -> str:
        return await asyncio.to_thread(_decode_blocking, pcm)


def pocketsphinx_available() -> bool:
    return importlib.util.find_spec("pocketsphinx") is not None


def make_stt(mode: SttMode) -> Stt:
    if mode == "placeholder" or (mode == "auto" and not pocketsphinx_available()):
        return PlaceholderStt()
    if not pocketsphinx_available():
        raise EmulatorError(
            "stt='pocketsphinx' but pocketsphinx is not installed: pip install 'adkvoice[speech]' "
            "or use stt='auto'"
        )
    return PocketsphinxStt()
