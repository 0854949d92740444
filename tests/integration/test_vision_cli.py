"""Showing the agent pictures from the command line, against the emulator with no
credentials: `talk --screen` on a private Xvfb screen (speech from a WAV file, the
speaker a PulseAudio null sink), `/image` and `--image` in piped and interactive chat,
and the one-line errors (a bad region, a missing file, no vision extra, a transport
without images).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio.pulse import PulseServer, pulseaudio_available

from .conftest import RunCli, clean_env
from .xvfb_support import Painter, running_xvfb

pytestmark = pytest.mark.integration

RED = (255, 0, 0)
RED_ANSWER = re.compile(r"I see 1 frame\(s\), 768×432, mostly red \(#f[0-9a-f]0[0-9a-f]0[0-9a-f]\)")
NO_EXTRA = "needs the vision extra: pip install 'adkvoice[vision]'"


@pytest.fixture
def red_png(tmp_path: Path) -> Path:
    """A 1280x720 red PNG: sent fitted to 768x432."""
    cv2 = pytest.importorskip("cv2", reason="the vision extra is not installed")
    import numpy as np

    picture = np.zeros((720, 1280, 3), dtype=np.uint8)
    picture[:, :] = (0, 0, 255)  # BGR
    path = tmp_path / "red.png"
    assert cv2.imwrite(str(path), picture)
    return path


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# -- chat ------------------------------------------------------------------------------------
def test_piped_image_command_reaches_the_model(run_cli: RunCli, red_png: Path) -> None:
    result = run_cli(
        ["chat", "--text", "--sessions", "memory"], stdin="/image red.png\nwhat do you see?\n"
    )
    assert result.returncode == 0, result.stderr
    assert RED_ANSWER.search(result.stdout), result.stdout
    assert len(result.stdout.splitlines()) == 1  # the command is not a turn
    assert re.search(r"^image red\.png sent \(768×432, \d+ kB\)$", result.stderr, re.M)


def test_image_flag_goes_with_the_first_turn(run_cli: RunCli, red_png: Path) -> None:
    result = run_cli(
        ["chat", "--text", "--sessions", "memory", "--image", str(red_png)],
        stdin="what do you see?\nwhat do you see?\n",
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert RED_ANSWER.search(first), first
    assert RED_ANSWER.search(second), second  # sent once: still one frame


def test_json_output_has_the_image_sent_event(run_cli: RunCli, red_png: Path) -> None:
    result = run_cli(
        ["chat", "--text", "--json", "--sessions", "memory"],
        stdin="/image red.png\nwhat do you see?\n",
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    sent = events[kinds.index("image_sent")]
    assert kinds.index("image_sent") < kinds.index("user_text")
    assert sent["source"] == "image red.png"
    assert (sent["width"], sent["height"], sent["stream"]) == (768, 432, False)
    assert sent["mime_type"] == "image/jpeg"
    assert sent["bytes"] > 0


def test_piped_screen_command_reaches_the_model(run_cli: RunCli) -> None:
    pytest.importorskip("cv2", reason="the vision extra is not installed")
    pytest.importorskip("mss", reason="the vision extra is not installed")
    with running_xvfb() as display:
        painter = Painter(display)
        painter.fill(RED)
        try:
            result = run_cli(
                ["chat", "--text", "--sessions", "memory"],
                stdin="/screen\nwhat do you see?\n",
                env={"DISPLAY": display},
            )
        finally:
            painter.close()
    assert result.returncode == 0, result.stderr
    assert re.search(r"^screen 1 sent \(768×576, \d+ kB\)$", result.stderr, re.M), result.stderr
    assert "I see 1 frame(s), 768×576, mostly red (#f" in result.stdout, result.stdout


def test_a_bad_image_command_is_one_line_and_the_chat_goes_on(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--text", "--sessions", "memory"],
        stdin="/image missing.png\n/image\nwhat do you see?\n",
    )
    assert result.returncode == 0, result.stderr
    assert "image missing.png: no such file\n" in result.stderr
    assert "/image needs a file: /image PATH\n" in result.stderr
    assert "no image or video frame has reached me" in result.stdout


def test_a_missing_image_file_is_one_line(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text", "--image", "missing.png"], stdin="hi\n")
    assert result.returncode == 2
    assert one_line(result.stderr) == "adkvoice: image missing.png: no such file"


def test_a_transport_without_images_is_one_line(
    run_cli: RunCli, red_png: Path, tmp_path: Path
) -> None:
    """The sample's plain protocol has no image message: refused once connected (whether
    a server speaks adkvoice.v1 is known only after the handshake), with exit code 2."""
    from .test_remote_cli import _free_port, _serve

    port = _free_port()
    with _serve(port, tmp_path / "sessions.db"):
        url = f"ws://127.0.0.1:{port}/ws/pictures"
        plain = run_cli(
            ["chat", "--text", "--url", url, "--protocol", "seeds", "--image", str(red_png)],
            stdin="what do you see?\n",
        )
        v1 = run_cli(
            ["chat", "--text", "--url", url, "--image", str(red_png)], stdin="what do you see?\n"
        )
    assert plain.returncode == 2, plain.stderr
    assert plain.stderr.splitlines()[-1].startswith("adkvoice: ")
    assert "carries no images: show them over adkvoice.v1" in plain.stderr.splitlines()[-1]
    assert v1.returncode == 0, v1.stderr
    assert RED_ANSWER.search(v1.stdout), v1.stdout


def _without_the_extra(
    args: list[str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process where OpenCV and mss cannot be imported."""
    code = (
        "import sys; sys.modules['cv2'] = None; sys.modules['mss'] = None; "
        "from adkvoice.cli import main; sys.argv = ['adkvoice', *sys.argv[1:]]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--text", "--image", "red.png"],
        ["talk", "--screen", "1"],
        ["talk", "--camera", "0"],
        ["talk", "--image", "red.png"],
    ],
)
def test_without_the_vision_extra_the_flags_say_what_to_install(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "red.png").write_bytes(b"not decoded: the extra is missing first")
    result = _without_the_extra(args, tmp_path, stdin="hi\n")
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("adkvoice: "), line
    assert line.endswith(NO_EXTRA), line


