"""One language at a time (issue 14, observation 1): pages, map texts, API errors and upload reports in
Chinese or English — never both — chosen by ``?lang=``, then the cookie, then ``Accept-Language``."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from shapely import Polygon

from geodata.validate import validate
from tests.factories import center_row, centers, grid_row, grids, six_grids, square
from tests.geodata.test_io import shapefile_zip

HAN = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]+")
# an English sentence: three or more words in a row, joined by single spaces (lists of codes use commas)
SENTENCE = re.compile(r"\b[A-Za-z][a-z]+(?: [A-Za-z][a-z]*){2,}")
QUOTED = re.compile(r"'[^']*'|`[^`]*`|\"[^\"]*\"|<[^>]*>")  # parameter names, ids, field names, placeholders


class _Visible(HTMLParser):
    """The text a reader sees (and hovers: title, placeholder, aria-label), scripts, styles and code aside."""

    SKIP = {"script", "style", "code", "pre", "textarea", "kbd"}

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        for name, value in attrs:
            if name in ("title", "placeholder", "aria-label", "alt") and value and not self.skip:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return "\n".join(parser.parts)


def english_sentences(text: str) -> list[str]:
    return SENTENCE.findall(QUOTED.sub(" ", text))


def han_outside(text: str, data: set[str]) -> list[str]:
    for value in sorted(data, key=len, reverse=True):  # data values (names) are the same in any language
        text = text.replace(value, " ")
    return HAN.findall(text.replace("中文", " "))  # the link to the Chinese page names itself


def data_values(*frames) -> set[str]:
    return {v for frame in frames for column in frame.columns if column != "geometry"
            for v in frame[column] if isinstance(v, str)}


GRIDS = six_grids()
CENTERS = centers([center_row("c1", "community"), center_row("c2", "street")])
DATA = data_values(GRIDS, CENTERS) | {"无此区", "网格"}  # a district asked for; the grid names end in 网格


@pytest.fixture
def loaded(store):
    store.write("grids", validate(GRIDS, "grids").data, author="tester")
    store.write("centers", validate(CENTERS, "centers").data, author="tester")
    return store


PAGES = ["/", "/dashboard", "/history/grids", "/history/grids/diff", "/grids/g00", "/centers/c1", "/login",
         "/api?f=html", "/api/collections?f=html", "/api/collections/grids?f=html",
         "/api/collections/gaps/items?f=html", "/api/collections/grids/queryables?f=html",
         "/map?district=无此区", "/nope", "/upload/grids"]


@pytest.mark.parametrize("url", PAGES)
def test_a_chinese_page_has_no_english_sentence_and_an_english_page_no_chinese(client, loaded, editor, url):
    for lang in ("zh", "en"):
        resp = client.get(url + ("&" if "?" in url else "?") + f"lang={lang}", headers=editor)
        assert resp.mimetype == "text/html" and resp.status_code in (200, 400, 404), (url, resp.status_code)
        text = visible(resp.get_data(as_text=True))
        if lang == "zh":
            assert english_sentences(text) == [], url
        else:
            assert han_outside(text, DATA) == [], url


# (method, url, status, form): representative refusals of the API
API_ERRORS = [
    ("GET", "/api/collections/nope", 404, None),
    ("GET", "/api/collections/grids/items/nope", 404, None),
    ("GET", "/api/collections/grids/items?colour=red", 400, None),
    ("GET", "/api/collections?bbox=1,2,3,4", 400, None),
    ("GET", "/api/download/grids.shp", 404, None),
    ("GET", "/api?f=xml", 400, None),
    ("GET", "/api/nothing/here", 404, None),
    ("DELETE", "/api/collections", 405, None),
    ("GET", "/map?district=无此区", 404, None),
    ("POST", "/api/uploads/grids", 400, {}),
    ("POST", "/api/uploads/nope", 400, {"file": (io.BytesIO(b"{}"), "x.geojson")}),
    ("POST", "/api/uploads/grids", 415, {"file": (io.BytesIO(b"x"), "grids.dwg")}),
    ("POST", "/api/uploads/grids", 422, {"file": (io.BytesIO(b""), "grids.geojson")}),
    ("POST", "/api/uploads/grids", 415, {"file": (io.BytesIO(b"not json"), "grids.geojson")}),
    ("POST", "/api/uploads/grids", 422, {"file": (io.BytesIO(b'{"type": "Topology"}'), "grids.geojson")}),
    ("POST", "/api/uploads/grids", 400, {"file": (io.BytesIO(b"{}"), "grids.geojson"), "mode": "append"}),
]


def ask(client, method, url, form, headers, lang):
    headers = {**headers, "Accept": "application/json", "Accept-Language": lang}
    if form is None:
        return client.open(url, method=method, headers=headers)
    form = {k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v for k, v in form.items()}
    return client.open(url, method=method, data=form, headers=headers, content_type="multipart/form-data")


@pytest.mark.parametrize("method,url,status,form", API_ERRORS)
def test_api_error_messages_are_in_the_readers_language(client, loaded, editor, method, url, status, form):
    zh = ask(client, method, url, form, editor, "zh-CN")
    en = ask(client, method, url, form, editor, "en-US,en;q=0.9")
    assert zh.status_code == en.status_code == status
    zh_error, en_error = zh.get_json()["error"], en.get_json()["error"]
    assert zh_error["code"] == en_error["code"]  # codes are the same in any language
    assert HAN.search(zh_error["message"]), zh_error["message"]
    assert english_sentences(zh_error["message"]) == [], zh_error["message"]
    assert han_outside(en_error["message"], DATA) == [], en_error["message"]
    assert "Accept-Language" in zh.headers.get("Vary", "")


def test_sign_in_and_role_refusals_are_in_the_readers_language(app, client, loaded):
    viewer = {"Authorization": "Bearer " + app.extensions["gridmap_users"].add("viewer1", "viewer")[1]}
    for headers, status in (({}, 401), (viewer, 403), ({"Authorization": "Bearer nonsense"}, 401)):
        zh = client.post("/api/uploads/grids?lang=zh", headers=headers)
        en = client.post("/api/uploads/grids?lang=en", headers=headers)
        assert zh.status_code == en.status_code == status
        assert HAN.search(zh.get_json()["error"]["message"]) and not english_sentences(zh.get_json()["error"]["message"])
        assert han_outside(en.get_json()["error"]["message"], DATA) == []


def upload(client, editor, lang: str, gdf=None, file=None, **form):
    file = file or (io.BytesIO(gdf.to_json(drop_id=True).encode()), "grids.geojson")
    return client.post(f"/api/uploads/grids?lang={lang}", data={**form, "file": file}, headers=editor,
                       content_type="multipart/form-data")


def report_texts(body: dict) -> list[str]:
    report = body.get("report") or {}
    return ([p["message"] for p in report.get("errors", []) + report.get("warnings", [])]
            + list(report.get("notes") or []) + [report.get("encoding") or ""]
            + [(body.get("error") or {}).get("message", "")])


def ring_with_hole():
    """Eight grids around a missing ninth: the hole is land of 海曙区 in no grid."""
    places = [(c, r) for r in range(3) for c in range(3) if (c, r) != (1, 1)]
    return grids([grid_row(f"h{c}{r}") for c, r in places], [square(c, r) for c, r in places])


def bowtie_grids():
    bowtie = Polygon([(121.52, 29.81), (121.53, 29.82), (121.53, 29.81), (121.52, 29.82), (121.52, 29.81)])
    layer = six_grids()
    layer.geometry = [*layer.geometry.iloc[:-1], bowtie]
    return layer


def test_upload_reports_speak_one_language(client, editor, tmp_path):
    bad = grids([grid_row("a", grid_type="park"), grid_row("a"), grid_row("b", extra_field=1)])
    files = [lambda: (io.BytesIO(bad.to_json(drop_id=True).encode()), "grids.geojson"),
             lambda: (io.BytesIO(bowtie_grids().to_json(drop_id=True).encode()), "grids.geojson"),
             lambda: (io.BytesIO(ring_with_hole().to_json(drop_id=True).encode()), "grids.geojson"),
             lambda: (io.BytesIO(shapefile_zip(tmp_path, six_grids(), encoding="GBK", drop={".cpg"})), "grids.zip")]
    for make in files:
        zh = upload(client, editor, "zh", file=make(), dry_run="1").get_json()
        en = upload(client, editor, "en", file=make(), dry_run="1").get_json()
        zh_texts, en_texts = [t for t in report_texts(zh) if t], [t for t in report_texts(en) if t]
        assert len(zh_texts) == len(en_texts) > 0
        for text in zh_texts:
            assert english_sentences(text) == [], text
        for text in en_texts:
            assert han_outside(text, DATA | {"网格"}) == [], text


# --- observation 1: each string seen, in both languages --------------------------------------------------

def test_land_in_no_grid_is_said_in_one_language(client, editor):
    zh = [w["message"] for w in upload(client, editor, "zh", ring_with_hole(), dry_run="1").get_json()["report"]["warnings"]]
    en = [w["message"] for w in upload(client, editor, "en", ring_with_hole(), dry_run="1").get_json()["report"]["warnings"]]
    assert len(zh) == len(en) == 1
    assert re.fullmatch(r"海曙区：有 [\d,]+ m² 未划入任何网格", zh[0]), zh
    assert re.fullmatch(r"海曙区: [\d,]+ m² of the district in no grid", en[0]), en


def test_a_shapefiles_encoding_and_renamed_fields_are_said_in_one_language(client, editor, tmp_path):
    def post(lang):
        file = (io.BytesIO(shapefile_zip(tmp_path, six_grids(), encoding="GBK", drop={".cpg"})), "grids.zip")
        return upload(client, editor, lang, file=file, dry_run="1").get_json()["report"]

    zh, en = post("zh"), post("en")
    assert zh["encoding"] == "GBK（自动识别）" and en["encoding"] == "GBK (detected)"
    assert "字段 party_memb 已改名为 party_members" in zh["notes"]
    assert "renamed party_memb → party_members" in en["notes"]
    assert not any("renamed" in note for note in zh["notes"])


def test_a_repaired_self_intersection_is_said_in_one_language(client, editor):
    def repaired(lang):
        report = upload(client, editor, lang, bowtie_grids(), dry_run="1").get_json()["report"]
        return [w["message"] for w in report["warnings"] if w["key"] == "g21"]

    zh, en = repaired("zh"), repaired("en")
    assert zh == ["已修复无效几何图形：自相交，位于 (121.525, 29.815)"]
    assert en == ["invalid geometry repaired: Self-intersection at (121.525, 29.815)"]


def test_a_refused_file_counts_its_errors_in_one_language_with_plural_forms(client, editor):
    one = grids([grid_row("a", grid_type="park")])
    three = grids([grid_row("a", grid_type="park"), grid_row("b", grid_type="park"), grid_row("c", grid_type="park")])
    messages = {(lang, len(gdf)): upload(client, editor, lang, gdf).get_json()["error"]["message"]
                for lang in ("zh", "en") for gdf in (one, three)}
    assert messages == {("zh", 1): "文件未保存：有 1 个错误", ("zh", 3): "文件未保存：有 3 个错误",
                        ("en", 1): "the file was not stored: 1 error", ("en", 3): "the file was not stored: 3 errors"}


def test_feature_numbers_in_report_messages_count_from_one(client, editor):
    twice = grids([grid_row("a"), grid_row("a")])
    zh = upload(client, editor, "zh", twice, dry_run="1").get_json()["report"]["errors"]
    en = upload(client, editor, "en", twice, dry_run="1").get_json()["report"]["errors"]
    assert zh[0]["index"] == en[0]["index"] == 1  # the report's index is 0-based, for scripts
    assert "第 1 个要素" in zh[0]["message"] and "feature 1)" in en[0]["message"]


def map_layers(html: str) -> dict[str, dict]:
    found = re.findall(r"gridmap\.vectorTileLayer\([^,]+, (\{.*\})\);", html)
    return {options["key"]: options for options in map(json.loads, found)}


def test_the_missing_centre_tooltip_is_in_one_language(client, loaded):
    for lang, label, community, other in (("zh", "缺少", "社区（村）党群服务中心", "no community-level centre"),
                                          ("en", "Missing", "Community centre", "无社区级")):
        html = client.get(f"/?lang={lang}").get_data(as_text=True)
        layers = map_layers(html)
        tooltip = layers["missing"]["tooltip"]
        assert tooltip[0]["label"] == label and tooltip[0]["labels"]["community"] == community
        for key in ("missing", "gaps", "tiling", "staffing"):  # the analysis's bilingual note: not shown
            assert "detail" not in [f["field"] for f in layers[key]["tooltip"]], key
        assert other not in json.dumps(layers, ensure_ascii=False)
    zh_kinds = map_layers(client.get("/?lang=zh").get_data(as_text=True))["tiling"]["tooltip"][0]["labels"]
    en_kinds = map_layers(client.get("/?lang=en").get_data(as_text=True))["tiling"]["tooltip"][0]["labels"]
    assert (zh_kinds["tiling_gap"], en_kinds["tiling_gap"]) == ("网格划分空隙", "Tiling gap")


def test_no_such_unit_is_said_in_one_language(client, loaded):
    zh = client.get("/map?district=无此区")
    en = client.get("/map?district=无此区&lang=en")
    assert zh.status_code == en.status_code == 404
    assert "无此区：没有这个单元" in zh.get_data(as_text=True) and "no such unit" not in zh.get_data(as_text=True)
    assert "无此区: no such unit" in en.get_data(as_text=True) and "没有这个单元" not in en.get_data(as_text=True)
    as_json = client.get("/map?district=无此区", headers={"Accept": "application/json", "Accept-Language": "en"})
    assert as_json.get_json()["error"] == {"code": "not_found", "message": "无此区: no such unit", "details": []}


# --- choosing the language -----------------------------------------------------------------------------

@pytest.mark.parametrize("header,expected", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("zh", "zh-CN"), ("zh-TW", "zh-CN"), ("zh-Hant-HK", "zh-CN"),
    ("en-US,en;q=0.9", "en"), ("en-GB", "en"), ("en", "en"), ("fr-FR,en;q=0.3", "en"),
    ("en;q=0.3,zh;q=0.8", "zh-CN"), ("zh;q=0.2,en;q=0.9", "en"), ("fr", "zh-CN"), ("*", "zh-CN"), ("", "zh-CN"),
])
def test_accept_language_chooses_when_nothing_else_does(client, header, expected):
    html = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{expected}"' in html
    assert "gridmap_lang" not in client.get("/", headers={"Accept-Language": header}).headers.get("Set-Cookie", "")


def test_the_query_then_the_cookie_then_the_header(client):
    english = {"Accept-Language": "en-US"}
    assert '<html lang="zh-CN"' in client.get("/?lang=zh", headers=english).get_data(as_text=True)
    assert '<html lang="zh-CN"' in client.get("/", headers=english).get_data(as_text=True)  # the cookie it left
    assert '<html lang="en"' in client.get("/?lang=en", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert '<html lang="en"' in client.get("/", headers={"Accept-Language": "zh"}).get_data(as_text=True)


def test_api_errors_follow_the_same_choice(client):
    def message(url, **headers):
        return client.get(url, headers={"Accept": "application/json", **headers}).get_json()["error"]["message"]

    assert message("/api/collections/nope") == message("/api/collections/nope", **{"Accept-Language": "zh-TW"})
    assert message("/api/collections/nope").startswith("没有数据集 'nope'")
    assert message("/api/collections/nope", **{"Accept-Language": "en-GB"}).startswith("no collection 'nope'")
    assert message("/api/collections/nope?lang=en", **{"Accept-Language": "zh"}).startswith("no collection 'nope'")


# (method, url, status, JSON body or None): refusals whose messages were English in a Chinese answer — filters
# (CQL2), sorting, edits (OGC API Part 4), the store's versions, tiles, downloads, CRS, search, planning
EDIT_FEATURE = {"type": "Feature", "properties": {"grid_id": "g00"}, "geometry": None}
MORE_API_ERRORS = [
    ("GET", "/api/collections/grids/items?filter=population LIKE 'x'", 400, None),
    ("GET", "/api/collections/grids/items?filter=nosuch = 1", 400, None),
    ("GET", "/api/collections/grids/items?filter=population = ", 400, None),
    ("GET", "/api/collections/grids/items?filter=name = 3", 400, None),
    ("GET", "/api/collections/grids/items?filter=population IN ()", 400, None),
    ("GET", "/api/collections/grids/items?filter=S_INTERSECTS(geometry, BBOX(3, 2, 1, 0))", 400, None),
    ("GET", "/api/collections/grids/items?filter=x&filter-lang=sql", 400, None),
    ("GET", "/api/collections/grids/items?sortby=nosuch", 400, None),
    ("GET", "/api/collections/grids/items?properties=nosuch", 400, None),
    ("GET", "/api/collections/grids/items?crs=EPSG:9999", 400, None),
    ("GET", "/api/collections/grids/items?version=9", 404, None),
    ("POST", "/api/collections/grids/items", 400, {"type": "Point"}),
    ("POST", "/api/collections/grids/items", 400, {"type": "FeatureCollection", "features": [{"type": "x"}]}),
    ("POST", "/api/collections/grids/items", 409, {**EDIT_FEATURE}),
    ("PUT", "/api/collections/grids/items/g01", 400, {**EDIT_FEATURE}),
    ("PUT", "/api/collections/coverage/items/g00", 405, {**EDIT_FEATURE}),
    ("PATCH", "/api/collections/grids/items/g00", 400, {"colour": "red"}),
    ("POST", "/api/collections/grids/changes", 400, {"type": "FeatureCollection", "features": []}),
    ("POST", "/api/collections/grids/split", 400, ["not", "an", "object"]),
    ("POST", "/api/collections/grids/split", 400, {"geometry": {"type": "Point", "coordinates": [121.5, 29.8]},
                                                   "line": {"type": "Point", "coordinates": [121.5, 29.8]}}),
    ("POST", "/api/collections/grids/union", 400, {"geometries": {}}),
    ("POST", "/api/collections/centers/union", 400, {"geometries": {}}),
    ("DELETE", "/api/collections/grids/items/nope", 404, None),
    ("GET", "/api/collections/grids/tiles/WebMercatorQuad/30/0/0", 404, None),
    ("GET", "/api/collections/grids/tiles/WebMercatorQuad/2/9/9", 404, None),
    ("GET", "/api/collections/grids/tiles/Nowhere", 404, None),
    ("GET", "/api/collections/grids/tiles?f=xml", 400, None),
    ("GET", "/api/download/grids.kml?crs=EPSG:4549", 400, None),
    ("GET", "/api/search?q=", 400, None),
    ("GET", "/api/search?q=g&limit=0", 400, None),
    ("GET", "/api/summary?level=planet", 400, None),
    ("GET", "/api/summary?f=xml", 400, None),
    ("GET", "/api/recommendations?level=planet", 400, None),
    ("GET", "/api/recommendations?solver=magic", 400, None),
    ("GET", "/api/summary?radius_community_m=-5", 400, None),
    ("GET", "/api/summary?catchment=bus", 400, None),
    ("GET", "/api/summary?radius_community_m=wide", 400, None),
    ("POST", "/api/whatif", 400, {"type": "Feature"}),
    ("POST", "/api/whatif", 400, {"type": "FeatureCollection", "features": []}),
    ("POST", "/api/whatif", 400, {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"level": "planet"},
         "geometry": {"type": "Point", "coordinates": [121.5, 29.8]}}]}),
]


@pytest.mark.parametrize("method,url,status,body", MORE_API_ERRORS)
def test_more_api_error_messages_are_in_the_readers_language(client, loaded, editor, method, url, status, body):
    answers = {}
    for lang in ("zh", "en"):  # by Accept-Language: the tile routes take no ?lang=
        resp = client.open(url, method=method, json=body,
                           headers={**editor, "Accept": "application/json", "Accept-Language": lang})
        assert resp.status_code == status, (lang, resp.get_json())
        answers[lang] = resp.get_json()["error"]["message"]
    zh, en = answers["zh"], answers["en"]
    assert HAN.search(zh) and english_sentences(zh) == [], zh
    assert han_outside(en, DATA) == [] and re.search(r"\b[a-z]{3,}\b", en), en


# --- collection metadata ---------------------------------------------------------------------------------

def test_collection_titles_and_descriptions_are_in_the_readers_language(client, loaded):
    for lang, grids_title in (("zh", "网格"), ("en", "Grids")):
        docs = client.get(f"/api/collections?lang={lang}").get_json()["collections"]
        one = client.get(f"/api/collections/grids?lang={lang}")
        assert "Accept-Language" in one.headers["Vary"]
        docs_by_id = {doc["id"]: doc for doc in docs}
        assert docs_by_id["grids"]["title"] == one.get_json()["title"] == grids_title
        for doc in [*docs, one.get_json()]:
            said = [doc["title"], doc["description"], *(link.get("title", "") for link in doc["links"])]
            for text in said:
                if lang == "zh":
                    assert HAN.search(doc["title"]) and english_sentences(text) == [], text
                else:
                    assert han_outside(text, DATA) == [], text


def test_a_collections_etag_follows_the_language(client, loaded):
    zh = client.get("/api/collections/grids", headers={"Accept-Language": "zh"})
    again = client.get("/api/collections/grids", headers={"Accept-Language": "en", "If-None-Match": zh.headers["ETag"]})
    assert again.status_code == 200 and again.get_json()["title"] == "Grids"


def test_a_gaps_detail_is_in_the_readers_language_only(client, loaded):
    for lang in ("zh", "en"):
        features = client.get(f"/api/collections/gaps/items?lang={lang}&limit=1000").get_json()["features"]
        details = [f["properties"]["detail"] for f in features]
        assert details
        for detail in details:
            if lang == "zh":
                assert HAN.search(detail) and english_sentences(detail) == [], detail
            else:
                assert han_outside(detail, DATA) == [], detail


def test_a_collections_page_shows_its_update_in_the_services_time_zone(client, loaded):
    html = client.get("/api/collections/grids?f=html").get_data(as_text=True)
    assert re.search(r"<time datetime=\"[^\"]+\+00:00\">\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\+8\)</time>", html)
