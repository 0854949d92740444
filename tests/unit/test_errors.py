"""What users read when the model or the network fails."""

import ssl

import pytest
from google.genai import errors as genai_errors

from adkvoice.agents.loading import LoadedAgent, live_model_of
from adkvoice.backends.embedded import translate_exception
from adkvoice.errors import BackendError, ConnectionLostError, ModelRejectedError
from adkvoice.wire.close_codes import describe_close


def _live_close(code: int, reason: str) -> genai_errors.APIError:
    # How google-genai reports a Live close: the reason travels in `details`.
    try:
        genai_errors.APIError.raise_error(code, reason, None)
    except genai_errors.APIError as exc:
        return exc
    raise AssertionError("raise_error did not raise")


def test_rejected_model_names_the_model_and_the_fix() -> None:
    reason = (
        "models/gemini-1.0-pro is not found for API version v1alpha, or is not supported "
        "for bidiGenerateContent."
    )
    err = translate_exception(_live_close(1008, reason), "gemini-1.0-pro")
    assert isinstance(err, ModelRejectedError)
    assert "'gemini-1.0-pro'" in str(err)
    assert "--model" in str(err)
    assert ".." not in str(err)


@pytest.mark.parametrize(
    ("code", "reason", "kind", "words"),
    [
        (1011, "Internal error encountered.", ConnectionLostError, "internal error"),
        (1006, "abnormal closure [internal]", ConnectionLostError, "without a close frame"),
        (1007, "Request contains an invalid argument.", BackendError, "invalid"),
        (1000, "", BackendError, "normally"),
    ],
)
def test_close_codes_are_explained(
    code: int, reason: str, kind: type[BackendError], words: str
) -> None:
    err = translate_exception(_live_close(code, reason), "m")
    assert type(err) is kind
    assert words in str(err)
    assert f"close code {code}" in str(err)


def test_network_failures() -> None:
    refused = translate_exception(ConnectionRefusedError(111, "Connection refused"), "m")
    assert isinstance(refused, ConnectionLostError)
    assert "connection refused" in str(refused)
    tls = translate_exception(ssl.SSLCertVerificationError("certificate verify failed"), "m")
    assert "TLS" in str(tls)
    malformed = translate_exception(ValueError("Failed to parse response: b'{'"), "m")
    assert "malformed" in str(malformed)


def test_describe_close_without_a_code() -> None:
    assert describe_close(None, "bye") == "bye"
    assert describe_close(4000) == "unexpected close (close code 4000)"


@pytest.mark.parametrize("name", ["nonsense", "foo-live", "models/gemini-3.8-live"])
def test_a_model_adk_cannot_run_is_rejected_in_one_line(name: str) -> None:
    from google.adk.agents import Agent

    own = LoadedAgent(app_name="a", agent=Agent(name="a", model=name), app=None, source="a")
    for loaded, flag, what in ((own, None, "the agent's model"), (own, name, "--model")):
        with pytest.raises(ModelRejectedError) as caught:
            live_model_of(loaded, flag)
        line = str(caught.value)
        assert line.startswith(f"{what} {name!r} is not a model ADK can run; ")
        assert "gemini-3.8-live," in line
        assert "\n" not in line
        assert caught.value.exit_code == 7
    fine = LoadedAgent(app_name="a", agent=Agent(name="a", model="gemini-3.8-live"), app=None,
                       source="a")  # fmt: skip
    assert live_model_of(fine) == "gemini-3.8-live"
    assert live_model_of(fine, "gemini-9.0-live") == "gemini-9.0-live"  # a future name
