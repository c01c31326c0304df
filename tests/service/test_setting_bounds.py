"""The bounds of the duration and port settings, as a user meets them in the environment."""

import pytest
from pydantic import ValidationError

from service.settings import Settings

# (variable, refused, accepted): 0 where a wait may be none, the upper bound where there is one.
BOUNDS = [
    ("MNIST_GRPC_IDLE_SECONDS", "0", "0.5"),
    ("MNIST_GRPC_DRAIN_SECONDS", "-1", "0"),
    ("MNIST_INFLIGHT_WAIT_SECONDS", "60.5", "0"),
    ("MNIST_READ_TIMEOUT", "3601", "3600"),
    ("MNIST_LINGER_TIMEOUT", "0", "600"),
    ("MNIST_GRPC_PORT", "65536", "0"),
    ("MNIST_PORT", "-1", "65535"),
]


@pytest.mark.parametrize(("variable", "refused", "accepted"), BOUNDS)
def test_a_setting_outside_its_bounds_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, refused: str, accepted: str
) -> None:
    field = variable.removeprefix("MNIST_").lower()
    monkeypatch.setenv(variable, accepted)
    assert getattr(Settings(), field) == float(accepted)
    monkeypatch.setenv(variable, refused)
    with pytest.raises(ValidationError, match=field):
        Settings()
