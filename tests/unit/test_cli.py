"""The CLI through Typer's runner: flags, help, and one-line errors with exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adkvoice import __version__
from adkvoice.cli import app

runner = CliRunner()

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ADK_DISABLE_LOAD_DOTENV", "1")


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"adkvoice {__version__}"


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "chat" in result.stdout
    assert "emulator" in result.stdout


def test_help_and_version_do_not_import_adk() -> None:
    code = (
        "import sys\n"
        "from adkvoice.cli import app\n"
        "for argv in (['--help'], ['--version'], ['chat', '--help']):\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('google.adk', 'google.genai', 'numpy')\n"
        "heavy = [m for m in sys.modules if m.startswith(heavy)]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def _one_line_error(result: object) -> str:
    stderr = result.stderr  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_missing_agent_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", str(tmp_path / "nope"), "--text"])
    assert result.exit_code == 3
    assert "does not exist" in _one_line_error(result)


def test_directory_that_is_not_an_agent(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", str(tmp_path), "--text"])
    assert result.exit_code == 3
    assert "not an ADK agent directory" in _one_line_error(result)


def test_agent_without_root_agent(tmp_path: Path) -> None:
    agent = tmp_path / "lonely_agent"
    agent.mkdir()
    (agent / "__init__.py").write_text("from . import agent\n")
    (agent / "agent.py").write_text("x = 1\n")
    result = runner.invoke(app, ["chat", str(agent), "--text"])
    assert result.exit_code == 3
    assert "root_agent" in _one_line_error(result)


def test_agent_that_fails_to_import(tmp_path: Path) -> None:
    agent = tmp_path / "broken_agent"
    agent.mkdir()
    (agent / "__init__.py").write_text("from . import agent\n")
    (agent / "agent.py").write_text("import not_a_module_anywhere\n")
    result = runner.invoke(app, ["chat", str(agent), "--text"])
    assert result.exit_code == 3
    assert "not_a_module_anywhere" in _one_line_error(result)


def test_forced_gemini_without_credentials() -> None:
    result = runner.invoke(app, ["chat", "--text", "--backend", "gemini"], input="hi\n")
    assert result.exit_code == 2
    assert "GOOGLE_API_KEY" in _one_line_error(result)


def test_bad_flag_value() -> None:
    result = runner.invoke(app, ["chat", "--backend", "mars"])
    assert result.exit_code == 2
    assert "mars" in result.stderr


def test_header_flags_are_checked_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from adkvoice.cli_options import parse_headers

    assert parse_headers(["X-Api-Key: abc def", "Authorization:Bearer t"]) == (
        ("X-Api-Key", "abc def"),
        ("Authorization", "Bearer t"),
    )
    for bad, said in [
        ("no colon here", "form 'Name: value'"),
        ("Bad Name: x", "form 'Name: value'"),
        ("X-Empty:", "form 'Name: value'"),
        ("Host: evil.example", "set by the connection itself"),
        ("Sec-WebSocket-Protocol: x", "set by the connection itself"),
    ]:
        with pytest.raises(typer.Exit) as exited:
            parse_headers([bad])
        assert exited.value.exit_code == 2
        assert said in capsys.readouterr().err


def test_a_header_flag_names_its_credential_before_the_token() -> None:
    from adkvoice.backends.endpoints import auth_headers

    assert auth_headers("t") == {"Authorization": "Bearer t"}
    assert auth_headers("t", (("X-Key", "k"),)) == {"X-Key": "k", "Authorization": "Bearer t"}
    assert auth_headers("t", (("authorization", "Basic b"),)) == {"authorization": "Basic b"}


def test_a_header_without_a_url_is_a_mistake() -> None:
    result = CliRunner().invoke(app, ["chat", "--text", "-H", "X-Key: k"])
    assert result.exit_code == 2
    assert "--header is for a remote server: give --url too" in result.output


def test_a_protocol_without_a_url_is_a_mistake() -> None:
    result = CliRunner().invoke(app, ["chat", "--text", "--protocol", "seeds"])
    assert result.exit_code == 2
    assert "--protocol is for a remote server: give --url too" in result.output
