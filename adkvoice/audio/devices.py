"""Audio devices and PortAudio access: the only module that imports sounddevice.

sounddevice is imported lazily so `adkvoice --help` stays fast and a missing PortAudio is an
`AudioDeviceError`, not an import traceback. PortAudio control calls (query, probe, open,
stop) are serialized by one lock and run off the event loop; ALSA's stderr chatter during
them is silenced (set ADKVOICE_AUDIO_DEBUG=1 to see it).

The streams built on this live beside it: `capture.py` (microphone → 16 kHz chunks) and
`playback.py` (agent audio → speaker), with the pure parts in `ringbuffer.py`, `dsp.py`
and `audio_errors.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from adkvoice.audio import device_errors as msg
from adkvoice.audio.device_errors import Kind
from adkvoice.audio.dsp import MODEL_INPUT_RATE
from adkvoice.errors import AudioDeviceError

CANDIDATE_RATES = (16_000, 24_000, 44_100, 48_000)
_PA_LOCK = threading.RLock()
_monotonic = time.monotonic

# ---- PortAudio access ------------------------------------------------------------------


@contextlib.contextmanager
def _portaudio() -> Iterator[None]:
    """Serialize PortAudio control calls and hide ALSA's stderr noise while they run."""
    with _PA_LOCK:
        if os.environ.get("ADKVOICE_AUDIO_DEBUG"):
            yield
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


# ALSA reports xruns and recoveries on stderr from inside streams, where the redirect
# above does not reach; a no-op handler keeps them off the conversation's screen.
_ALSA_HANDLER: Any = None


def _quiet_alsa() -> None:
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None or os.environ.get("ADKVOICE_AUDIO_DEBUG"):
        return
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        asound = ctypes.CDLL(name)
    except OSError:
        return
    handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )

    def ignore(_file: bytes, _line: int, _func: bytes, _err: int, _fmt: bytes) -> None:
        return None

    _ALSA_HANDLER = handler_type(ignore)
    asound.snd_lib_error_set_handler(_ALSA_HANDLER)


def _sd() -> Any:
    """The sounddevice module, or an AudioDeviceError saying how to get PortAudio."""
    module = sys.modules.get("sounddevice")
    if module is not None:
        return module
    _quiet_alsa()
    try:
        with _portaudio():
            import sounddevice
    except ImportError as exc:
        raise msg.sounddevice_missing() from exc
    except OSError as exc:  # "PortAudio library not found"
        raise msg.portaudio_missing() from exc
    except Exception as exc:  # PortAudioError from Pa_Initialize
        raise msg.portaudio_broken(str(exc)) from exc
    return sounddevice


def _is_portaudio_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "PortAudioError"


# ---- devices ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool
    input_rates: tuple[int, ...]  # rates it accepts for mono int16 recording
    output_rates: tuple[int, ...]  # and for playback

    @property
    def can_input(self) -> bool:
        return bool(self.input_rates)

    @property
    def can_output(self) -> bool:
        return bool(self.output_rates)

    def rates(self, kind: Kind) -> tuple[int, ...]:
        return self.input_rates if kind == "input" else self.output_rates

    def label(self, kind: Kind) -> str:
        return msg.device_label(self.index, self.name, kind)

    def choose_rate(self, kind: Kind, preferred: int) -> int:
        """The preferred rate if accepted, else the device default, else the best other."""
        rates = self.rates(kind)
        if preferred in rates:
            return preferred
        default = int(self.default_samplerate)
        if default in rates:
            return default
        for rate in (48_000, 44_100, 24_000, 16_000):
            if rate in rates:
                return rate
        raise msg.unsupported_rates(self.label(kind), kind, CANDIDATE_RATES)


def _probe(sd: Any, index: int, channels: int, default_rate: float, kind: Kind) -> tuple[int, ...]:
    if channels <= 0:
        return ()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    rates = sorted({*CANDIDATE_RATES, int(default_rate)})
    accepted: list[int] = []
    for rate in rates:
        try:
            check(device=index, samplerate=rate, channels=1, dtype="int16")
        except Exception as exc:
            code = exc.args[1] if _is_portaudio_error(exc) and len(exc.args) > 1 else None
            if code != msg.PA_INVALID_SAMPLE_RATE:
                return ()  # this direction does not work at all: stop probing it
            continue
        accepted.append(rate)
    return tuple(accepted)


def _defaults(sd: Any) -> tuple[int, int]:
    pair = sd.default.device
    return int(pair[0]), int(pair[1])


def _info(
    sd: Any, raw: Any, hostapis: Any, defaults: tuple[int, int], kinds: set[Kind]
) -> DeviceInfo:
    index = int(raw["index"])
    ins, outs = int(raw["max_input_channels"]), int(raw["max_output_channels"])
    rate = float(raw["default_samplerate"])
    return DeviceInfo(
        index=index,
        name=str(raw["name"]),
        hostapi=str(hostapis[raw["hostapi"]]["name"]),
        max_input_channels=ins,
        max_output_channels=outs,
        default_samplerate=rate,
        default_input=index == defaults[0],
        default_output=index == defaults[1],
        input_rates=_probe(sd, index, ins, rate, "input") if "input" in kinds else (),
        output_rates=_probe(sd, index, outs, rate, "output") if "output" in kinds else (),
    )


