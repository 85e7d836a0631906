"""Search by code and (partial, short) name: hand-made layers with repeated names under other parents."""

from __future__ import annotations

import geopandas as gpd
from shapely import Point, box

from geodata.search import SearchIndex, short_form


def layers():
    rows = [  # 桃苑社区 twice, under two streets of two districts; 庄桥街道's grid codes share a prefix
        ("330205-01-001-01", "桃苑社区第1网格", "江北区", "庄桥街道", "桃苑社区", box(0, 0, 1, 1)),
        ("330205-01-001-02", "桃苑社区第2网格", "江北区", "庄桥街道", "桃苑社区", box(1, 0, 2, 1)),
        ("330203-02-001-01", "桃苑社区第1网格", "海曙区", "南门街道", "桃苑社区", box(5, 5, 6, 6)),
        ("330203-02-002-01", "白云社区第1网格", "海曙区", "南门街道", "白云社区", box(6, 5, 7, 6)),
    ]
    grids = gpd.GeoDataFrame([dict(zip(["grid_id", "name", "district", "street", "community"], r[:5])) for r in rows],
                             geometry=[r[5] for r in rows], crs=4326)
    centers = gpd.GeoDataFrame({"center_id": ["c-hs"], "name": ["海曙区党群服务中心"], "level": ["district"],
                                "district": ["海曙区"], "street": [None], "community": [None]},
                               geometry=[Point(5.5, 5.5)], crs=4326)
    return grids, centers


def labels(hits):
    return [(h.kind, h.to_dict()["label"]) for h in hits]


def test_a_short_name_finds_the_district_first():
    index = SearchIndex.of(*layers())
    hits = index.search("海曙", 3)
    assert labels(hits)[0] == ("district", "海曙区")
    assert hits[0].bbox == (5.0, 5.0, 7.0, 6.0) and hits[0].unit == (("district", "海曙区"),)
    assert ("center", "海曙区党群服务中心 · 海曙区") in labels(index.search("海曙", 10))


def test_repeated_names_come_apart_by_their_parents():
    hits = SearchIndex.of(*layers()).search("桃苑社区", 5)
    communities = [h for h in hits if h.kind == "community"]
    # the same name: in the order of their parents' names (江 U+6C5F before 海 U+6D77)
    assert labels(communities) == [("community", "桃苑社区 · 庄桥街道 · 江北区"), ("community", "桃苑社区 · 南门街道 · 海曙区")]
    assert communities[0].bbox == (0.0, 0.0, 2.0, 1.0)
    assert communities[0].unit == (("district", "江北区"), ("street", "庄桥街道"), ("community", "桃苑社区"))


def test_codes_exact_first_then_by_prefix():
    index = SearchIndex.of(*layers())
    assert [h.id for h in index.search("330205-01-001-02")][:1] == ["330205-01-001-02"]
    assert [h.id for h in index.search("330205-01", 10)] == ["330205-01-001-01", "330205-01-001-02"]
    assert [h.id for h in index.search("c-hs")] == ["c-hs"]


def test_a_part_of_a_name_and_the_order_of_ranks():
    index = SearchIndex.of(*layers())
    found = labels(index.search("第1网格", 10))  # only substrings: grids, by name (桃 before 白), then code
    assert found == [("grid", "桃苑社区第1网格 · 桃苑社区 · 南门街道 · 海曙区"),
                     ("grid", "桃苑社区第1网格 · 桃苑社区 · 庄桥街道 · 江北区"),
                     ("grid", "白云社区第1网格 · 白云社区 · 南门街道 · 海曙区")]
    assert [k for k, _ in labels(index.search("桃苑", 10))][:2] == ["community", "community"]  # units before grids
    assert index.search("南门", 1)[0].kind == "street"


def test_nothing_found_is_an_empty_answer():
    index = SearchIndex.of(*layers())
    assert index.search("不存在", 10) == [] and index.search("  ", 10) == []
    assert SearchIndex.of(layers()[0].iloc[:0]).search("海曙") == []


def test_short_forms():
    assert [short_form(n) for n in ("海曙区", "庄桥街道", "桃苑社区", "象山县", "区")] == ["海曙", "庄桥", "桃苑", "象山", "区"]
