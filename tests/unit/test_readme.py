"""The README's examples stay true."""

import re
from pathlib import Path

from adkvoice import errors
from adkvoice.emulator import parse_rules

README = Path(__file__).resolve().parents[2] / "README.md"


def test_rules_example_parses() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    rules = parse_rules(blocks[0], "README.md")
    assert [rule.call for rule in rules.rules] == ["get_weather", None, None]
    assert rules.rules[2].fault == "close-1011"


def test_readme_names_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "scripts/run chat --text" in text
    assert "scripts/test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_the_exit_code_table_lists_every_error_a_command_ends_with() -> None:
    table = re.search(r"## Exit codes\n(.*?)\n## ", README.read_text(), flags=re.DOTALL)
    assert table is not None
    listed = set(re.findall(r"^\| (\d+) \|", table.group(1), flags=re.MULTILINE))
    ending = (
        errors.ConfigError, errors.AgentLoadError, errors.AudioDeviceError,
        errors.BackendError, errors.ConnectionLostError, errors.ModelRejectedError,
        errors.TurnTimeoutError, errors.EmulatorError, errors.StoreError,
    )  # fmt: skip
    assert {str(error.exit_code) for error in ending} <= listed
