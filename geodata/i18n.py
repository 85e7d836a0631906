"""Every label, legend entry and message a person reads, in Chinese (default) and English.

One catalogue for pages, maps and reports: ``text(key, lang)``.  Keys are
dotted names; a missing translation falls back to Chinese, then to the key,
so a gap shows up on the page instead of breaking it (and a test lists gaps).
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

CATALOGUE: dict[str, tuple[str, str]] = {
    # the product and its navigation
    "app.name": ("网格地图", "gridmap"),
    "app.title": ("网格党群服务覆盖图", "Grid service coverage"),
    "nav.map": ("覆盖地图", "Coverage map"),
    "nav.dashboard": ("统计看板", "Dashboard"),
    "nav.api": ("数据接口", "Data API"),
    "nav.switch_language": ("English", "中文"),
    "nav.city": ("全市", "Whole city"),
    # units and levels
    "level.city": ("全市", "City"),
    "level.district": ("区县", "District"),
    "level.street": ("街道（镇）", "Street"),
    "level.community": ("社区（村）", "Community"),
    "field.grid": ("网格", "Grid"),
    "field.grid_id": ("编号", "ID"),
    "field.name": ("名称", "Name"),
    "field.grid_type": ("网格类型", "Grid type"),
    "field.population": ("人口", "Population"),
    "field.covered_population": ("覆盖人口", "Covered population"),
    "field.covered_share": ("覆盖率", "Covered share"),
    "field.coverage_ratio": ("面积覆盖比例", "Area covered"),
    "field.coverage_status": ("覆盖状态", "Coverage"),
    "field.grids": ("网格数", "Grids"),
    "field.level": ("级别", "Level"),
    "field.detail": ("说明", "Detail"),
    "field.area_m2": ("面积（m²）", "Area (m²)"),
    "field.instructor": ("党建指导员", "Instructor"),
    "field.party_branch": ("党支部", "Party branch"),
    "field.grid_workers": ("网格员", "Grid workers"),
    "field.center": ("服务中心", "Centre"),
    # coverage status
    "status.covered": ("已覆盖", "Covered"),
    "status.partial": ("部分覆盖", "Partly covered"),
    "status.uncovered": ("未覆盖", "Not covered"),
    # grid types
    "grid_type.residential": ("居民小区", "Residential"),
    "grid_type.industrial_park": ("工业园区", "Industrial park"),
    "grid_type.commercial_market": ("商圈市场", "Commercial market"),
    "grid_type.office_building": ("商务楼宇", "Office buildings"),
    "grid_type.other": ("其他", "Other"),
    # centre levels
    "center.district": ("区级党群服务中心", "District centre"),
    "center.street": ("街道（镇）党群服务中心", "Street centre"),
    "center.community": ("社区（村）党群服务中心", "Community centre"),
    # gap kinds
    "gap.service_gap": ("服务盲区", "Service gap"),
    "gap.missing_center": ("缺少服务中心", "Missing centre"),
    "gap.tiling_gap": ("网格划分空隙", "Tiling gap"),
    "gap.overlap": ("网格重叠", "Overlap"),
    "gap.staffing_gap": ("力量配备缺口", "Staffing gap"),
    # map layers and controls
    "layer.basemap": ("底图", "Base map"),
    "layer.coverage": ("网格覆盖状态", "Grid coverage"),
    "layer.service_gaps": ("服务盲区", "Service gaps"),
    "layer.centers": ("党群服务中心", "Service centres"),
    "layer.catchments": ("服务半径", "Catchments"),
    "layer.missing": ("缺少服务中心的单元", "Units missing a centre"),
    "layer.tiling": ("网格空隙与重叠", "Tiling gaps and overlaps"),
    "layer.staffing": ("力量配备缺口", "Staffing gaps"),
    "layer.districts": ("区县界", "District boundaries"),
    "layer.streets": ("街道界", "Street boundaries"),
    "legend.title": ("图例", "Legend"),
    "legend.coverage": ("网格覆盖状态", "Grid coverage"),
    "legend.gaps": ("缺口", "Gaps"),
    "legend.centers": ("党群服务中心", "Service centres"),
    "map.search": ("搜索网格、社区或街道", "Search grids, communities, streets"),
    "map.search_none": ("未找到", "Nothing found"),
    "map.fullscreen": ("全屏", "Full screen"),
    "map.open_data": ("查看数据", "View data"),
    "map.open_map": ("在地图上查看", "Show on map"),
    "map.loading": ("正在加载…", "Loading…"),
    "map.load_failed": ("图层加载失败", "A layer failed to load"),
    # dashboard
    "dashboard.title": ("覆盖与缺口统计", "Coverage and gaps"),
    "dashboard.city_summary": ("全市概况", "The city"),
    "dashboard.by_level": ("按单元统计", "By unit"),
    "dashboard.export_csv": ("导出 CSV", "Export CSV"),
    "dashboard.chart_share": ("各区县人口覆盖率", "Covered share of population by district"),
    "dashboard.chart_gaps": ("各区县缺口数量", "Gaps by district"),
    "dashboard.sort_hint": ("点击表头排序", "Click a heading to sort"),
    "dashboard.filter": ("筛选", "Filter"),
    "dashboard.no_data": ("暂无数据", "No data yet"),
    "dashboard.no_data_hint": ("尚未上传网格数据。上传网格和党群服务中心后，这里将显示覆盖率与缺口统计。",
                               "No grids have been uploaded yet. Once grids and service centres are uploaded, "
                               "this page shows their coverage and gaps."),
    "dashboard.charts": ("分区县图表", "Districts at a glance"),
    "dashboard.grids_covered": ("已覆盖网格", "Grids covered"),
    "dashboard.grids_partial": ("部分覆盖网格", "Grids partly covered"),
    "dashboard.grids_uncovered": ("未覆盖网格", "Grids not covered"),
    "dashboard.gaps": ("缺口", "Gaps"),
    "dashboard.total": ("合计", "Total"),
    "dashboard.no_share": ("无人口数据", "no population"),
    "dashboard.filter_placeholder": ("按名称筛选", "Filter by name"),
    "dashboard.units": ("个单元", "units"),
    "dashboard.row_link_hint": ("点击名称在地图上查看", "Click a name to see it on the map"),
    "dashboard.export_city_csv": ("导出全市汇总 CSV", "Export the city summary as CSV"),
    # errors
    "error.title": ("出错了", "Something went wrong"),
    "error.back": ("返回地图", "Back to the map"),
    "error.unknown_unit": ("没有这个单元", "No such unit"),
}


def text(key: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The text for ``key`` in ``lang``; Chinese if that is missing; the key if both are."""
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return entry[index] or entry[0]


def language(requested: str | None) -> str:
    """A supported language code from what a request asked for (``zh``, ``zh-CN``, ``en-GB``...)."""
    if requested:
        code = requested.split("-")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
