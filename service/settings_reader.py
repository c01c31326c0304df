"""Reading ``Settings`` for a command: whatever is wrong becomes one line naming the variable."""

import re

from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.settings import Settings

ENVIRONMENT_PREFIX = "MNIST_"
# pydantic-settings names the field only in its message: 'error parsing value for field "x" ...'.
UNPARSABLE_FIELD = re.compile(r'field "(\w+)"')
# A check across settings names the fields in its message: ``api_keys_file``, ``max_image_bytes``.
FIELD_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


class InvalidSettings(ValueError):
    """Settings the service cannot start with; the message is one line naming each variable."""


def read_settings(**overrides: object) -> Settings:
    """``Settings`` from the environment, ``overrides`` (command-line flags) winning; whatever
    is wrong becomes one ``InvalidSettings`` line, e.g. ``MNIST_PORT: Input should be ...``."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = [_describe_problem(detail["loc"], detail["msg"]) for detail in error.errors()]
        raise InvalidSettings("; ".join(problems)) from None
    except SettingsError as error:
        # Lists (MNIST_API_KEYS, MNIST_CORS_ORIGINS) are JSON, which pydantic-settings parses
        # before any validation.
        found = UNPARSABLE_FIELD.search(str(error))
        name = f"{ENVIRONMENT_PREFIX}{found.group(1).upper()}" if found else "a setting"
        # Worded as h20a's check of the same error (tests/service/test_safe_defaults.py).
        raise InvalidSettings(
            f'{name} is not valid JSON; give a list as JSON, such as ["a", "b"]'
        ) from None


def _describe_problem(location: tuple[int | str, ...], message: str) -> str:
    """``MNIST_PORT: Input should be ...``; a check across settings names the fields itself."""
    message = message.removeprefix("Value error, ")
    if not location:
        return FIELD_NAME.sub(lambda found: _variable(found.group()), message)
    name = _variable(str(location[0]))
    return ".".join([name, *(str(part) for part in location[1:])]) + f": {message}"


def _variable(field_name: str) -> str:
    """``api_keys`` is set as ``MNIST_API_KEYS``; other words are left as they are."""
    if field_name not in Settings.model_fields:
        return field_name
    return f"{ENVIRONMENT_PREFIX}{field_name.upper()}"
