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
    assert body["reason"].startswith("只有 1 个选址能增加覆盖")  # in the reader's language: Chinese by default
    english = client.get("/api/recommendations?level=community&k=3&lang=en").get_json(force=True)
    assert english["reason"] == "only 1 site adds coverage: every other candidate would cover nobody new"


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


def _square_at(col: int):
    from tests.factories import square

    return square(col, 0)


def _middle(col: int) -> list[float]:
    from tests.factories import STEP, X0, Y0

    return [X0 + STEP * col + STEP / 2, Y0 + STEP / 2]


@pytest.fixture
def two_districts(store):
    """One city, two districts; 0.01° grids (about 970 × 1,110 m) in one row, by column:

        col  district  street    community  people  centre
        0    海曙区    月湖街道  青石社区    1,000   community, in its middle -> covered
        3    海曙区    月湖街道  白云社区      400   none
        10   海曙区    南门街道  南门社区      600   none
        20   江北区    甬江街道  江边社区    1,000   none

    A district centre (5 km) in the middle of column 3 covers it whole and reaches column 0 (already
    covered), not column 10 (6.3 km away); a street centre (2.5 km) in the middle of column 20 covers it
    whole (its corners are 740 m away) and nothing else."""
    from shapely import Point

    rows = [grid_row("a1", city="宁波市"), grid_row("a2", city="宁波市", community="白云社区", population=400),
            grid_row("a3", city="宁波市", street="南门街道", community="南门社区", population=600),
            grid_row("b1", city="宁波市", district="江北区", street="甬江街道", community="江边社区")]
    layer = grids(rows, [_square_at(col) for col in (0, 3, 10, 20)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")], [Point(*_middle(0))]),
                                    "centers").data, author="t")
    return store


def _proposal(*sites) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": _middle(col)}, "properties": {"level": level}}
        for col, level in sites]}


def _effect(level, district=None, street=None, *, people, before, after) -> dict:
    share = (lambda covered: round(covered / people, 4))
    return {"level": level, "city": "宁波市", **({"district": district} if level != "city" else {}),
            **({"street": street} if level == "street" else {}), "population": people,
            "before": {"covered_population": before, "covered_share": share(before)},
            "after": {"covered_population": after, "covered_share": share(after)}}


def test_whatif_of_district_and_street_centres_shows_the_city_district_and_street_of_each(
        client, two_districts, signed_in):
    body = client.post("/api/whatif", json=_proposal((3, "district"), (20, "street")), headers=signed_in).get_json()
    assert body["sites"] == [
        {"level": "district", "city": "宁波市", "district": "海曙区", "street": "月湖街道", "community": "白云社区"},
        {"level": "street", "city": "宁波市", "district": "江北区", "street": "甬江街道", "community": "江边社区"}]
    assert body["effects"] == [
        _effect("city", people=3000, before=1000, after=2400),
        _effect("district", "海曙区", people=2000, before=1000, after=1400),
        _effect("district", "江北区", people=1000, before=0, after=1000),
        _effect("street", "海曙区", "月湖街道", people=1400, before=1000, after=1400),
        _effect("street", "江北区", "甬江街道", people=1000, before=0, after=1000)]
    # one baseline: the summary's
    [city] = client.get("/api/summary?level=city").get_json()["rows"]
    assert body["before"]["covered_population"] == city["covered_population"] == 1000
    assert body["after"] == {"covered_population": 2400, "covered_share": 0.8}


def test_a_units_whatif_counts_its_change_in_the_city_too(client, two_districts, signed_in):
    body = client.post("/api/whatif?district=海曙区", json=_proposal((3, "district")),
                       headers=signed_in).get_json()
    assert body["before"] == {"covered_population": 1000, "covered_share": 0.5}  # the district's whole
    assert body["effects"] == [
        _effect("city", people=3000, before=1000, after=1400),
        _effect("district", "海曙区", people=2000, before=1000, after=1400),
        _effect("street", "海曙区", "月湖街道", people=1400, before=1000, after=1400)]


def test_a_proposed_centre_in_no_grid_has_no_district_or_street(client, two_districts, signed_in):
    far = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.9, 29.9]},
         "properties": {"level": "community"}}]}
    body = client.post("/api/whatif", json=far, headers=signed_in).get_json()
    assert body["sites"] == [{"level": "community"}] and body["effects"] == []


@pytest.fixture
def by_the_border(store):
    """海曙区's grid (column 0, 1,000 people) beside 江北区's (column 1, 500 people); 江北区's grid far off
    (column 20, 1,000 people) has a community centre. A district centre (5 km) in the middle of column 0
    covers columns 0 and 1 whole (column 1's far corners are 1,470 m off)."""
    from shapely import Point

    north = dict(city="宁波市", district="江北区", street="甬江街道", community="江边社区")
    rows = [grid_row("a1", city="宁波市"), grid_row("b1", **north, population=500), grid_row("b2", **north)]
    store.write("grids", validate(grids(rows, [_square_at(col) for col in (0, 1, 20)]), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community", district="江北区")], [Point(*_middle(20))]),
                                    "centers").data, author="t")
    return store


def test_a_units_whatif_counts_the_people_it_covers_outside_the_unit(client, by_the_border, signed_in):
    body = client.post("/api/whatif?district=海曙区&level=street", json=_proposal((0, "district")),
                       headers=signed_in).get_json()
    assert body["before"] == {"covered_population": 0, "covered_share": 0.0}  # the district's own
    assert body["after"] == {"covered_population": 1000, "covered_share": 1.0}
    assert [(r["district"], r["street"], r["covered_population"]) for r in body["rows"]] == [("海曙区", "月湖街道", 1000)]
    city, district, street = body["effects"]
    assert city["level"] == "city" and city["population"] == 2500
    assert (city["before"]["covered_population"], city["after"]["covered_population"]) == (1000, 2500)  # 江北区's 500 too
    assert (district["district"], district["after"]["covered_population"]) == ("海曙区", 1000)
    assert (street["street"], street["after"]["covered_population"]) == ("月湖街道", 1000)
