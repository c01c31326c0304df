"""The core's refusals declare their status, reason and headers as class keywords; a status
that is not a refusal's is refused when the class is defined."""

import pytest

from service.inference.errors import NotFound, Overloaded, ServiceError


class Unnamed(ServiceError):
    """No keywords: the base's status and reason."""


class Gone(NotFound, status_code=410, reason="gone"):
    """Only what it names changes."""


def test_a_refusal_carries_the_status_reason_and_headers_its_class_declares() -> None:
    overloaded = Overloaded("try again soon")
    assert (overloaded.status_code, overloaded.reason) == (503, "overloaded")
    assert overloaded.headers == {"Retry-After": "1"}
    assert (NotFound("no such model").status_code, NotFound("x").reason) == (404, "not_found")
    assert (Unnamed("x").status_code, Unnamed("x").reason, Unnamed("x").headers) == (
        400,
        "bad_request",
        {},
    )
    assert (Gone("x").status_code, Gone("x").reason) == (410, "gone")


def test_the_reason_given_to_one_refusal_wins_over_its_class_default() -> None:
    assert NotFound("no version 3", "unknown_version").reason == "unknown_version"
    assert NotFound("no model").reason == "not_found"


@pytest.mark.parametrize("status_code", [200, 302, 600])
def test_a_status_that_is_not_a_refusal_is_refused_at_definition(status_code: int) -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):

        class NotARefusal(ServiceError, status_code=status_code):
            """Never defined."""


def test_the_headers_a_class_declares_cannot_be_changed_through_an_instance() -> None:
    with pytest.raises(TypeError):
        Overloaded("x").headers["Retry-After"] = "60"  # type: ignore[index]
