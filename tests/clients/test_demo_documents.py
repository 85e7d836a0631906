"""The Ningbo demo, served: every collection's features and documents are what /api/openapi says.

schemathesis runs on hand-made data (test_schemathesis.py); this checks the real scale and the real
names — 8,500 grids, 2,500 centres, gaps and units computed by the analysis — against the same schemas.
"""

from __future__ import annotations

import pytest
from openapi_schema_validator import OAS30Validator

COLLECTIONS = ["grids", "centers", "districts", "roads", "streets", "communities", "coverage", "gaps"]


@pytest.fixture(scope="module")
def document(demo_api) -> dict:
    return demo_api.get("/api/openapi").json()


def schema_of(document: dict, path: str, media_type: str) -> OAS30Validator:
    schema = document["paths"][path]["get"]["responses"]["200"]["content"][media_type]["schema"]
    return OAS30Validator({**schema, "components": document["components"]})


@pytest.mark.parametrize("cid", COLLECTIONS)
def test_every_feature_conforms(demo_api, document, cid):
    body = demo_api.get(f"/api/collections/{cid}/items", params={"limit": 10_000}).json()
    # a page holds every feature, up to the page limit (the demo's 26,272 roads are more)
    assert body["numberReturned"] == len(body["features"]) == min(body["numberMatched"], 10_000) > 0
    schema_of(document, f"/collections/{cid}/items", "application/geo+json").validate(body)
    one = demo_api.get(f"/api/collections/{cid}/items/{body['features'][-1]['id']}")
    assert one.status_code == 200
    schema_of(document, f"/collections/{cid}/items/{{featureId}}", "application/geo+json").validate(one.json())


def test_documents_conform(demo_api, document):
    for url, path in [("/api", "/"), ("/api/conformance", "/conformance"), ("/api/collections", "/collections"),
                      ("/api/summary?level=community", "/summary")]:
        schema_of(document, path, "application/json").validate(demo_api.get(url).json())
