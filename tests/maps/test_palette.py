"""The map's colours stay apart: statuses and gap kinds share the map, so every pair must differ
clearly -- for normal vision and for the three simulated colour-vision deficiencies."""

from __future__ import annotations

import itertools

import pytest
from coloraide import Color

from maps.palette import DIFF_COLOURS, GAP_COLOURS, STATUS_COLOURS

# CIEDE2000: ~2.3 is a just-noticeable difference; the old service-gap red against the old
# uncovered red (#b2182b / #d73027) was 7.6, and read as the same colour on the map.
NORMAL_MIN = 20.0
SIMULATED_MIN = 10.0
SHARED = {**{f"status {k}": v for k, v in STATUS_COLOURS.items()},
          **{f"gap {k}": v for k, v in GAP_COLOURS.items()}}
PAIRS = list(itertools.combinations(SHARED.items(), 2))


def delta_e(a: str, b: str, deficiency: str | None = None) -> float:
    ca, cb = Color(a), Color(b)
    if deficiency:
        ca, cb = ca.filter(deficiency), cb.filter(deficiency)
    return ca.delta_e(cb, method="2000")


def test_the_old_reds_would_fail():
    assert delta_e("#b2182b", "#d73027") < NORMAL_MIN


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a[0]}|{b[0]}" for a, b in PAIRS])
def test_every_pair_differs_clearly(a, b):
    (name_a, colour_a), (name_b, colour_b) = a, b
    assert delta_e(colour_a, colour_b) >= NORMAL_MIN, (name_a, name_b)
    for deficiency in ("protan", "deutan", "tritan"):
        assert delta_e(colour_a, colour_b, deficiency) >= SIMULATED_MIN, (name_a, name_b, deficiency)


def test_service_gap_and_uncovered_differ_most_of_all():
    """The pair the planners confused: far apart, well above the general margin."""
    assert delta_e(GAP_COLOURS["service_gap"], STATUS_COLOURS["uncovered"]) >= 1.5 * NORMAL_MIN


def test_the_dashboard_reads_the_same_gap_colours():
    from server import dashboard

    assert dashboard.GAP_COLOURS is GAP_COLOURS


DIFF_PAIRS = list(itertools.combinations(DIFF_COLOURS.items(), 2))


@pytest.mark.parametrize(("a", "b"), DIFF_PAIRS, ids=[f"{a[0]}|{b[0]}" for a, b in DIFF_PAIRS])
def test_the_diff_maps_colours_differ_clearly_for_every_reader(a, b):
    (name_a, colour_a), (name_b, colour_b) = a, b
    assert delta_e(colour_a, colour_b) >= NORMAL_MIN, (name_a, name_b)
    for deficiency in ("protan", "deutan", "tritan"):
        assert delta_e(colour_a, colour_b, deficiency) >= SIMULATED_MIN, (name_a, name_b, deficiency)


def test_the_diff_map_draws_in_the_palettes_colours():
    from maps import diff_map

    assert diff_map.STATUS_COLOURS is DIFF_COLOURS
    # the old green and red were barely apart for deuteranopes (10.2); every new pair is twice as far apart
    assert delta_e("#1a9850", "#d73027", "deutan") < 1.1 * SIMULATED_MIN
    assert min(delta_e(a, b, f) for (_, a), (_, b) in DIFF_PAIRS for f in ("protan", "deutan", "tritan")) >= 20
