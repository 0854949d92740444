"""Figures for showing the model a camera and a screen (adkvoice.vision).

1. CPU per frame (grab, grey thumbnail, scale to fit 768 px, JPEG encode) and the share
   of one core that costs at 1 fps, with the JPEG size at the default quality:
   - camera: a 1280x720 30 fps video file written here (smoothed noise drifting across
     the picture, busier than most rooms), read frame after frame as a camera delivers
     them (the skipping a file does to keep real time is left out: a camera has none);
   - screen: a private 1024x768 Xvfb screen covered with a mosaic of coloured windows,
     captured through mss (MIT-SHM).
2. An idle screen: `FrameSender` at 1 fps on an unchanged Xvfb screen for --idle-s
   seconds (30): frames sent, frames skipped, and the CPU the whole process used.

CPU is process CPU time (all threads), so it includes numpy and OpenCV threads.
No assertions: it prints figures.

Run: .venv/bin/python bench/vision_bench.py [--frames N] [--idle-s S] [--quality Q]
Needs the vision extra (pip install 'adkvoice[vision]') and Xvfb (Debian package xvfb).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adkvoice.vision.codec import grey_thumbnail, prepare
from adkvoice.vision.policy import DEFAULT_QUALITY, MAX_SIDE, FramePolicy
from adkvoice.vision.screen import ScreenSource
from adkvoice.vision.sender import FrameSender
from adkvoice.vision.sources import CameraSource, FrameSource
from tests.integration.xvfb_support import Painter, running_xvfb


def write_video(path: Path, seconds: float, fps: float = 30.0) -> None:
    import cv2

    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.integers(0, 256, (900, 1600, 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (1280, 720))
    for i in range(int(seconds * fps)):
        x, y = (i * 3) % 300, (i * 2) % 160
        writer.write(np.ascontiguousarray(base[y : y + 720, x : x + 1280]))
    writer.release()


class Stepped:
    """A clock for the video file: each grab is the next frame, as from a camera."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def per_frame(source: FrameSource, frames: int, quality: int) -> tuple[list[float], list[int]]:
    """CPU ms and JPEG bytes of each frame through the sender's pipeline."""
    cpu_ms: list[float] = []
    sizes: list[int] = []
    source.grab()  # warm up (first-call allocations, SHM set-up)
    for _ in range(frames):
        start = time.process_time()
        frame = source.grab()
        assert frame is not None
        grey_thumbnail(frame)
        encoded = prepare(frame, max_side=MAX_SIDE, quality=quality)
        cpu_ms.append((time.process_time() - start) * 1000)
        sizes.append(len(encoded.data))
    return cpu_ms, sizes


def report(label: str, cpu_ms: list[float], sizes: list[int], size: str) -> None:
    median = statistics.median(cpu_ms)
    p95 = sorted(cpu_ms)[int(0.95 * (len(cpu_ms) - 1))]
    print(
        f"{label:<28} {size:>9}  CPU/frame median {median:6.1f} ms  p95 {p95:6.1f} ms  "
        f"= {median / 10:5.2f} % of a core at 1 fps  JPEG {statistics.mean(sizes) / 1000:6.1f} kB"
        f" (min {min(sizes) / 1000:.1f}, max {max(sizes) / 1000:.1f})"
    )


def mosaic(painter: Painter, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for row in range(0, 768, 48):
        for col in range(0, 1024, 64):
            red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
            painter.window("tile", (col, row, 60, 44), (red, green, blue))


async def idle_screen(display: str, seconds: float) -> None:
    sent = 0

    async def send(data: bytes, mime: str) -> None:
        nonlocal sent
        sent += 1

    sender = FrameSender(ScreenSource("1", display=display), send, FramePolicy(fps=1.0))
    cpu0, wall0 = time.process_time(), time.monotonic()
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(seconds)
    sender.stop()
    await task
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    stats = sender.stats
    print(
        f"idle screen {seconds:.0f} s at 1 fps: grabbed {stats.grabbed}, sent {stats.sent}, "
        f"skipped {stats.skipped} ({stats.bytes_sent / 1000:.1f} kB sent); process CPU "
        f"{cpu * 1000:.0f} ms = {100 * cpu / wall:.2f} % of a core "
        f"({cpu * 1000 / max(stats.grabbed, 1):.1f} ms per skipped grab)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames measured per source")
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY)
    args = parser.parse_args()
    print(f"JPEG quality {args.quality}, frames fitted to {MAX_SIDE} px, {args.frames} frames each")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "camera.avi"
        write_video(video, seconds=args.frames / 30.0 + 1)
        camera = CameraSource(video, clock=Stepped(1 / 30.0))
        try:
            cpu_ms, sizes = per_frame(camera, args.frames, args.quality)
        finally:
            camera.close()
        report("camera (video file 1280x720)", cpu_ms, sizes, "768x432")
    with running_xvfb() as display:
        painter = Painter(display)
        try:
            painter.fill((40, 40, 40))
            mosaic(painter, 1)
            screen = ScreenSource("1", display=display)
            try:
                cpu_ms, sizes = per_frame(screen, args.frames, args.quality)
            finally:
                screen.close()
            report("screen (Xvfb 1024x768)", cpu_ms, sizes, "768x576")
            asyncio.run(idle_screen(display, args.idle_s))
        finally:
            painter.close()


if __name__ == "__main__":
    main()
