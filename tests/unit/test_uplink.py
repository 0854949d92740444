"""server/uplink.py: small microphone frames joined into 40 ms chunks, nothing lost or
reordered, never a split sample, and a bounded wait."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adkvoice.errors import ConnectionLostError
from adkvoice.server.uplink import CHUNK_BYTES, MAX_HOLD_S, AudioUplink, Coalescer

_CYCLE = bytes(range(251)) * 40  # a prime period: a shifted or reordered slice differs


def pattern(size: int, start: int = 0) -> bytes:
    """Bytes that show where they came from, so a reordering cannot go unnoticed."""
    assert size <= len(_CYCLE) - 251
    offset = start % 251
    return _CYCLE[offset : offset + size]


def feed(coalescer: Coalescer, frames: list[bytes]) -> list[bytes]:
    return [c for f in frames if (c := coalescer.add(f)) is not None]


def test_every_frame_size_comes_out_whole_in_big_chunks() -> None:
    for size in range(2, 4001):
        coalescer = Coalescer()
        frames = [pattern(size, start=k * size) for k in range(12)]
        chunks = feed(coalescer, frames)
        tail = coalescer.flush()
        assert b"".join(chunks) + tail == b"".join(frames), size
        assert all(len(c) >= CHUNK_BYTES and len(c) % 2 == 0 for c in chunks), size
        # Sent as soon as a chunk is full: never more than one frame past the target.
        assert all(len(c) <= CHUNK_BYTES + size for c in chunks), size
        assert len(tail) <= CHUNK_BYTES, size
        if size >= CHUNK_BYTES and size % 2 == 0:
            assert all(c is f for c, f in zip(chunks, frames, strict=True)), size


def test_a_big_frame_is_not_copied() -> None:
    frame = pattern(CHUNK_BYTES)
    assert Coalescer().add(frame) is frame


def test_eight_ms_frames_make_forty_ms_chunks() -> None:
    coalescer = Coalescer()
    frames = [pattern(256, start=k) for k in range(10)]  # 128 samples: 8 ms at 16 kHz
    results = [coalescer.add(f) for f in frames]
    assert [r is not None for r in results] == [False, False, False, False, True] * 2
    assert results[4] == b"".join(frames[:5])
    assert coalescer.held_bytes == 0
    assert coalescer.flush() == b""


def test_held_audio_goes_before_a_big_frame() -> None:
    coalescer = Coalescer()
    small, big = pattern(300), pattern(2000, start=7)
    assert coalescer.add(small) is None
    assert coalescer.add(big) == small + big


def test_an_odd_byte_waits_for_the_rest_of_its_sample() -> None:
    coalescer = Coalescer()
    assert coalescer.add(pattern(1281)) == pattern(1280)  # not copied whole: odd
    assert coalescer.held_bytes == 1
    assert coalescer.add(b"\x01") is None  # its sample is now whole, but short of a chunk
    assert coalescer.flush() == pattern(1281)[1280:] + b"\x01"


def test_flush_returns_what_is_held_and_empties() -> None:
    coalescer = Coalescer()
    coalescer.add(pattern(100))
    assert coalescer.flush() == pattern(100)
    assert coalescer.flush() == b""


def test_target_zero_passes_every_frame_through() -> None:
    coalescer = Coalescer(target_bytes=0)
    frame = pattern(256)
    assert coalescer.add(frame) is frame


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=40), st.data())
def test_nothing_lost_or_reordered_and_no_sample_split(
    sizes: list[int], data: st.DataObject
) -> None:
    coalescer = Coalescer()
    sent: list[bytes] = []
    out: list[bytes] = []
    offset = 0
    for size in sizes:
        frame = pattern(size, start=offset)
        offset += size
        sent.append(frame)
        chunk = coalescer.add(frame)
        if chunk is not None:
            assert len(chunk) >= CHUNK_BYTES
            assert len(chunk) % 2 == 0  # whole samples only
            out.append(chunk)
        if data.draw(st.booleans(), label="flush now"):
            held = coalescer.flush()
            if held:
                out.append(held)
    out.append(coalescer.flush())
    assert b"".join(out) == b"".join(sent)


# ------------------------------------------------------------------------ AudioUplink


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.fail = False

    async def send(self, pcm: bytes) -> None:
        if self.fail:
            raise ConnectionLostError("gone")
        self.sent.append((time.monotonic(), pcm))

    @property
    def data(self) -> bytes:
        return b"".join(pcm for _, pcm in self.sent)


async def test_uplink_sends_chunks_and_flushes_the_rest_after_the_deadline() -> None:
    recorder = Recorder()
    uplink = AudioUplink(recorder.send)
    frames = [pattern(256, start=k) for k in range(7)]
    started = time.monotonic()
    for frame in frames:
        await uplink.add(frame)
    assert [len(pcm) for _, pcm in recorder.sent] == [1280]
    assert uplink.held_bytes == 512
    held_at = time.monotonic()
    await asyncio.sleep(MAX_HOLD_S * 3)
    assert [len(pcm) for _, pcm in recorder.sent] == [1280, 512]
    flushed_at = recorder.sent[1][0]
    assert flushed_at - held_at <= MAX_HOLD_S + 0.03  # the bound, with a loop's slack
    assert flushed_at - held_at >= MAX_HOLD_S - 0.005
    assert recorder.data == b"".join(frames)
    assert started <= recorder.sent[0][0]
    await uplink.close()


async def test_uplink_deadline_counts_from_the_oldest_held_byte() -> None:
    recorder = Recorder()
    uplink = AudioUplink(recorder.send, max_hold_s=0.05)
    first_at = time.monotonic()
    for k in range(4):  # 32 ms of audio over 60 ms: too slow to fill a chunk in time
        await uplink.add(pattern(256, start=k))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.08)
    assert recorder.sent, "the deadline flushed nothing"
    assert recorder.sent[0][0] - first_at <= 0.05 + 0.03
    assert recorder.data == b"".join(pattern(256, start=k) for k in range(4))
    await uplink.close()


async def test_flush_sends_held_audio_at_once_and_close_sends_the_rest() -> None:
    recorder = Recorder()
    uplink = AudioUplink(recorder.send)
    await uplink.add(pattern(300))
    await uplink.flush()
    assert recorder.data == pattern(300)
    await uplink.add(pattern(200, start=1))
    await uplink.close()
    assert recorder.data == pattern(300) + pattern(200, start=1)
    await uplink.add(pattern(2000))  # after close: ignored
    await asyncio.sleep(MAX_HOLD_S * 2)
    assert len(recorder.sent) == 2


async def test_a_failed_agent_fails_add_and_flush_but_not_the_timer_or_close() -> None:
    recorder = Recorder()
    uplink = AudioUplink(recorder.send, max_hold_s=0.01)
    recorder.fail = True
    with pytest.raises(ConnectionLostError):
        await uplink.add(pattern(2000))
    await uplink.add(pattern(100))
    await asyncio.sleep(0.05)  # the timed flush fails quietly
    await uplink.add(pattern(100))
    with pytest.raises(ConnectionLostError):
        await uplink.flush()
    await uplink.add(pattern(100))
    await uplink.close()
    assert recorder.sent == []


async def test_switched_off_every_frame_goes_as_it_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADKVOICE_UPLINK_COALESCE", "off")
    recorder = Recorder()
    uplink = AudioUplink.for_serve(recorder.send)
    frame = pattern(256)
    await uplink.add(frame)
    assert recorder.sent[0][1] is frame
    monkeypatch.delenv("ADKVOICE_UPLINK_COALESCE")
    on = AudioUplink.for_serve(recorder.send)
    await on.add(frame)
    assert on.held_bytes == 256
    await on.close()
