"""One-line, actionable messages for every way an audio device can fail (pure).

PortAudio's own messages ("Error querying device -1", "[PaErrorCode -9993]") say nothing a
user can act on. `audio.py` passes the raw failure here and raises what comes back; each
message names the device and says what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from adkvoice.errors import AudioDeviceError

Kind = Literal["input", "output"]

# PortAudio PaErrorCode values (portaudio.h)
PA_UNANTICIPATED_HOST_ERROR = -9999
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_BAD_IO_DEVICE_COMBINATION = -9993
PA_DEVICE_UNAVAILABLE = -9985
ALSA_EBUSY = -16
ALSA_EIO = -5

TEXT_MODE = "or use `adkvoice chat --text`"


def flag(kind: Kind) -> str:
    return "--input-device" if kind == "input" else "--output-device"


def _verb(kind: Kind) -> str:
    return "record" if kind == "input" else "play"


def portaudio_missing() -> AudioDeviceError:
    return AudioDeviceError(
        "audio needs the PortAudio library, which is not installed: install it (Debian/Ubuntu: "
        "`sudo apt install libportaudio2`; Fedora: `sudo dnf install portaudio`; macOS: "
        f"`brew install portaudio`) {TEXT_MODE}"
    )


def sounddevice_missing() -> AudioDeviceError:
    return AudioDeviceError(
        "the sounddevice package is missing from this Python environment: reinstall adkvoice "
        f"(`pip install --force-reinstall adkvoice`) {TEXT_MODE}"
    )


def portaudio_broken(detail: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"the audio system failed to start ({detail}): check that an audio server "
        f"(PulseAudio or PipeWire) is running, {TEXT_MODE}"
    )


def no_devices() -> AudioDeviceError:
    return AudioDeviceError(
        "no audio devices found: start an audio server (PulseAudio or PipeWire; on WSL use "
        "WSLg, in a container share the host's audio socket and set PULSE_SERVER) "
        f"{TEXT_MODE}"
    )


def no_default(kind: Kind) -> AudioDeviceError:
    return AudioDeviceError(
        f"there is no default {kind} device: choose one with {flag(kind)} "
        f"(list them with `adkvoice devices`) {TEXT_MODE}"
    )


def _listing(candidates: Iterable[tuple[int, str]], limit: int = 6) -> str:
    items = [f"{index} {name!r}" for index, name in candidates]
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def not_found(spec: str, kind: Kind, available: Sequence[tuple[int, str]]) -> AudioDeviceError:
    have = f" (available: {_listing(available)})" if available else ""
    return AudioDeviceError(
        f"no {kind} device matches {spec!r}{have}: pass an index or part of a name from "
        f"`adkvoice devices` to {flag(kind)}"
    )


def ambiguous(spec: str, kind: Kind, matches: Sequence[tuple[int, str]]) -> AudioDeviceError:
    return AudioDeviceError(
        f"{spec!r} matches several {kind} devices ({_listing(matches)}): pass the index or a "
        f"longer part of the name to {flag(kind)}"
    )


def bad_index(index: int, count: int, kind: Kind) -> AudioDeviceError:
    span = f"there are {count}, numbered 0–{count - 1}" if count else "there are none"
    return AudioDeviceError(
        f"no audio device has index {index} ({span}): see `adkvoice devices` and pass "
        f"another to {flag(kind)}"
    )


def wrong_direction(label: str, kind: Kind) -> AudioDeviceError:
    return AudioDeviceError(
        f"{label} cannot {_verb(kind)} audio: choose an {kind} device with {flag(kind)} "
        "(see `adkvoice devices`)"
    )


def unsupported_rates(label: str, kind: Kind, rates: Sequence[int]) -> AudioDeviceError:
    tried = f"none of {'/'.join(str(r) for r in rates)} Hz" if rates else "the sample rate"
    return AudioDeviceError(
        f"{label} refuses {tried} (PortAudio -9997, invalid sample rate): choose "
        f"another device with {flag(kind)} (`adkvoice devices` lists the rates each accepts) "
        f"{TEXT_MODE}"
    )


def busy(label: str, kind: Kind) -> AudioDeviceError:
    return AudioDeviceError(
        f"{label} is busy (another program is using it): close that program or choose "
        f"another device with {flag(kind)}"
    )


def server_gone(label: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"the audio server stopped or {label} disappeared: restart the audio server "
        f"(PulseAudio or PipeWire), reconnect the device and run adkvoice again, {TEXT_MODE}"
    )


def stalled(label: str, kind: Kind, seconds: float) -> AudioDeviceError:
    what = "delivering" if kind == "input" else "taking"
    return AudioDeviceError(
        f"{label} stopped {what} audio for {seconds:.1f} s (the audio server stopped or the "
        f"device was unplugged): reconnect it or choose another with {flag(kind)}, then run "
        "adkvoice again"
    )


def device_label(index: int | None, name: str | None, kind: Kind) -> str:
    if index is None or name is None:
        return f"the default {kind} device"
    return f"{kind} device {index} {name!r}"


def translate(args: Sequence[object], label: str, kind: Kind) -> AudioDeviceError:
    """Turn a `sounddevice.PortAudioError`'s args (message, code, host info) into one line."""
    message = str(args[0]) if args else "unknown PortAudio error"
    code = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    host_code: int | None = None
    if len(args) > 2 and isinstance(args[2], tuple) and len(args[2]) == 3:
        raw = args[2][1]
        host_code = raw if isinstance(raw, int) else None
    lowered = message.lower()
    if "querying device -1" in lowered:
        return no_default(kind)
    if code == PA_INVALID_SAMPLE_RATE:
        return unsupported_rates(label, kind, ())
    if code == PA_DEVICE_UNAVAILABLE or host_code == ALSA_EBUSY or "busy" in lowered:
        return busy(label, kind)
    if code == PA_BAD_IO_DEVICE_COMBINATION:
        return server_gone(label)
    if code == PA_INVALID_CHANNEL_COUNT or (
        code == PA_UNANTICIPATED_HOST_ERROR and host_code == ALSA_EIO
    ):
        return wrong_direction(label, kind)
    if code == PA_INVALID_DEVICE:
        return AudioDeviceError(
            f"{label} is not a valid {kind} device: see `adkvoice devices` and pass another "
            f"to {flag(kind)}"
        )
    return AudioDeviceError(
        f"could not open {label} ({message}): choose another device with {flag(kind)} "
        f"(see `adkvoice devices`) {TEXT_MODE}"
    )