def list_devices() -> list[DeviceInfo]:
    """Every device with default marks and the candidate rates it accepts, per direction."""
    sd = _sd()
    with _portaudio():
        raw = list(sd.query_devices())
        hostapis = sd.query_hostapis()
        defaults = _defaults(sd)
        if not raw:
            raise msg.no_devices()
        return [_info(sd, d, hostapis, defaults, {"input", "output"}) for d in raw]


def resolve_device(spec: str | int | None, kind: Kind) -> DeviceInfo:
    """A device by index, by case-insensitive name substring, or the default (None).

    Only devices that really work in `kind`'s direction count as matches, and an exact
    name wins over substrings. Missing or ambiguous specs raise with the candidates.
    """
    sd = _sd()
    with _portaudio():
        raw = list(sd.query_devices())
        hostapis = sd.query_hostapis()
        defaults = _defaults(sd)
        if not raw:
            raise msg.no_devices()
        channels = "max_input_channels" if kind == "input" else "max_output_channels"
        text = str(spec).strip() if spec is not None else None
        if text is None or text == "":
            index = defaults[0] if kind == "input" else defaults[1]
            if index < 0:
                raise msg.no_default(kind)
            chosen = [raw[index]]
        elif text.lstrip("-").isdigit():
            index = int(text)
            if not 0 <= index < len(raw):
                raise msg.bad_index(index, len(raw), kind)
            chosen = [raw[index]]
        else:
            needle = text.casefold()
            named = [d for d in raw if needle in str(d["name"]).casefold() and d[channels] > 0]
            exact = [d for d in named if str(d["name"]).casefold() == needle]
            chosen = exact or named
            if not chosen:
                have = [(int(d["index"]), str(d["name"])) for d in raw if d[channels] > 0]
                raise msg.not_found(text, kind, have)
        infos = [_info(sd, d, hostapis, defaults, {kind}) for d in chosen]
    usable = [i for i in infos if i.rates(kind)]
    if len(usable) == 1:
        return usable[0]
    if len(usable) > 1:
        raise msg.ambiguous(str(text), kind, [(i.index, i.name) for i in usable])
    if len(infos) == 1 and _refusal_code(sd, infos[0], kind) == msg.PA_INVALID_SAMPLE_RATE:
        raise msg.unsupported_rates(infos[0].label(kind), kind, CANDIDATE_RATES)
    if len(infos) == 1:
        raise msg.wrong_direction(infos[0].label(kind), kind)
    raise msg.not_found(str(text), kind, [(i.index, i.name) for i in infos])


def _refusal_code(sd: Any, info: DeviceInfo, kind: Kind) -> int | None:
    """Why the device refuses this direction at 16 kHz: the PaErrorCode, if any."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        with _portaudio():
            check(device=info.index, samplerate=MODEL_INPUT_RATE, channels=1, dtype="int16")
    except Exception as exc:
        code = exc.args[1] if _is_portaudio_error(exc) and len(exc.args) > 1 else None
        return code if isinstance(code, int) else -1
    return None


def open_stream(info: DeviceInfo, kind: Kind, **kwargs: Any) -> Any:
    """Open and start a mono int16 stream; PortAudio failures become one-line errors."""
    try:
        with _portaudio():
            sd = _sd()
            factory = sd.InputStream if kind == "input" else sd.OutputStream
            stream = factory(device=info.index, channels=1, dtype="int16", **kwargs)
            stream.start()
    except AudioDeviceError:
        raise
    except Exception as exc:
        if _is_portaudio_error(exc) or isinstance(exc, ValueError):
            raise msg.translate(exc.args, info.label(kind), kind) from exc
        raise
    return stream


def close_stream(stream: Any) -> None:
    """Stop and close a stream, ignoring errors (the device may already be gone)."""
    with contextlib.suppress(Exception), _portaudio():
        stream.stop(ignore_errors=True)
        stream.close(ignore_errors=True)


def as_device(device: DeviceInfo | str | int | None, kind: Kind) -> DeviceInfo:
    return device if isinstance(device, DeviceInfo) else resolve_device(device, kind)


async def until_running(
    callbacks: Callable[[], int],
    underflows: Callable[[], int],
    label: str,
    kind: Kind,
    *,
    timeout_s: float,
    settle_s: float = 0.0,
) -> None:
    """Wait for a new stream's first callbacks (22–81 ms on PulseAudio), then for
    `settle_s` of them without a device underflow: output streams often underflow while
    they start. No callback within `timeout_s` is an AudioDeviceError."""
    started = _monotonic()
    quiet_since: float | None = None
    seen = -1
    while True:
        now = _monotonic()
        if callbacks():
            if underflows() != seen:
                seen, quiet_since = underflows(), now
            if quiet_since is not None and now - quiet_since >= settle_s:
                return
        if now - started > max(timeout_s, settle_s * 10):
            if not callbacks():
                raise msg.stalled(label, kind, now - started)
            return  # it runs, if not smoothly: let it play
        await asyncio.sleep(0.005)
