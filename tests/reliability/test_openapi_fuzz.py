"""schemathesis against the app's own OpenAPI document: whatever it generates, valid or not, is
answered without a 5xx and with a status, content type and body that the document declares.
"""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from service.rest.app import create_app
from service.settings import Settings
from tests.support.models import write_model

# schemathesis 4 builds its tests at collection time, before fixtures exist (its fixture-based
# loader fails on pytest 9), so the tiny model goes to a directory removed when Python exits.
MODEL_DIRECTORY = tempfile.TemporaryDirectory(prefix="mnist-openapi-")
APP = create_app(Settings(model_path=write_model(Path(MODEL_DIRECTORY.name)), access_log=False))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    # A schema-valid body can still be refused for what it holds (a PNG of 20000x1 pixels is a
    # valid "binary" string), so "valid data is accepted" does not apply to an image API.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
