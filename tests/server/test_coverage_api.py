"""Coverage, gaps and summaries through the API, on a layout worked out by hand.

Two 0.01° grids side by side near Ningbo (about 966 m × 1,109 m each) and one community
centre in the middle of the western grid: its corners are 736 m away, so the 1 km disc
covers it whole, and reaches only ~520 m into the eastern grid (less than half of it).
"""

import csv
import io

import pytest

from geodata.validate import validate
from tests.factories import center_row, centers, grid_row, grids
from tests.http import get_json


@pytest.fixture
def loaded(store):
    # 青石 (g00, west, 1,000 people) has a community centre at its middle; 白云 (g10, east, 500) has none,
    # and g10 has no instructor
    layer = grids([grid_row("g00"), grid_row("g10", community="白云社区", population=500, instructor=None)])
    store.write("grids", validate(layer, "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    return store


def test_coverage_collection_adds_the_coverage_fields(client, loaded):
    body = get_json(client, "/api/collections/coverage/items")
    props = {f["id"]: f["properties"] for f in body["features"]}
    assert props["g00"]["coverage_ratio"] == 1.0 and props["g00"]["coverage_status"] == "covered"
    assert props["g00"]["covered_population"] == 1000
    assert 0 < props["g10"]["coverage_ratio"] < 0.5 and props["g10"]["coverage_status"] == "partial"
    assert props["g10"]["name"] == "g10网格"  # the grid's own fields come along


def test_gaps_collection_and_filters(client, loaded):
    body = get_json(client, "/api/collections/gaps/items?limit=100")
    kinds = sorted(f["properties"]["kind"] for f in body["features"])
    assert kinds == ["missing_center", "missing_center", "missing_center", "service_gap", "staffing_gap"]
    staffing = get_json(client, "/api/collections/gaps/items?kind=staffing_gap")
    [gap] = staffing["features"]
    assert gap["properties"]["grid_id"] == "g10" and "无党建指导员" in gap["properties"]["detail"]  # Chinese by default
    one = get_json(client, f"/api/collections/gaps/items/{gap['id']}")
    assert one["properties"] == gap["properties"]


def test_radius_parameter_is_a_what_if(client, loaded, signed_in):
    wide = get_json(client, "/api/collections/coverage/items/g10?radius_community_m=3000", headers=signed_in)
    assert wide["properties"]["coverage_ratio"] == 1.0
    assert get_json(client, "/api/collections/coverage/items/g10")["properties"]["coverage_ratio"] < 0.5
    links = get_json(client, "/api/collections/coverage/items?radius_community_m=3000&limit=1",
                     headers=signed_in)["links"]
    assert all("radius_community_m=3000" in link["href"] for link in links if link["rel"] == "next")


@pytest.mark.parametrize("query", ["radius_community_m=-5", "radius_street_m=far", "covered_ratio=0.01",
                                   "radius_district_m=10001", "radius_community_m=inf"])
def test_bad_analysis_parameters_are_400(client, loaded, signed_in, query):
    for url in (f"/api/collections/coverage/items?{query}", f"/api/summary?{query}"):
        resp = client.get(url, headers=signed_in)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("url", [
    "/api/summary?level=city&radius_community_m=42205", "/api/collections/coverage/items?covered_ratio=0.5",
    "/api/collections/gaps/items?sliver_m2=1", "/api/collections/streets/items?partial_ratio=0.2",
    "/api/collections/communities/items?radius_street_m=100", "/api/download/coverage.csv?radius_district_m=1",
    "/api/collections/coverage/items/g10?radius_community_m=3000"])
def test_what_if_parameters_need_a_signed_in_user(client, loaded, url):
    resp = client.get(url)
    assert resp.status_code == 401
    error = resp.get_json()["error"]
    assert error["code"] == "unauthorized" and "仅供已登录的用户使用" in error["message"]  # Chinese by default


def test_a_what_if_never_evicts_the_analysis_of_the_settings(app, client, loaded, signed_in):
    catalog = app.extensions["gridmap"].catalog
    default = catalog.analysis()
    for radius in range(1100, 1700, 100):  # more what-ifs than any cache holds
        assert client.get(f"/api/summary?level=city&radius_community_m={radius}", headers=signed_in).status_code == 200
    assert catalog.analysis() is default
    assert app.extensions["gridmap"].jobs.started == 6  # each what-if a job; the default one never


def test_what_if_results_are_kept_per_data_version_and_parameters(app, client, loaded, signed_in):
    jobs = app.extensions["gridmap"].jobs
    for _ in range(2):
        client.get("/api/summary?level=city&radius_community_m=1500", headers=signed_in)
        client.get("/api/collections/coverage/items?radius_community_m=1500", headers=signed_in)
    assert jobs.started == 1


def test_derived_downloads(client, loaded):
    resp = client.get("/api/download/gaps.geojson?kind=missing_center")
    assert resp.status_code == 200
    assert 'filename="gaps.geojson"' in resp.headers["Content-Disposition"]
    assert {f["properties"]["level"] for f in resp.get_json(force=True)["features"]} == {
        "district", "street", "community"}
    assert len(client.get("/api/download/coverage.geojson").get_json(force=True)["features"]) == 2
    assert client.get("/api/download/coverage.geojson?version=1").status_code == 400


def test_summary_by_level(client, loaded):
    city = get_json(client, "/api/summary?level=city")
    [row] = city["rows"]
    assert (row["grids"], row["population"], row["missing_center"], row["staffing_gap"]) == (2, 1500, 3, 1)
    assert city["metric_crs"] == "EPSG:32651" and city["parameters"]["radius_community_m"] == 1000
    communities = {r["community"]: r for r in get_json(client, "/api/summary?level=community")["rows"]}
    assert communities["青石社区"]["covered_share"] == 1.0
    assert communities["白云社区"]["missing_center"] == 1 and communities["青石社区"]["missing_center"] == 0
    only = get_json(client, "/api/summary?level=community&community=白云社区")["rows"]
    assert [r["community"] for r in only] == ["白云社区"]
    assert get_json(client, "/api/summary")["level"] == "district"


def test_summary_csv_opens_in_excel(client, loaded):
    resp = client.get("/api/summary?level=community&f=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    table = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert [r["community"] for r in table] == ["青石社区", "白云社区"]  # administrative order: by grid_id
    assert table[0]["population"] == "1000"


@pytest.mark.parametrize("query", ["level=province", "f=xml", "colour=red"])
def test_bad_summary_requests_are_400(client, loaded, query):
    assert client.get(f"/api/summary?{query}").status_code == 400


def test_a_new_upload_invalidates_the_analysis(client, loaded):
    assert get_json(client, "/api/summary?level=city")["rows"][0]["population"] == 1500
    layer = grids([grid_row("g00", population=10)])
    loaded.write("grids", validate(layer, "grids").data, author="t")
    assert get_json(client, "/api/summary?level=city")["rows"][0]["population"] == 10


def test_settings_set_the_default_radii(data_dir):
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "RADIUS_COMMUNITY_M": 3000})
    store = app.extensions["gridmap"].store
    store.write("grids", validate(grids([grid_row("g00"), grid_row("g10")]), "grids").data, author="t")
    store.write("centers", validate(centers([center_row("c1", "community")]), "centers").data, author="t")
    body = app.test_client().get("/api/collections/coverage/items/g10").get_json(force=True)
    assert body["properties"]["coverage_ratio"] == 1.0


def test_summary_csv_cells_cannot_start_a_formula(client, store):
    layer = grids([grid_row("g00", district="=1+1", community="-x"), grid_row("g10", district="+86")])
    store.write("grids", validate(layer, "grids").data, author="t")
    for level, column, expected in (("district", "district", {"'=1+1", "'+86"}), ("community", "community",
                                                                                 {"'-x", "青石社区"})):
        resp = client.get(f"/api/summary?level={level}&f=csv")
        rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
        assert {r[column] for r in rows} == expected


def sleeping_analysis(*args):
    import time

    time.sleep(60)


def hungry_analysis(*args):
    return bytearray(64 * 2**30)


@pytest.fixture
def limited(data_dir, loaded):
    """An app whose jobs stop after 5 s (long enough for a real one on a busy machine)."""
    from server import create_app

    app = create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "JOB_TIMEOUT_S": 5})
    yield app
    app.extensions["gridmap"].jobs.close()


