"""schemathesis against the live server's /api/openapi: no 5xx, and every answer as the document says.

The document is loaded when the tests are collected, from an app built in-process (the live server
starts later, as a fixture); ``test_the_live_document_is_the_one_tested`` checks that the live server
serves that very document, and every generated request goes to the live server.

Runs on ``small_api`` (hand-made data), where each what-if analysis the generated parameters ask for
takes milliseconds.  Checked on every request: no server error, a documented status code, content
type and headers, and a body that validates against the response schema.  Not checked:
``positive_data_acceptance`` (a bbox with minLat above maxLat, or partial_ratio above covered_ratio,
is schema-valid yet rightly refused: OpenAPI 3.0 cannot say those rules) and
``negative_data_rejection`` (``limit`` above the maximum is clamped, as OGC API allows, and a filter
value outside a field's choices simply matches nothing).
"""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server import create_app, openapi
from server.config import SETTINGS

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CALL_TIMEOUT_S = 120  # a recommendation on a loaded machine: schemathesis's own 10 s is no bound of the app's
QUICK = settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def _document() -> dict:
    with tempfile.TemporaryDirectory(prefix="gridmap-openapi-") as data_dir:
        max_items = next(s.default for s in SETTINGS if s.name == "MAX_ITEMS")  # the live server's: no GRIDMAP_*
        app = create_app({"DATA_DIR": data_dir, "DEMO": False, "TESTING": True, "MAX_ITEMS": max_items})
        hidden = frozenset(app.config["RESTRICTED_FIELDS"])  # the document as the tests' anonymous reader gets it
        return openapi.document(app, "http://127.0.0.1/api", hidden)


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_live_document_is_the_one_tested(small_api):
    live = small_api.get("/api/openapi").json()
    assert live["servers"] == [{"url": small_api.api}]
    assert {**live, "servers": DOCUMENT["servers"]} == DOCUMENT


@schema.include(method="GET").parametrize()
@QUICK
def test_reads(case, small_api):
    case.call_and_validate(base_url=small_api.api, checks=CHECKS, timeout=CALL_TIMEOUT_S)


@schema.include(method=["POST", "PUT", "PATCH", "DELETE"]).parametrize()
@QUICK
def test_writes_with_an_editors_token(case, small_api):
    case.call_and_validate(base_url=small_api.api, headers={"Authorization": f"Bearer {small_api.token}"},
                           checks=CHECKS, timeout=CALL_TIMEOUT_S)
