"""The scale-out deployment on loopback, as real processes: PostgreSQL, the Live API
emulator, `adkvoice serve` instances and nginx (with deploy/nginx.conf). Shared by the
tests in this directory and bench/scaleout_bench.py.

Everything binds 127.0.0.1 on a free port and keeps its files in a private directory;
every wait is bounded and every `stop` ends the process it started, by its id.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf"
# The addresses deploy/nginx.conf is written with; render_nginx_conf replaces them.
TEMPLATE_LISTEN = "127.0.0.1:8080"
TEMPLATE_UPSTREAMS = ("127.0.0.1:8001", "127.0.0.1:8002")
CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
    "ADKVOICE_SESSIONS",
    "ADKVOICE_TOKEN",
    "ADKVOICE_INSTANCE",
)
START_TIMEOUT_S = 60.0  # generous: a loaded 2-core machine imports ADK slowly
STOP_TIMEOUT_S = 15.0
PG_USER = "adkvoice"
PG_DATABASE = "adkvoice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, reader: threading.Thread | None = None
) -> None:
    """Signal `proc`, wait (bounded), then kill it; close its pipes once `reader` (the
    thread reading its stdout) has seen the end."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
    if reader is not None:
        reader.join(timeout=STOP_TIMEOUT_S)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def http_json(url: str, timeout_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a GET (error statuses included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_for(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[Any] | None, log: Path | None
) -> None:
    """Poll `ready()` until true; fail with the process's log if it exits or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(OSError, ValueError):
            if ready():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    state = f"exited {proc.returncode}" if proc is not None and proc.poll() is not None else ""
    raise RuntimeError(f"{what} did not start {state}\n{tail}")


def tool_available(name: str) -> bool:
    return shutil.which(name) is not None or Path("/usr/sbin", name).exists()


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else None


# ------------------------------------------------------------------------------ PostgreSQL


def _as_user(run_as: str | None) -> dict[str, Any]:
    """subprocess arguments that run a command as `run_as` (None: as ourselves)."""
    return {"user": run_as, "group": run_as, "extra_groups": []} if run_as else {}


@dataclass
class Postgres:
    """A private PostgreSQL: its own data directory, 127.0.0.1 on a free port, a password
    for TCP logins, and its Unix socket in its own directory. Run as the `postgres` system
    user when we are root (the server refuses to run as root)."""

    root: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes]
    bin_dir: Path
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def url_with(self, *, password: str | None = None, database: str | None = None) -> str:
        return (
            f"postgresql://{PG_USER}:{password or self.password}@127.0.0.1:{self.port}/"
            f"{database or PG_DATABASE}"
        )

    @classmethod
    def start(cls) -> Postgres:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt install postgresql)")
        run_as = "postgres" if os.geteuid() == 0 else None
        # Not under pytest's temporary directories: those are private to root, and the
        # server runs as another user.
        root = Path(tempfile.mkdtemp(prefix="adkvoice-pg-"))
        try:
            return cls._start_in(root, bin_dir, run_as)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _start_in(cls, root: Path, bin_dir: Path, run_as: str | None) -> Postgres:
        password = f"pw-{os.urandom(6).hex()}"
        (root / "password").write_text(password + "\n")
        (root / "socket").mkdir()
        if run_as is not None:
            for path in (root, root / "password", root / "socket"):
                shutil.chown(path, user=run_as, group=run_as)
        as_user = _as_user(run_as)
        log = root / "postgres.log"
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(root / "data"),
                "--username",
                PG_USER,
                "--pwfile",
                str(root / "password"),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",  # only our own socket directory reaches it
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            cwd=root,
            **as_user,
        )
        port = free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(root / "data"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(root / "socket"),
                    # A scratch database: durability is not what is tested.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=root,
                **as_user,
            )
        server = cls(root, port, password, proc, bin_dir, run_as)
        try:
            wait_for("PostgreSQL", server._accepts, proc, log)
            server.create_database(PG_DATABASE)
        except BaseException:
            stop_process(proc, signal.SIGINT)
            raise
        return server

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        subprocess.run(
            [str(self.bin_dir / "createdb"), *self._socket_args(), name],
            check=True,
            capture_output=True,
            timeout=30,
            **_as_user(self.run_as),
        )
        return self.url_with(database=name)

    def _socket_args(self) -> list[str]:
        return ["-h", str(self.root / "socket"), "-p", str(self.port), "-U", PG_USER]

    def _accepts(self) -> bool:
        done = subprocess.run(
            [str(self.bin_dir / "pg_isready"), *self._socket_args(), "-d", "postgres"],
            capture_output=True,
            timeout=10,
        )
        return done.returncode == 0

    def sql(self, statement: str) -> str:
        """Run one statement through psql (over the socket); its unaligned output."""
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        done = subprocess.run(
            [psql, *self._socket_args(), "-d", PG_DATABASE, "-At", "-c", statement],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------- emulator


@dataclass
class EmulatorProcess:
    """`adkvoice emulator --port 0`, and the environment that points ADK at it."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    reader: threading.Thread

    @classmethod
    def start(cls, log_dir: Path) -> EmulatorProcess:
        log = log_dir / "emulator.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "adkvoice", "emulator", "--port", "0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=clean_env(),
            )
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        env: dict[str, str] = {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while "SSL_CERT_FILE" not in env and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            if match := re.match(r"\s*export (\w+)=(.*)$", line):
                env[match.group(1)] = match.group(2)
        if "SSL_CERT_FILE" not in env:
            stop_process(proc, signal.SIGINT, reader)
            raise RuntimeError("the emulator did not start\n" + log.read_text(errors="replace"))
        return cls(proc, env, reader)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, self.reader)


def _pump_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


# ---------------------------------------------------------------------------------- serve


@dataclass
class ServeInstance:
    """`adkvoice serve --sessions postgresql://…` named by ADKVOICE_INSTANCE."""

    name: str
    port: int
    log: Path
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "adkvoice", "serve", "--port", str(self.port), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def wait_ready(self) -> None:
        def ready() -> bool:
            return http_json(f"{self.url}/readyz", timeout_s=2)[0] == 200

        wait_for(f"serve instance {self.name}", ready, self.proc, self.log)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def sessions(self) -> int:
        """Conversations this instance holds now (/readyz)."""
        return int(http_json(f"{self.url}/readyz")[1]["sessions"])

    def kill(self) -> None:
        """kill -9: no drain, no goodbye, as when a machine dies."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# ---------------------------------------------------------------------------------- nginx


def render_nginx_conf(listen_port: int, upstream_ports: tuple[int, int]) -> str:
    """deploy/nginx.conf with its addresses replaced by these ports."""
    text = NGINX_TEMPLATE.read_text()
    replacements = {TEMPLATE_LISTEN: listen_port}
    replacements |= {
        addr: port for addr, port in zip(TEMPLATE_UPSTREAMS, upstream_ports, strict=True)
    }
    for address, port in replacements.items():
        if text.count(address) != 1:
            raise RuntimeError(f"{NGINX_TEMPLATE} should name {address} exactly once")
        text = text.replace(address, f"127.0.0.1:{port}")
    return text


@dataclass
class Nginx:
    """nginx with deploy/nginx.conf, its prefix (pid, logs, temp files) in `prefix`."""

    prefix: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, session_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{session_id}"

    @classmethod
    def start(cls, prefix: Path, upstream_ports: tuple[int, int]) -> Nginx:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        prefix.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(render_nginx_conf(port, upstream_ports))
        with open(prefix / "stderr.log", "wb") as out:
            proc = subprocess.Popen(
                [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its workers are its children: on a failed stop, the group goes too.
                start_new_session=True,
            )
        server = cls(prefix, port, proc)

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        try:
            wait_for("nginx", ready, proc, prefix / "error.log")
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: master and workers
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT_S)


# ------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """Two serve instances sharing a token and a PostgreSQL store, the emulator, nginx."""

    root: Path
    postgres: Postgres
    emulator: EmulatorProcess | None
    emulator_env: dict[str, str]
    token: str
    instances: list[ServeInstance] = field(default_factory=list)
    nginx: Nginx | None = None

    @classmethod
    def start(
        cls,
        root: Path,
        postgres: Postgres,
        *,
        emulator_env: dict[str, str] | None = None,
        max_sessions: int = 32,
        log_level: str = "info",
    ) -> Stack:
        """Everything but PostgreSQL, which the caller starts and stops. The instances
        talk to `emulator_env`'s emulator, or to an `adkvoice emulator` started here."""
        root.mkdir(parents=True, exist_ok=True)
        stack: Stack | None = None
        try:
            emulator = None
            if emulator_env is None:
                emulator = EmulatorProcess.start(root)
                emulator_env = emulator.env
            token = f"tok-{os.urandom(8).hex()}"
            stack = cls(root, postgres, emulator, emulator_env, token)
            for name in ("a", "b"):
                env = clean_env(
                    {
                        **stack.emulator_env,
                        "ADKVOICE_INSTANCE": name,
                        "ADKVOICE_TOKEN": stack.token,
                        "XDG_DATA_HOME": str(root / f"data-{name}"),
                    }
                )
                args = [
                    "--backend",
                    "gemini",  # the emulator process, through the environment
                    "--sessions",
                    postgres.url,
                    "--max-sessions",
                    str(max_sessions),
                    "--log-level",
                    log_level,
                ]
                stack.instances.append(
                    ServeInstance(name, free_port(), root / f"serve-{name}.log", args, env)
                )
            for instance in stack.instances:  # both at once: they race to create tables
                instance.start()
            for instance in stack.instances:
                instance.wait_ready()
            ports = (stack.instances[0].port, stack.instances[1].port)
            stack.nginx = Nginx.start(root / "nginx", ports)
        except BaseException:
            if stack is not None:
                stack.stop()
            raise
        return stack

    def instance(self, name: str) -> ServeInstance:
        return next(i for i in self.instances if i.name == name)

    def ensure_running(self) -> None:
        """Restart any instance an earlier test killed or stopped."""
        stopped = [i for i in self.instances if not i.running]
        for instance in stopped:
            instance.start()
        for instance in stopped:
            instance.wait_ready()

    def serving(self, timeout_s: float = 10.0) -> ServeInstance:
        """The one instance that holds a conversation now (for a test with one)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = [i for i in self.instances if i.running and i.sessions() > 0]
            if len(busy) == 1:
                return busy[0]
            time.sleep(0.05)
        counts = {i.name: i.sessions() if i.running else None for i in self.instances}
        raise AssertionError(f"expected one instance with a conversation: {counts}")

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for instance in self.instances:
            instance.stop()
        if self.emulator is not None:
            self.emulator.stop()


# ------------------------------------------------------------------------------ a client


class ChatClient:
    """`adkvoice chat --text --url …` fed through a pipe; replies read with a timeout."""

    def __init__(self, url: str, *, token: str, log: Path, data_dir: Path) -> None:
        self.log = log
        self._stderr = open(log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "adkvoice", "chat", "--text", "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=clean_env({"ADKVOICE_TOKEN": token, "XDG_DATA_HOME": str(data_dir)}),
        )
        assert self.proc.stdout is not None
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(
            target=_pump_lines, args=(self.proc.stdout, self._lines), daemon=True
        )
        self._reader.start()

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout_s: float = 30.0) -> str:
        try:
            return self._lines.get(timeout=timeout_s).rstrip("\n")
        except queue.Empty:
            raise AssertionError(
                f"no reply within {timeout_s:.0f} s; client log:\n{self.stderr()}"
            ) from None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self, timeout_s: float = 30.0) -> int:
        """End of input: the client says goodbye and exits; its exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the client if it still runs (idempotent)."""
        stop_process(self.proc, signal.SIGKILL, self._reader)
        self._stderr.close()