def test_a_what_if_over_the_time_limit_answers_503_with_retry_after_and_the_next_one_works(limited, monkeypatch):
    from geodata import jobs

    client = limited.test_client()
    headers = {"Authorization": "Bearer " + limited.extensions["gridmap_users"].add("v", "viewer")[1]}
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "analyse_versions", sleeping_analysis)  # what a far too big analysis would do
        resp = client.get("/api/summary?level=city&radius_community_m=1500", headers=headers)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    error = resp.get_json()["error"]
    assert error["code"] == "service_unavailable" and "5 秒的时间上限" in error["message"]  # Chinese by default
    resp = client.get("/api/summary?level=city&radius_community_m=1500", headers=headers)
    assert resp.status_code == 200 and resp.get_json()["parameters"]["radius_community_m"] == 1500


def test_a_what_if_over_the_memory_limit_answers_422_naming_it_and_the_next_one_works(app, client, loaded,
                                                                                     signed_in, monkeypatch):
    from geodata import jobs

    with monkeypatch.context() as patch:
        patch.setattr(jobs, "analyse_versions", hungry_analysis)
        resp = client.get("/api/summary?level=city&radius_community_m=1500", headers=signed_in)
    assert resp.status_code == 422
    assert "2048 MiB" in resp.get_json()["error"]["message"] and "JOB_MEMORY_MB" in resp.get_json()["error"]["message"]
    assert client.get("/api/summary?level=city&radius_community_m=1500", headers=signed_in).status_code == 200


def test_a_busy_server_answers_503_with_retry_after_at_once(app, client, loaded, signed_in, monkeypatch):
    from geodata.errors import ServiceUnavailable

    def busy(*args, **kwargs):
        raise ServiceUnavailable("the server is busy", retry_after=5)

    monkeypatch.setattr(app.extensions["gridmap"].jobs, "run", busy)
    resp = client.get("/api/summary?level=city&radius_community_m=1500", headers=signed_in)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert client.get("/api/summary?level=city").status_code == 200  # the settings' analysis needs no job


def test_analysis_threads_follow_the_setting(data_dir, monkeypatch):
    from geodata import coverage
    from server import create_app

    monkeypatch.setattr(coverage, "THREADS", coverage.THREADS)  # put back after the test
    create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, "ANALYSIS_THREADS": 1})
    assert coverage.THREADS == 1  # one thread: the tiling checks after the coverage, no array cut in parts
    create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True})
    assert coverage.THREADS == coverage.default_threads()  # 0: one a core, at most 4
