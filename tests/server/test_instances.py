"""Several instances on one store: what one stores, the others answer (on one data directory at their
next request, on PostGIS within a second: they hear of it by NOTIFY), and of many writers with the same
If-Match exactly one wins.  Each engine: two apps on one data directory (the embedded database), and two
apps on one PostGIS database."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from server import create_app
from tests.factories import six_grids
from tests.postgres import HEARD_WITHIN_S, heard_within

UPLOADERS = 50


@pytest.fixture(params=["sqlite", "postgis"])
def instances(request, tmp_path):
    """Two apps sharing one store, as two servers would (on one machine: one data directory too)."""
    config = {"DATA_DIR": str(tmp_path / "data"), "DEMO": False, "TESTING": True,
              "THREADS": UPLOADERS + 4, "JOB_QUEUE": UPLOADERS + 4}  # every uploader waits for its job
    if request.param == "postgis":
        config["DATABASE_URL"] = request.getfixturevalue("postgis_url")
    apps = [create_app(config), create_app(config)]
    yield apps
    for app in apps:
        app.extensions["gridmap"].jobs.close()


@pytest.fixture
def editor(instances) -> dict:
    return {"Authorization": "Bearer " + instances[0].extensions["gridmap_users"].add("editor1", "editor")[1]}


def upload(client, headers, grids, **extra_headers):
    data = {"file": (io.BytesIO(grids.to_json(drop_id=True).encode()), "grids.geojson")}
    return client.post("/api/uploads/grids", data=data, headers={**headers, **extra_headers},
                       content_type="multipart/form-data")


def populations(client) -> dict[str, int]:
    body = client.get("/api/collections/grids/items?limit=100").get_json(force=True)
    return {f["id"]: f["properties"]["population"] for f in body["features"]}


def test_each_instance_answers_what_the_other_stored(instances, editor):
    one, two = (app.test_client() for app in instances)
    bound = HEARD_WITHIN_S if instances[0].config["DATABASE_URL"] else 0  # one data directory: at once
    assert upload(one, editor, six_grids()).status_code == 201
    first = dict(zip(six_grids()["grid_id"], six_grids()["population"]))
    heard_within(bound, lambda: populations(two) == first)  # and now that page is cached
    assert upload(two, editor, six_grids().assign(population=7)).status_code == 201
    assert set(populations(two).values()) == {7}  # its own write: at once
    heard_within(bound, lambda: set(populations(one).values()) == {7})  # no stale page
    assert two.get("/healthz").get_json()["layers"]["grids"] == {"version": 2, "features": 6}
    assert one.get("/healthz").get_json()["layers"]["grids"] == {"version": 2, "features": 6}


def test_of_many_uploads_with_the_same_if_match_through_two_instances_exactly_one_is_stored(instances, editor):
    clients = [app.test_client() for app in instances]
    assert upload(clients[0], editor, six_grids()).status_code == 201

    def attempt(i: int) -> int:
        grids = six_grids().assign(population=1000 + i)
        return upload(clients[i % 2], editor, grids, **{"If-Match": '"1"'}).status_code

    with ThreadPoolExecutor(UPLOADERS) as pool:
        statuses = list(pool.map(attempt, range(UPLOADERS)))
    assert sorted(statuses) == [201] + [412] * (UPLOADERS - 1)
    versions = clients[1].get("/api/collections/grids/versions").get_json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert len(set(populations(clients[0]).values())) == 1  # one upload's grids, whole
