"""The ``return_url`` of ``POST /v1/connections/start``: under one of the application's allowed
prefixes, where the browser will actually go (pure checks, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chronapilot.api.consent import check_return_url
from chronapilot.api.errors import ApiError
from chronapilot.common.errors import InvalidRequest
from chronapilot.common.models import Application
from chronapilot.common.tenancy import validate_prefix

APP = Application(
    id="app_1",
    name="app",
    return_url_prefixes=["https://allowed.host/cb/"],
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.host/cb/../../other",
        "https://allowed.host/cb/..",
        "https://allowed.host/cb/./done",
        "https://allowed.host/cb/%2e%2e/%2e%2e/other",
        "https://allowed.host/cb/%2E%2E/other",
        "https://allowed.host/cb/.%2e/other",
        "https://allowed.host/cb/%252e%252e/other",
        "https://allowed.host/cb/..%2fother",
        "https://allowed.host/cb/..\\..\\other",
        "https://allowed.host/cb/done/../../other?x=1",
    ],
)
def test_a_return_url_with_dot_segments_is_refused(url):
    with pytest.raises(ApiError) as caught:
        check_return_url(url, APP)
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "parameter_invalid",
        "return_url",
    )
    assert "'..' path segments" in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.host/cb/done?from=test",
        "https://allowed.host/cb/..done/x",
        "https://allowed.host/cb/v1.2/done",
        "https://allowed.host/cb/done?next=../x",
    ],
)
def test_a_return_url_under_the_prefix_with_dots_in_names_is_accepted(url):
    assert check_return_url(url, APP) == url


def test_an_allowed_prefix_with_dot_segments_is_refused():
    with pytest.raises(InvalidRequest):
        validate_prefix("https://allowed.host/cb/../")
    assert validate_prefix("https://allowed.host/cb/") == "https://allowed.host/cb/"
