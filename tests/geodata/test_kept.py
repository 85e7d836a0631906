"""Results computed once for every worker and instance: an analysis as bytes (``geodata.kept``),
kept in the store (``Store.shared``, both engines), and the catalog computing only what no one kept."""

from __future__ import annotations

import logging
import threading

import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal

from geodata import catalog as catalog_module
from geodata import kept
from geodata.catalog import Catalog
from geodata.coverage import Params, analyse
from geodata.store import open_store
from geodata.validate import validate
from tests.factories import center_row, centers, grid_row, grids, six_grids
from tests.postgres import opened_at


@pytest.fixture
def instances(location):
    yield from opened_at(location, open_store)


def layers():
    # a grid without staff and a centre's street left empty: None in the frames, which must come back None
    g = validate(grids([grid_row(f"g{i}", instructor=None if i == 4 else "王") for i in range(6)],
                       six_grids().geometry), "grids").data
    c = validate(centers([center_row("c1", "community"), center_row("c2", "district", street=None, community=None)]),
                 "centers").data
    return g, c


def assert_same(one, other):
    pd.testing.assert_frame_equal(pd.DataFrame(one.coverage), pd.DataFrame(other.coverage), check_exact=True)
    assert_geodataframe_equal(one.gaps, other.gaps)
    assert list(one.summaries) == list(other.summaries)
    for level in one.summaries:
        pd.testing.assert_frame_equal(one.summaries[level], other.summaries[level], check_exact=True)
    assert (one.params, one.metric_crs) == (other.params, other.metric_crs)
    # the grids' edge checks, which an update of the analysis starts from
    assert one.invalid_edges.tolist() == other.invalid_edges.tolist()


def test_an_analysis_comes_back_from_its_bytes_exactly():
    g, c = layers()
    analysis = analyse(g, c, params=Params(radius_community_m=700))
    assert analysis.gaps["kind"].isin(["staffing_gap"]).any() and analysis.gaps["level"].isna().any()
    back = kept.from_bytes(kept.to_bytes(analysis), g, Params(radius_community_m=700))
    assert_same(analysis, back)
    assert back.gaps["level"].map(type).isin([str, type(None)]).all()  # None, not NaN, where missing


def test_bytes_of_another_layer_are_refused():
    g, c = layers()
    with pytest.raises(ValueError, match="6 grids, not 5"):
        kept.from_bytes(kept.to_bytes(analyse(g, c)), g.iloc[:5], Params())


def test_a_result_is_built_once_and_read_by_another_instance(instances):
    one, other = instances(), instances()
    built = []

    def build():
        built.append(1)
        return b"drawn \x00 bytes"

    assert one.shared("map/x/1", build) == b"drawn \x00 bytes"
    assert other.shared("map/x/1", build) == b"drawn \x00 bytes"
    assert one.shared("map/x/1", build) == b"drawn \x00 bytes"
    assert len(built) == 1


def test_instances_asking_at_once_build_it_once(instances):
    stores = [instances() for _ in range(4)]
    built, started = [], threading.Barrier(4)

    def build():
        built.append(1)
        return b"x" * 1000

    def ask(store):
        started.wait()
        return store.shared("analysis/y", build)

    threads = [threading.Thread(target=lambda s=s: answers.append(ask(s))) for s in stores]
    answers: list[bytes] = []
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [b"x" * 1000] * 4 and len(built) == 1


def test_only_the_most_recent_results_are_kept(instances, monkeypatch):
    store = instances()
    monkeypatch.setattr(type(store), "RESULTS_KEPT", 3)
    for i in range(5):
        store.shared(f"r{i}", lambda i=i: bytes([i]))
    assert [store._load_result(f"r{i}") for i in range(5)] == [None, None, b"\x02", b"\x03", b"\x04"]


def filled(store):
    g, c = layers()
    store.write("grids", g, author="t")
    store.write("centers", c, author="t")
    return store


def test_a_second_catalog_loads_the_analysis_the_first_computed(instances, monkeypatch):
    first = Catalog(filled(instances()))
    computed = first.analysis()
    calls = []
    monkeypatch.setattr(catalog_module, "analyse", lambda *a, **k: calls.append(1) or analyse(*a, **k))
    loaded = Catalog(instances()).analysis()  # another worker or instance
    assert calls == [] and loaded is not computed
    assert_same(computed, loaded)


def test_a_damaged_kept_analysis_is_computed_again(instances, monkeypatch, caplog):
    store = filled(instances())
    computed = Catalog(store).analysis()
    monkeypatch.setattr(type(store), "_load_result", lambda self, key: b"not a zip")
    with caplog.at_level(logging.WARNING, logger="geodata.catalog"):
        again = Catalog(instances()).analysis()
    assert_same(computed, again)
    assert any("could not be read" in r.getMessage() for r in caplog.records)


def test_the_key_names_the_code():
    assert kept.code_digest() == kept.code_digest() and len(kept.code_digest()) == 16


def test_a_second_catalog_loads_the_units_the_first_dissolved(instances, monkeypatch):
    first = Catalog(filled(instances()))
    dissolved = {cid: first.get(cid).features.gdf for cid in ("streets", "communities")}
    calls = []
    monkeypatch.setattr(catalog_module.units, "dissolve", lambda *a, **k: calls.append(1))
    other = Catalog(instances())
    for cid, frame in dissolved.items():
        assert_geodataframe_equal(other.get(cid).features.gdf, frame)
    assert calls == []
