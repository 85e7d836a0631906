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


@pytest.mark.parametrize("query", ["level=city", "k=0", "k=many", "radius_community_m=-1", "district=nowhere"])
def test_bad_recommendation_requests(client, loaded, query):
    assert client.get(f"/api/recommendations?{query}").status_code == 400


def test_whatif_adds_proposed_centres_and_stores_nothing(client, loaded, store):
    proposal = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.515, 29.805]},
         "properties": {"level": "community"}}]}
    resp = client.post("/api/whatif?level=community", json=proposal)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["before"]["covered_population"] < body["after"]["covered_population"] == 1500
    rows = {r["community"]: r for r in body["rows"]}
    assert rows["白云社区"]["missing_center"] == 0  # the proposed centre stands in it
    assert store.current("centers").features == 1


@pytest.mark.parametrize("payload", [None, {"type": "Feature"}, {"type": "FeatureCollection", "features": []},
                                     {"type": "FeatureCollection", "features": [
                                         {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
                                          "properties": {"level": "city"}}]}])
def test_bad_whatif_requests(client, loaded, payload):
    assert client.post("/api/whatif", json=payload).status_code == 400


def test_recommendations_csv_cells_cannot_start_a_formula(client, store):
    layer = grids([grid_row("g00"), grid_row("g10", community="=HYPERLINK(1)", street="@SUM(1)", population=500)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    [row] = list(csv.DictReader(io.StringIO(client.get("/api/recommendations?k=1&f=csv").data.decode("utf-8-sig"))))
    assert (row["community"], row["street"]) == ("'=HYPERLINK(1)", "'@SUM(1)")
    assert float(row["lon"]) > 0 and not row["new_population"].startswith("'")
