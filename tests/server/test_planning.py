import csv
import io

import pytest

from geodata.validate import validate
from tests.factories import center_row, centers, grid_row, grids


@pytest.fixture
def loaded(store):
    # g00 (1,000 people) has a community centre; g10 (500 people, 白云社区) next to it has none
    layer = grids([grid_row("g00"), grid_row("g10", community="白云社区", population=500)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    return store


def test_recommendations_as_geojson(client, loaded):
    resp = client.get("/api/recommendations?level=community&k=3")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    body = resp.get_json(force=True)
    assert body["solver"] == "greedy" and body["population"] == 1500
    [site] = body["features"]  # one site covers everything left; the other two would add nobody
    props = site["properties"]
    assert props["rank"] == 1 and props["community"] == "白云社区" and props["covered_share"] == 1.0
    assert body["covered_before"] + props["new_population"] == 1500
    assert "only 1" in body["reason"]


def test_recommendations_as_csv(client, loaded):
    resp = client.get("/api/recommendations?k=1&f=csv")
    assert resp.data.startswith(b"\xef\xbb\xbf")
    [row] = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert row["rank"] == "1" and 121.5 < float(row["lon"]) < 121.53


@pytest.mark.parametrize("query", ["level=city", "k=0", "k=many", "k=²", "k=51", "k=" + "9" * 5000,
                                   "radius_community_m=-1", "district=nowhere", "solver=best"])
def test_bad_recommendation_requests(client, loaded, signed_in, query):
    resp = client.get(f"/api/recommendations?{query}", headers=signed_in)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"


def test_what_if_radii_on_recommendations_need_a_signed_in_user_and_are_bounded(client, loaded, signed_in):
    resp = client.get("/api/recommendations?k=10&radius_community_m=50000")
    assert resp.status_code == 401 and "radius_community_m" in resp.get_json()["error"]["message"]
    resp = client.get("/api/recommendations?k=10&radius_community_m=50000", headers=signed_in)
    assert resp.status_code == 400 and "10000" in resp.get_json()["error"]["message"]
    assert client.get("/api/recommendations?k=10&radius_community_m=3000", headers=signed_in).status_code == 200
    assert client.get("/api/recommendations?k=10").status_code == 200  # the settings' radii: anyone


def test_what_ifs_are_public_when_the_setting_says_so(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "PUBLIC_WHATIF": True,
                      "MAX_RADIUS_M": 2000})
    try:
        resp = app.test_client().get("/api/summary?level=city&radius_community_m=2500")
        assert resp.status_code == 400 and "2000" in resp.get_json()["error"]["message"]  # bounded all the same
        assert app.test_client().get("/api/summary?level=city&radius_community_m=1500").status_code == 200
    finally:
        app.extensions["gridmap"].jobs.close()


def test_recommendations_are_computed_once_per_data_version_and_parameters(app, client, loaded, signed_in):
    jobs = app.extensions["gridmap"].jobs
    for _ in range(3):
        assert client.get("/api/recommendations?k=2").status_code == 200
    assert jobs.started == 1
    client.get("/api/recommendations?k=2&f=csv")  # the same sites, as CSV
    client.get("/api/recommendations?k=2&radius_community_m=1500", headers=signed_in)
    client.get("/api/recommendations?k=2&radius_community_m=1500", headers=signed_in)
    assert jobs.started == 2
    loaded.write("centers", loaded.read("centers").iloc[:0], author="t")  # new data: computed again
    client.get("/api/recommendations?k=2")
    assert jobs.started == 3


PROPOSAL = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.515, 29.805]},
     "properties": {"level": "community"}}]}


def test_whatif_adds_proposed_centres_and_stores_nothing(client, loaded, store, signed_in):
    resp = client.post("/api/whatif?level=community", json=PROPOSAL, headers=signed_in)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["before"]["covered_population"] < body["after"]["covered_population"] == 1500
    rows = {r["community"]: r for r in body["rows"]}
    assert rows["白云社区"]["missing_center"] == 0  # the proposed centre stands in it
    assert store.current("centers").features == 1


def test_recommendations_csv_cells_cannot_start_a_formula(client, store):
    layer = grids([grid_row("g00"), grid_row("g10", community="=HYPERLINK(1)", street="@SUM(1)", population=500)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    [row] = list(csv.DictReader(io.StringIO(client.get("/api/recommendations?k=1&f=csv").data.decode("utf-8-sig"))))
    assert (row["community"], row["street"]) == ("'=HYPERLINK(1)", "'@SUM(1)")
    assert float(row["lon"]) > 0 and not row["new_population"].startswith("'")


@pytest.mark.parametrize("payload", [None, {"type": "Feature"}, {"type": "FeatureCollection", "features": []},
                                     {"type": "FeatureCollection", "features": [
                                         {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
                                          "properties": {"level": "city"}}]}])
def test_bad_whatif_requests(client, loaded, signed_in, payload):
    assert client.post("/api/whatif", json=payload, headers=signed_in).status_code == 400


def test_whatif_needs_a_signed_in_user(client, loaded):
    resp = client.post("/api/whatif?level=community", json=PROPOSAL)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


@pytest.fixture
def half_covered(store):
    """A 0.02° grid of 1,000 people with a community centre at its corner (part of it covered), and a small
    grid of 500 people in another street."""
    from shapely import Point, box

    layer = grids([grid_row("big"), grid_row("far", street="南门街道", community="白云社区", population=500)],
                  [box(121.50, 29.80, 121.52, 29.82), box(121.60, 29.80, 121.61, 29.81)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")], [Point(121.50, 29.80)]),
                                    "centers").data, author="t")
    return store


def test_one_baseline_for_recommendations_summary_and_whatif(client, half_covered, signed_in):
    [city] = client.get("/api/summary?level=city").get_json()["rows"]
    body = client.get("/api/recommendations?k=2&solver=greedy").get_json(force=True)
    whatif = client.post("/api/whatif?level=city", json=PROPOSAL, headers=signed_in).get_json()
    assert 0 < body["covered_before"] == city["covered_population"] == whatif["before"]["covered_population"]
    sites = [f["properties"] for f in body["features"]]
    assert [s["cumulative_population"] for s in sites] == [
        body["covered_before"] + sum(s["new_population"] for s in sites[:i + 1]) for i in range(len(sites))]


def test_a_recommended_site_names_its_district_street_and_community(client, half_covered):
    body = client.get("/api/recommendations?k=2&solver=greedy").get_json(force=True)
    names = {(f["properties"]["district"], f["properties"]["street"], f["properties"]["community"])
             for f in body["features"]}
    assert ("海曙区", "南门街道", "白云社区") in names
    [row, *_] = list(csv.DictReader(io.StringIO(
        client.get("/api/recommendations?k=2&solver=greedy&f=csv").data.decode("utf-8-sig"))))
    assert {"district", "street", "community"} <= set(row)
