"""Browser tests: headless Debian Chromium under Playwright against `adkvoice serve`."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the browser client in headless Chromium (Playwright)"
    )
