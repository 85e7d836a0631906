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
    "nav.history": ("版本历史", "History"),
    "nav.upload": ("上传数据", "Upload"),
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
    # users
    "auth.sign_in": ("登录", "Sign in"),
    "auth.sign_out": ("退出", "Sign out"),
    "auth.name": ("用户名", "User name"),
    "auth.password": ("密码", "Password"),
    "auth.failed": ("用户名或密码不正确", "Wrong user name or password"),
    "role.viewer": ("查看者", "viewer"),
    "role.editor": ("编辑", "editor"),
    "role.admin": ("管理员", "admin"),
    # editing
    "editing.upload_title": ("上传更新数据", "Upload updated data"),
    "editing.upload_intro": ("先检查文件：没有错误时，才能保存为新版本。地图在保存前不会改变。",
                             "Check the file first: only a file without errors can be stored as a new version. "
                             "The map does not change until then."),
    "editing.layer": ("图层", "Layer"),
    "editing.layer.grids": ("网格", "Grids"),
    "editing.layer.centers": ("党群服务中心", "Service centres"),
    "editing.layer.districts": ("区县界", "District boundaries"),
    "editing.file": ("文件", "File"),
    "editing.file_hint": ("GeoJSON、Shapefile（.zip 压缩包）、GeoPackage 或 KML",
                          "GeoJSON, zipped Shapefile, GeoPackage or KML"),
    "editing.message": ("更新说明", "Message"),
    "editing.message_placeholder": ("例如：海曙区网格调整", "e.g. Haishu grids redrawn"),
    "editing.advanced": ("高级选项", "Advanced options"),
    "editing.source_crs": ("源坐标系", "Source CRS"),
    "editing.source_crs_hint": ("留空则使用文件自带的坐标系，例如 EPSG:4549",
                                "Empty: the file's own, e.g. EPSG:4549"),
    "editing.encoding": ("字符编码", "Encoding"),
    "editing.encoding_hint": ("留空则自动识别，例如 GBK", "Empty: detected, e.g. GBK"),
    "editing.coordinates": ("坐标类型", "Coordinates"),
    "editing.coordinates.wgs84": ("WGS84（GPS）", "WGS84 (GPS)"),
    "editing.coordinates.gcj02": ("GCJ-02（高德、腾讯）", "GCJ-02 (Amap, Tencent)"),
    "editing.coordinates.bd09": ("BD-09（百度）", "BD-09 (Baidu)"),
    "editing.mode": ("更新方式", "Mode"),
    "editing.mode.replace": ("整体替换图层", "Replace the whole layer"),
    "editing.mode.merge": ("按编号合并（只替换文件中的要素）", "Merge by key (replace only the features in the file)"),
    "editing.check": ("检查", "Check"),
    "editing.checking": ("正在检查…", "Checking…"),
    "editing.store": ("保存为新版本", "Store as new version"),
    "editing.storing": ("正在保存…", "Storing…"),
    "editing.result": ("检查结果", "Check result"),
    "editing.features": ("要素数", "Features"),
    "editing.current_version": ("当前版本", "Current version"),
    "editing.no_version": ("无", "none"),
    "editing.format": ("格式", "Format"),
    "editing.crs": ("坐标系", "CRS"),
    "editing.notes": ("说明", "Notes"),
    "editing.errors": ("错误", "Errors"),
    "editing.warnings": ("警告", "Warnings"),
    "editing.problems": ("问题列表", "Problems"),
    "editing.col_kind": ("类别", "Kind"),
    "editing.col_index": ("要素序号", "Feature"),
    "editing.col_key": ("编号", "Key"),
    "editing.col_field": ("字段", "Field"),
    "editing.col_message": ("问题", "Message"),
    "editing.error": ("错误", "error"),
    "editing.warning": ("警告", "warning"),
    "editing.whole_layer": ("整个图层", "whole layer"),
    "editing.geometry": ("几何形状", "geometry"),
    "editing.no_problems": ("没有发现问题。", "No problems found."),
    "editing.row_hint": ("点击表格中的一行，在地图上定位该要素。", "Click a row to zoom to its feature."),
    "editing.legend_error": ("有错误", "Has errors"),
    "editing.legend_warning": ("有警告", "Has warnings"),
    "editing.legend_ok": ("无问题", "No problems"),
    "editing.preview": ("文件内容预览", "What the file contains"),
    "editing.preview_empty": ("文件中没有可显示的要素。", "The file has no features to show."),
    "editing.ok_to_store": ("没有错误，可以保存为新版本。", "No errors: the file can be stored as a new version."),
    "editing.has_errors": ("文件有错误，不能保存。请修改后重新检查。",
                           "The file has errors and cannot be stored. Fix them, then check again."),
    "editing.stored": ("已保存为第 {n} 版。", "Stored version {n}."),
    "editing.conflict": ("在您检查之后，其他人已上传了新版本。请重新检查。",
                         "Someone else uploaded a new version meanwhile. Check again."),
    "editing.changed": ("文件或选项已更改，请重新检查。", "The file or the options changed: check again."),
    "editing.no_file": ("请先选择文件。", "Choose a file first."),
    "editing.network_error": ("无法连接服务器，请稍后再试。", "The server could not be reached; try again."),
    "editing.failed": ("操作失败", "That did not work"),
    "editing.history_of": ("版本历史：", "Version history: "),
    "editing.view_history": ("查看版本历史", "See the version history"),
    "editing.upload_new": ("上传新版本", "Upload a new version"),
    "editing.version": ("版本", "Version"),
    "editing.time": ("时间", "Time"),
    "editing.author": ("上传人", "Author"),
    "editing.download": ("下载", "Download"),
    "editing.actions": ("操作", "Actions"),
    "editing.restore": ("恢复此版本", "Restore"),
    "editing.restore_confirm": ("将第 {n} 版恢复为新的当前版本？", "Restore version {n} as the new current version?"),
    "editing.restore_conflict": ("在您打开本页之后，其他人已上传了新版本。请刷新页面后重试。",
                                 "Someone else uploaded a new version since this page was opened. "
                                 "Reload the page, then try again."),
    "editing.current": ("当前版本", "current"),
    "editing.no_versions": ("该图层还没有任何版本。", "This layer has no versions yet."),
    # comparing versions
    "diff.title": ("版本对比", "Changes"),
    "diff.added": ("新增", "Added"),
    "diff.removed": ("删除", "Removed"),
    "diff.changed": ("修改", "Changed"),
    "diff.status": ("变化", "Change"),
    "diff.fields": ("修改的字段", "Changed fields"),
    "diff.area_delta": ("面积变化（m²）", "Area change (m²)"),
    "diff.compare": ("与上一版本对比", "Compare with the previous version"),
    "diff.heading": ("版本 {a} → 版本 {b}", "Version {a} → version {b}"),
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
