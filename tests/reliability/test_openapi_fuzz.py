"""schemathesis against the app's own OpenAPI document: whatever it generates, valid or not, is
answered without a 5xx and with a status, content type and body that the document declares.
"""

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks, positive_data_acceptance

from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.models import write_model

# schemathesis 4 builds its tests at collection time, before fixtures exist (its fixture-based
# loader fails on pytest 9), so the tiny model goes to a directory removed when Python exits.
MODEL_DIRECTORY = tempfile.TemporaryDirectory(prefix="mnist-openapi-")
APP = create_rest_app(
    Settings(model_path=write_model(Path(MODEL_DIRECTORY.name)), access_log=False)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
load_all_checks()


# Every check schemathesis has (its CLI's ``--checks all``) but one: "schema-valid data is
# accepted" (positive_data_acceptance) cannot hold for refusals that no schema can express: a
# "binary" string that is not a decodable image (415/400), a PNG of 20000x1 pixels (413), or
# tensor ``data`` whose count disagrees with its ``shape`` (400). Everything a schema can say,
# it says: an empty form is schema-invalid (one of ``file``/``files`` is required) and refused.
CHECKS_RUN = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS_RUN)


def test_an_empty_form_is_what_the_schema_calls_invalid() -> None:
    body = schema["/predict"]["POST"].definition.raw["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["anyOf"] == [{"required": ["file"]}, {"required": ["files"]}]
    infer = schema["/v2/models/{model_name}/infer"]["POST"].definition.raw["requestBody"]
    assert list(infer["content"]) == ["application/json"]  # the only type it takes
