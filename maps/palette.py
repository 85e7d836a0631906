"""The one home of gridmap's colours: the coverage map, its legend and the dashboard read them here.

Chosen to stay apart for colour-blind readers (tests/maps/test_palette.py checks every pair
by CIEDE2000, also under simulated protanopia, deuteranopia and tritanopia):

- coverage statuses on a diverging scheme (ColorBrewer RdBu): covered blue, partial light
  red, uncovered dark red -- the worse, the darker and redder;
- a diff's added, removed and changed features in Okabe and Ito's colour-blind-safe set: blue,
  vermilion and yellow (never green against red);
- gap kinds on hues off that scale, so a service gap never reads as an uncovered grid:
  service gaps black (holes, drawn translucent), tiling gaps teal, overlaps yellow,
  missing centres and staffing gaps as dashed outlines in dark and light purple, walk gaps
  (inside a disc, beyond the walk) washed out white with a dashed outline.
"""

from __future__ import annotations

STATUS_COLOURS = {"covered": "#2166ac", "partial": "#f4a582", "uncovered": "#b2182b"}
GAP_COLOURS = {"service_gap": "#000000", "missing_center": "#542788", "tiling_gap": "#35978f",
               "overlap": "#f0e442", "staffing_gap": "#b2abd2", "walk_gap": "#ffffff"}
# a missing centre's outline: one colour (GAP_COLOURS), heavier for higher levels
MISSING_CENTER_WEIGHTS = {"district": 4.0, "street": 3.0, "community": 2.0}
BOUNDARY_COLOURS = {"community": "#737373", "street": "#525252", "district": "#252525", "unit": "#000000"}
# centres and their catchments (the centre symbols in gridmap-map.css use the same three)
CATCHMENT_COLOURS = {"district": "#7a0177", "street": "#c51b8a", "community": "#f768a1"}
# the diff map (maps/diff_map.py): what a new version added, removed and changed
DIFF_COLOURS = {"added": "#0072b2", "removed": "#d55e00", "changed": "#f0e442"}
# the walking catchments (their union) and the life-circle rings, nearest darkest (ColorBrewer Greens)
WALK_COLOUR = "#238b45"
RING_COLOURS = ("#00441b", "#41ab5d", "#a1d99b", "#c7e9c0", "#e5f5e0")
