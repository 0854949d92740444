"""Devices, error translation, Capture and Playback logic against a fake sounddevice.

The callbacks are driven by hand here; tests/audio runs the same classes on real (virtual)
devices.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import re
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from adkvoice.audio import capture
from adkvoice.audio import device_errors as audio_errors
from adkvoice.audio import devices as audio
from adkvoice.audio.capture import Capture
from adkvoice.audio.dsp import float_to_int16, int16_to_pcm, pcm_to_int16
from adkvoice.audio.playback import Playback, ReplyStart
from adkvoice.audio.ring import AdaptivePrebuffer
from adkvoice.errors import AudioDeviceError


class PortAudioError(Exception):
    pass


class FakeStream:
    latency = 0.02

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True
        # A real stream calls back within a block or two; one call is enough for start().
        frames = self.kwargs["blocksize"]
        self.kwargs["callback"](np.zeros((frames, 1), dtype=np.int16), frames, block_time(), OK)

    def stop(self, ignore_errors: bool = True) -> None:
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.closed = True


class FakeSoundDevice:
    """Devices: (name, input rates, output rates, default rate)."""

    def __init__(
        self,
        devices: list[tuple[str, set[int] | None, set[int] | None, float]],
        defaults: tuple[int, int] = (-1, -1),
        open_error: Exception | None = None,
    ) -> None:
        self.devices = devices
        self.default = SimpleNamespace(device=list(defaults))
        self.open_error = open_error
        self.streams: list[FakeStream] = []
        self.PortAudioError = PortAudioError

    def query_devices(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "name": name,
                "hostapi": 0,
                "max_input_channels": 2 if ins is not None else 0,
                "max_output_channels": 2 if outs is not None else 0,
                "default_samplerate": rate,
            }
            for i, (name, ins, outs, rate) in enumerate(self.devices)
        ]

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "ALSA"}]

    def _check(self, which: int, device: int, samplerate: float | None = None, **_: Any) -> None:
        _name, ins, outs, default = self.devices[device]
        rates = (ins, outs)[which]
        if not rates:
            raise PortAudioError("Unanticipated host error", -9999, (0, -5, "Input/output error"))
        if int(samplerate or default) not in rates:
            raise PortAudioError("Invalid sample rate", -9997)

    def check_input_settings(self, **kw: Any) -> None:
        self._check(0, **kw)

    def check_output_settings(self, **kw: Any) -> None:
        self._check(1, **kw)

    def _stream(self, **kw: Any) -> FakeStream:
        if self.open_error is not None:
            raise self.open_error
        stream = FakeStream(**kw)
        self.streams.append(stream)
        return stream

    def InputStream(self, **kw: Any) -> FakeStream:
        return self._stream(**kw)

    def OutputStream(self, **kw: Any) -> FakeStream:
        return self._stream(**kw)


ALL = {16_000, 24_000, 44_100, 48_000}


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    sd = FakeSoundDevice(
        [
            ("Built-in Speaker", None, {44_100, 48_000}, 48_000.0),
            ("USB Mic", {48_000}, None, 48_000.0),
            ("USB Mic 2", ALL, None, 44_100.0),
            ("pulse", ALL, ALL, 44_100.0),
            ("HDMI out", {16_000}, ALL, 44_100.0),
        ],
        defaults=(3, 3),
    )
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    return sd


def block_time(adc_age: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(
        currentTime=10.0, inputBufferAdcTime=10.0 - adc_age, outputBufferDacTime=10.03
    )


OK = SimpleNamespace(input_overflow=False, output_underflow=False)


# ---- devices ---------------------------------------------------------------------------


def test_list_devices_probes_rates_and_marks_defaults(fake_sd: FakeSoundDevice) -> None:
    devices = audio.list_devices()
    assert [d.name for d in devices][:2] == ["Built-in Speaker", "USB Mic"]
    speaker, mic = devices[0], devices[1]
    assert speaker.input_rates == ()
    assert speaker.output_rates == (44_100, 48_000)
    assert mic.input_rates == (48_000,)
    assert not mic.can_output
    assert devices[3].default_input
    assert devices[3].default_output
    assert devices[3].hostapi == "ALSA"


def test_list_devices_without_any_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice([]))
    with pytest.raises(AudioDeviceError, match=r"no audio devices found.*chat --text"):
        audio.list_devices()


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        (None, "input", "pulse"),
        ("1", "input", "USB Mic"),
        (2, "input", "USB Mic 2"),
        ("usb mic", "input", "USB Mic"),  # exact (case-insensitive) beats substrings
        ("speaker", "output", "Built-in Speaker"),
        ("HDMI", "output", "HDMI out"),
    ],
)
def test_resolve_device(fake_sd: FakeSoundDevice, spec: str | None, kind: Any, name: str) -> None:
    assert audio.resolve_device(spec, kind).name == name


def test_resolve_ambiguous_lists_candidates(fake_sd: FakeSoundDevice) -> None:
    with pytest.raises(AudioDeviceError) as err:
        audio.resolve_device("usb", "input")
    text = str(err.value)
    assert "matches several input devices" in text
    assert "1 'USB Mic'" in text
    assert "2 'USB Mic 2'" in text
    assert "--input-device" in text
    assert "\n" not in text


def test_resolve_missing_name(fake_sd: FakeSoundDevice) -> None:
    with pytest.raises(
        AudioDeviceError, match=r"no output device matches 'airpods'.*--output-device"
    ):
        audio.resolve_device("airpods", "output")


def test_resolve_bad_index(fake_sd: FakeSoundDevice) -> None:
    with pytest.raises(AudioDeviceError, match=r"no audio device has index 9 .*numbered 0–4"):
        audio.resolve_device("9", "input")


def test_resolve_wrong_direction(fake_sd: FakeSoundDevice) -> None:
    with pytest.raises(AudioDeviceError, match="device 0 'Built-in Speaker' cannot record"):
        audio.resolve_device("0", "input")


def test_resolve_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSoundDevice([("Only Out", None, ALL, 48_000.0)], defaults=(-1, 0))
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    with pytest.raises(AudioDeviceError, match=r"no default input device.*--input-device"):
        audio.resolve_device(None, "input")


def test_resolve_device_that_refuses_every_candidate_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSoundDevice([("Odd", {96_000}, None, 22_050.0)], defaults=(0, -1))
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    sd.check_input_settings = lambda **kw: (_ for _ in ()).throw(  # type: ignore[method-assign]
        PortAudioError("Invalid sample rate", -9997)
    )
    with pytest.raises(AudioDeviceError, match=r"refuses none of .* Hz \(PortAudio -9997"):
        audio.resolve_device(None, "input")


def test_choose_rate_prefers_the_model_rate_then_the_device_default(
    fake_sd: FakeSoundDevice,
) -> None:
    assert audio.resolve_device("pulse", "input").choose_rate("input", 16_000) == 16_000
    assert audio.resolve_device("USB Mic", "input").choose_rate("input", 16_000) == 48_000
    speaker = audio.resolve_device("speaker", "output")
    assert speaker.choose_rate("output", 24_000) == 48_000


def test_missing_sounddevice_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import raises ImportError
    with pytest.raises(AudioDeviceError, match=r"sounddevice package is missing.*chat --text"):
        audio.list_devices()


def test_missing_portaudio_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoPortAudio(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> None:
            if name == "sounddevice":
                raise OSError("PortAudio library not found")

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioDeviceError, match=r"libportaudio2.*chat --text"):
        audio.list_devices()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("Error querying device -1",), "no default input device"),
        (("Invalid sample rate", -9997), "refuses the sample rate"),
        (("Device unavailable", -9985), "is busy"),
        (("Unanticipated host error", -9999, (0, -16, "Device or resource busy")), "is busy"),
        (("Illegal combination of I/O devices", -9993), "audio server stopped"),
        (("Unanticipated host error", -9999, (0, -5, "Input/output error")), "cannot record"),
        (("Invalid number of channels", -9998), "cannot record"),
        (("Invalid device", -9996), "not a valid input device"),
        (("Something new", -9000), "could not open .*Something new"),
    ],
)
def test_translate_portaudio_errors(args: tuple[object, ...], expected: str) -> None:
    err = audio_errors.translate(args, "input device 1 'Mic'", "input")
    assert isinstance(err, AudioDeviceError)
    text = str(err)
    assert "\n" not in text
    assert re.search(expected, text), text
    assert "--input-device" in text or "restart" in text


def test_open_errors_are_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = FakeSoundDevice(
        [("pulse", ALL, ALL, 44_100.0)],
        defaults=(0, 0),
        open_error=PortAudioError("Device unavailable", -9985),
    )
    monkeypatch.setitem(sys.modules, "sounddevice", sd)

    async def run() -> None:
        await Capture().start()

    with pytest.raises(AudioDeviceError, match="input device 0 'pulse' is busy"):
        asyncio.run(run())


# ---- capture ---------------------------------------------------------------------------


async def test_capture_resamples_chunks_and_stamps_times(
    fake_sd: FakeSoundDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(capture, "_monotonic", lambda: clock[0])
    mic = Capture("USB Mic")  # 48 kHz only: resampled to 16 kHz on the loop
    await mic.start()
    stream = fake_sd.streams[-1]
    assert stream.kwargs["samplerate"] == 48_000
    assert stream.kwargs["blocksize"] == 960
    t = np.arange(48_000) / 48_000
    source = float_to_int16(0.5 * np.sin(2 * np.pi * 1000 * t))
    for i in range(0, 48_000, 960):
        clock[0] += 0.02 + (0.003 if i // 960 % 2 else -0.003)  # callbacks jitter
        mic._callback(source[i : i + 960].reshape(-1, 1), 960, block_time(), OK)
        await asyncio.sleep(0)
    chunks = []
    while mic._chunks:
        chunk = await mic.read_chunk()
        assert chunk is not None
        chunks.append(chunk)
    assert len(chunks) >= 45  # soxr holds back a few ms
    assert all(len(c.pcm) == 640 for c in chunks)
    stamps = np.array([c.captured_at for c in chunks])
    # start() saw one block at t=100.0: its first sample was captured a block earlier.
    assert stamps[0] == pytest.approx(99.98, abs=0.004)
    assert np.allclose(np.diff(stamps), 0.02, atol=0.004)  # then the sample clock
    assert -10 < chunks[-1].level_dbfs < -8
    mic.muted = True
    mic._callback(source[:960].reshape(-1, 1), 960, block_time(), OK)
    await asyncio.sleep(0)
    muted = await mic.read_chunk()
    assert muted is not None
    assert not any(muted.pcm)
    await mic.aclose()
    assert stream.closed
    while mic._chunks:
        await mic.read_chunk()
    assert await mic.read_chunk() is None


async def test_capture_stall_is_an_audio_device_error(fake_sd: FakeSoundDevice) -> None:
    mic = Capture("pulse", stall_timeout_s=0.2)
    await mic.start()
    assert fake_sd.streams[-1].kwargs["samplerate"] == 16_000
    fake_sd.streams[-1].active = False  # what a dead audio server looks like

    async def read_all() -> None:
        while True:
            await mic.read_chunk()

    with pytest.raises(AudioDeviceError, match="stopped delivering audio"):
        await asyncio.wait_for(read_all(), 2)
    mic.close()


async def test_capture_wakes_the_loop_at_most_once_per_block(fake_sd: FakeSoundDevice) -> None:
    mic = Capture("pulse")
    await mic.start()
    loop = asyncio.get_running_loop()
    calls = 0
    original = loop.call_soon_threadsafe

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    mic._chunks.clear()
    try:
        block = np.zeros((320, 1), dtype=np.int16)
        for _ in range(5):  # the loop is busy: one wake covers them all
            mic._callback(block, 320, block_time(), OK)
        assert calls == 1
        await asyncio.sleep(0)
        assert len(mic._chunks) == 5
    finally:
        del loop.call_soon_threadsafe
    mic.close()


# ---- playback --------------------------------------------------------------------------


def run_block(pb: Playback, frames: int) -> np.ndarray:
    out = np.full((frames, 1), 123, dtype=np.int16)
    pb._callback(out, frames, block_time(), OK)
    return out[:, 0].copy()


def pcm(n: int, value: int = 1000) -> bytes:
    return int16_to_pcm(np.full(n, value, dtype=np.int16))


async def test_playback_prebuffers_plays_flushes(fake_sd: FakeSoundDevice) -> None:
    starts: list[ReplyStart] = []
    pb = Playback("pulse", on_reply_start=starts.append, tap=True)
    await pb.start()
    assert fake_sd.streams[-1].kwargs["samplerate"] == 24_000
    assert pb.prebuffer.target_ms == 10  # the jitter buffer starts small
    pb.enqueue(pcm(960))  # 40 ms: held for the 10 ms playout delay
    assert not run_block(pb, 240).any()
    pb.enqueue(pcm(1800))
    assert (run_block(pb, 240) == 1000).all()
    await asyncio.sleep(0)
    assert len(starts) == 1
    assert starts[0].speaker_at == pytest.approx(starts[0].callback_at + 0.03)
    assert pb.playing
    pb.flush()
    assert not pb.playing
    assert not run_block(pb, 240).any()  # the very next block is silent
    assert pb.flush_applied_at >= pb.flush_requested_at
    played = pb.read_played()
    assert sum(len(b.samples) for b in played) == 240
    await pb.aclose()


async def test_playback_short_reply_plays_after_end_reply(fake_sd: FakeSoundDevice) -> None:
    pb = Playback("pulse")
    await pb.start()
    pb.enqueue(pcm(100))
    assert not run_block(pb, 240).any()
    pb.end_reply()
    out = run_block(pb, 240)
    assert (out[:100] == 1000).all()
    assert not out[100:].any()
    assert pb.underruns == 0
    assert not pb.playing
    pb.close()


async def test_playback_counts_underruns_and_raises_the_prebuffer(
    fake_sd: FakeSoundDevice,
) -> None:
    pb = Playback("pulse", prebuffer=AdaptivePrebuffer(start_ms=60, min_ms=60))
    await pb.start()
    for cycle in range(4):
        pb.enqueue(pcm(2400))  # 100 ms, then the ring runs dry mid-reply
        for _ in range(40):
            run_block(pb, 240)
        # A gap counts once the same reply resumes (a reply may also just have ended).
        assert pb.underruns == cycle
    pb.enqueue(pcm(2400))
    assert pb.prebuffer.target_ms == 240
    assert pb.ring.start_threshold == 240 * 24
    pb.close()


async def test_playback_resamples_when_the_device_refuses_24k(fake_sd: FakeSoundDevice) -> None:
    pb = Playback("speaker")  # 44.1/48 kHz only
    await pb.start()
    assert pb.sample_rate == 48_000
    t = np.arange(24_000) / 24_000
    pb.enqueue(int16_to_pcm(float_to_int16(0.5 * np.sin(2 * np.pi * 1000 * t))))
    pb.end_reply()
    assert pb.ring.available == pytest.approx(48_000, abs=2)
    pb.close()


async def test_playback_backlog_beyond_the_ring(fake_sd: FakeSoundDevice) -> None:
    pb = Playback("pulse", buffer_s=0.1)  # a 2400-frame ring
    await pb.start()
    pb.enqueue(pcm(6000, 7))
    assert pb.ring.available == 2400
    assert pb.queued_s == pytest.approx(0.25)
    pb.end_reply()
    total = 0
    for _ in range(40):
        total += int(np.count_nonzero(run_block(pb, 240)))
        await asyncio.sleep(0.006)  # let the pump refill
    assert total == 6000
    assert pb.underruns == 0
    pb.flush()
    assert pb.queued_s == 0
    await pb.aclose()


async def test_playback_stall_is_an_audio_device_error(fake_sd: FakeSoundDevice) -> None:
    pb = Playback("pulse")
    await pb.start()
    fake_sd.streams[-1].active = False
    with pytest.raises(AudioDeviceError, match="stopped taking audio"):
        pb.enqueue(pcm(240))
    pb.close()


def test_enqueue_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        Playback().enqueue(b"\x00\x00")


def test_pcm_helper_round_trip() -> None:
    assert list(pcm_to_int16(pcm(2, 5))) == [5, 5]
