"""A private PulseAudio daemon with virtual devices, for tests and benchmarks on headless machines.

Follows ../shared/AUDIO-TESTING.md: a user-mode daemon in a temp dir (no D-Bus, no systemd),
a 24 kHz null sink as the speaker (recorded through a remap of its monitor; a 48 kHz one
beside it), a 16 kHz null sink as the mic feed whose monitor, remapped, is the microphone,
keepalive loopbacks so the idle null sinks do not fall back to 2 s blocks, and named ALSA
devices (``ALSA_CONFIG_PATH``) so a process can select them by name. The daemon is stopped
by its own PID only.

Reuse::

    with PulseServer.start(tmp_path) as pulse:
        env = {**os.environ, **pulse.client_env()}    # for a subprocess
        pulse.apply_to_os_environ()                     # for this process, before PortAudio starts
        rec = pulse.record_speaker()                    # what was played
        pulse.play_into_mic(wav_path)                   # what the mic hears
        audio = rec.stop()

Run ``python -m tests.audio.pulse`` to start one by hand; it prints the environment to export.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

SPEAKER_SINK = "adkv_speaker"  # where the app plays (24 kHz)
SPEAKER_REC = "adkv_speaker_rec"  # remap of the speaker monitor: what was played
SPEAKER48_SINK = "adkv_speaker48"  # a 48 kHz speaker: the app resamples, PulseAudio does not
SPEAKER48_REC = "adkv_speaker48_rec"
FEED_SINK = "adkv_micfeed"  # tests play into this (16 kHz)
MIC_SOURCE = "adkv_mic"  # remap of the feed monitor: the microphone
SPEAKER_RATE = 24_000
MIC_RATE = 16_000
READY_TIMEOUT_S = 5.0


def pulseaudio_available() -> bool:
    return all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "paplay", "parec"))


def _daemon_script(socket: Path) -> str:
    return "\n".join(
        [
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}",
            f"load-module module-null-sink sink_name={SPEAKER_SINK} rate={SPEAKER_RATE}"
            " channels=1 format=s16le sink_properties=device.description=adkvoice-speaker",
            f"load-module module-remap-source source_name={SPEAKER_REC}"
            f" master={SPEAKER_SINK}.monitor channels=1"
            " source_properties=device.description=adkvoice-speaker-recorder",
            f"load-module module-null-sink sink_name={SPEAKER48_SINK} rate=48000"
            " channels=1 format=s16le sink_properties=device.description=adkvoice-speaker-48k",
            f"load-module module-remap-source source_name={SPEAKER48_REC}"
            f" master={SPEAKER48_SINK}.monitor channels=1"
            " source_properties=device.description=adkvoice-speaker-48k-recorder",
            f"load-module module-null-sink sink_name={FEED_SINK} rate={MIC_RATE}"
            " channels=1 format=s16le sink_properties=device.description=adkvoice-mic-feed",
            f"load-module module-remap-source source_name={MIC_SOURCE}"
            f" master={FEED_SINK}.monitor channels=1"
            " source_properties=device.description=adkvoice-mic",
            f"set-default-sink {SPEAKER_SINK}",
            f"set-default-source {MIC_SOURCE}",
            # Keepalive: an idle null sink renders 2 s blocks and starves new streams.
            f"load-module module-null-source source_name=adkv_keepalive rate={MIC_RATE} channels=1",
            f"load-module module-loopback source=adkv_keepalive sink={SPEAKER_SINK}"
            " latency_msec=200 source_dont_move=true sink_dont_move=true",
            f"load-module module-loopback source=adkv_keepalive sink={FEED_SINK}"
            " latency_msec=200 source_dont_move=true sink_dont_move=true",
            f"load-module module-loopback source=adkv_keepalive sink={SPEAKER48_SINK}"
            " latency_msec=200 source_dont_move=true sink_dont_move=true",
            "",
        ]
    )


def _alsa_config() -> str:
    # Named ALSA PCMs: PortAudio lists these by name, so tests never depend on indices.
    entries = [
        (SPEAKER_SINK, SPEAKER_SINK),
        (MIC_SOURCE, MIC_SOURCE),
        (SPEAKER_REC, SPEAKER_REC),
        (SPEAKER48_SINK, SPEAKER48_SINK),
        (SPEAKER48_REC, SPEAKER48_REC),
    ]
    return "".join(
        f'pcm.{name} {{\n    type pulse\n    device "{device}"\n}}\n' for name, device in entries
    )


@dataclass
class Recording:
    """A running ``parec`` of the speaker monitor; `stop()` returns the int16 samples."""

    proc: subprocess.Popen[bytes]
    path: Path
    rate: int
    started_at: float

    def stop(self, *, settle_s: float = 0.15) -> np.ndarray:
        time.sleep(settle_s)  # let the last block reach the file
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        data = self.path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").copy()


@dataclass
class PulseServer:
    root: Path
    proc: subprocess.Popen[bytes]
    socket: Path
    cookie: Path
    alsa_config: Path
    _owns_root: bool = False
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # ---- lifecycle -------------------------------------------------------------------

    @classmethod
    def start(cls, root: Path | None = None) -> PulseServer:
        owns = root is None
        base = Path(tempfile.mkdtemp(prefix="adkv-pulse-")) if root is None else root
        for sub in ("home", "config", "runtime"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "runtime").chmod(0o700)
        socket = base / "runtime" / "pulse.sock"
        cookie = base / "cookie"
        script = base / "daemon.pa"
        script.write_text(_daemon_script(socket))
        alsa = base / "alsa-extra.conf"
        alsa.write_text(_alsa_config())
        log = (base / "pulseaudio.log").open("wb")
        proc = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "--system=false",
                "--exit-idle-time=-1",
                "--realtime=no",
                "--high-priority=no",
                "--use-pid-file=no",
                "--log-target=stderr",
                "-n",
                "-F",
                str(script),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=cls._daemon_env(base, cookie),
            start_new_session=True,  # setsid: our Ctrl-C does not reach it
        )
        log.close()
        server = cls(base, proc, socket, cookie, alsa, owns)
        try:
            server._wait_ready()
            for sink in (SPEAKER_SINK, FEED_SINK, SPEAKER48_SINK):
                server.pactl("suspend-sink", sink, "1")
                server.pactl("suspend-sink", sink, "0")
        except BaseException:
            server.stop()
            raise
        return server

    @staticmethod
    def _daemon_env(base: Path, cookie: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env.update(
            HOME=str(base / "home"),
            XDG_CONFIG_HOME=str(base / "config"),
            XDG_RUNTIME_DIR=str(base / "runtime"),
            PULSE_COOKIE=str(cookie),
        )
        return env

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited early; see {self.root / 'pulseaudio.log'}")
            probe = subprocess.run(
                ["pactl", "info"],
                env=self.client_env(os.environ),
                capture_output=True,
                timeout=5,
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"pulseaudio not ready in {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        for child in self._children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=5)
        self._children.clear()
        if self.proc.poll() is None:
            self.proc.terminate()  # our own PID only
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PulseServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- clients ---------------------------------------------------------------------

    def client_env(self, base: os._Environ[str] | dict[str, str] | None = None) -> dict[str, str]:
        """Variables that point libpulse and ALSA clients at this daemon (merged into `base`)."""
        env = dict(base) if base is not None else {}
        env.update(
            PULSE_SERVER=f"unix:{self.socket}",
            PULSE_COOKIE=str(self.cookie),
            ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{self.alsa_config}",
        )
        return env

    def apply_to_os_environ(self) -> None:
        """Point this process at the daemon; PortAudio must be (re)initialized afterwards."""
        os.environ.update(self.client_env())

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            ["pactl", *args],
            env=self.client_env(os.environ),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout

    def play_into_mic(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing a WAV into the mic feed; returns the `paplay` process."""
        proc = subprocess.Popen(
            ["paplay", f"--device={FEED_SINK}", str(wav)],
            env=self.client_env(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._children.append(proc)
        return proc

    def record_speaker(self, path: Path | None = None, *, rate: int = SPEAKER_RATE) -> Recording:
        """Record what is played on the speaker: raw s16le mono at 24 kHz, or the 48 kHz
        speaker (`SPEAKER48_SINK`) with `rate=48000`."""
        source = SPEAKER48_REC if rate == 48_000 else SPEAKER_REC
        path = path or Path(tempfile.mkstemp(prefix="speaker-", suffix=".raw", dir=self.root)[1])
        proc = subprocess.Popen(
            [
                "parec",
                f"--device={source}",
                f"--rate={rate}",
                "--format=s16le",
                "--channels=1",
                "--latency-msec=20",
                "--raw",
                str(path),
            ],
            env=self.client_env(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._children.append(proc)
        # The keepalive feeds the monitor continuously: once the file grows, it records.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while path.stat().st_size == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("parec did not start recording the speaker")
            time.sleep(0.01)
        return Recording(proc, path, rate, time.monotonic())


def reinitialize_portaudio() -> None:
    """Make an already-imported sounddevice re-enumerate devices (pitfall 4 in the notes)."""
    if "sounddevice" not in sys.modules:
        return
    sd = sys.modules["sounddevice"]
    # Private, but it is exactly sounddevice's own init/exit pair; tests only.
    sd._terminate()
    sd._initialize()


@contextlib.contextmanager
def running(root: Path | None = None) -> Iterator[PulseServer]:
    server = PulseServer.start(root)
    try:
        yield server
    finally:
        server.stop()


def _main() -> None:
    with running() as server:
        for key, value in server.client_env().items():
            print(f"export {key}={value}")
        print(f"# pulseaudio pid {server.proc.pid}; Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.proc.wait()


if __name__ == "__main__":
    _main()