def test_image_command_without_the_extra_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(b"x")
    result = _without_the_extra(
        ["chat", "--text", "--sessions", "memory"], tmp_path, stdin="/image red.png\nhello\n"
    )
    assert result.returncode == 0, result.stderr
    assert f"showing an image {NO_EXTRA}\n" in result.stderr
    assert result.stdout.strip()  # the chat went on


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--screen", "0,0,0,10"], "adkvoice: --screen '0,0,0,10': the region is empty"),
        (
            ["--screen", "left"],
            "adkvoice: --screen 'left': use a monitor number (1), a region X,Y,W,H or window:TITLE",
        ),
        (["--camera", "clip.mp4"], "adkvoice: camera clip.mp4: no such video file"),
        (
            ["--camera", "0", "--screen", "1"],
            "adkvoice: show the agent a camera or the screen, not both: drop --camera or --screen",
        ),
        (["--fps", "0"], "adkvoice: --fps must be above 0 and at most 10, not 0"),
    ],
)
def test_bad_vision_flags_are_one_line(run_cli: RunCli, args: list[str], line: str) -> None:
    pytest.importorskip("cv2", reason="the vision extra is not installed")
    pytest.importorskip("mss", reason="the vision extra is not installed")
    result = run_cli(["talk", *args])
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == line


def _read_until(fd: int, pattern: str, timeout_s: float, seen: bytearray, start: int = 0) -> str:
    """What the terminal showed until `pattern` appears after offset `start` (fails after
    `timeout_s`). Bytes are kept and decoded whole: a read may split a character."""
    deadline = time.monotonic() + timeout_s
    while pattern not in (shown := seen.decode(errors="replace"))[start:]:
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} not shown: {shown!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    return seen.decode(errors="replace")


def test_interactive_image_command_reaches_the_model(tmp_path: Path, red_png: Path) -> None:
    controller, terminal = pty.openpty()
    env = clean_env({"COLUMNS": "200", "TERM": "dumb"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "chat", "--text", "--sessions", "memory"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        cwd=tmp_path,
    )
    seen = bytearray()
    try:
        _read_until(controller, "Ctrl-D to quit", 60, seen)
        os.write(controller, b"/image red.png\n")
        _read_until(controller, "goes with your next message", 30, seen)
        os.write(controller, b"what do you see?\n")
        shown = _read_until(controller, "mostly red", 60, seen)
        _read_until(controller, "you ›", 30, seen, start=len(shown))  # the next prompt
        os.write(controller, b"\x04")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
        os.close(terminal)
    assert re.search(r"image red\.png sent \(768×432, \d+ kB\)", shown), shown
    assert RED_ANSWER.search(shown), shown


# -- talk ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pulse_server() -> Iterator[PulseServer]:
    if not pulseaudio_available():
        pytest.skip("talk needs a speaker: install pulseaudio and pulseaudio-utils")
    with PulseServer.start() as server:
        yield server


@pytest.fixture
def question_wav(tmp_path: Path) -> Path:
    """ "What do you see?" spoken by espeak-ng, as 16 kHz mono, with silence after it."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to make test speech")
    raw, out = tmp_path / "raw.wav", tmp_path / "question.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "what do you see?"], check=True, timeout=30)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), "pad", "0.3", "1.5"],
        check=True,
        timeout=30,
    )
    return out


def test_talk_screen_is_seen_while_speaking(
    pulse_server: PulseServer, question_wav: Path, tmp_path: Path
) -> None:
    """A red 1024x768 Xvfb screen, shown while the user speaks: the emulator answers the
    spoken question with the frame's size and colour; --record keeps the JPEG sent."""
    pytest.importorskip("cv2", reason="the vision extra is not installed")
    pytest.importorskip("mss", reason="the vision extra is not installed")
    # Every reply says what the emulator saw, so the test does not hang on the
    # transcription of the question.
    rules = tmp_path / "rules.toml"
    rules.write_text('fallback = "{vision}"\n')
    with running_xvfb() as display:
        painter = Painter(display)
        painter.fill(RED)
        try:
            env = clean_env(pulse_server.client_env(os.environ))
            env.update(DISPLAY=display, COLUMNS="200")
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "adkvoice", "talk", "--screen", "1"),
                    *("--input-wav", str(question_wav), "--emulator-rules", str(rules)),
                    *("--sessions", "memory", "--record", str(tmp_path / "rec")),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                cwd=tmp_path,
            )
        finally:
            painter.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "showing the agent screen 1 while you speak" in result.stdout
    assert re.search(
        r"agent 🔊 I see \d frame\(s\), 768×576, mostly red \(#f[0-9a-f]0[0-9a-f]0[0-9a-f]\)",
        result.stdout,
    ), result.stdout
    (log,) = (tmp_path / "rec").glob("*.jsonl")
    sent = [e for e in map(json.loads, log.read_text().splitlines()) if e["type"] == "image_sent"]
    assert sent
    assert all(e["stream"] and e["source"] == "screen 1" for e in sent)
    assert [e["count"] for e in sent] == list(range(1, len(sent) + 1))
    first = tmp_path / "rec" / sent[0]["file"]
    assert first.read_bytes()[:2] == b"\xff\xd8"
    assert first.stat().st_size == sent[0]["bytes"]
