"""The city map page against the naive folium page, in headless Chromium, in one run.

    .venv/bin/python benchmarks/bench_map.py [--loads 3] [--screenshot /tmp/gridmap-city.png]

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``; never
``playwright install``) and the ``playwright`` package (requirements-dev.txt).

**Ours**: ``/`` served by the real server (``python -m server``, one worker,
``GRIDMAP_BASEMAP=none``) on the Ningbo demo.  The page carries no data and fetches
light, gzipped layers.

**Naive**: what a folium user writes first, with the same grids as stored (every field)::

    m = folium.Map(location=..., zoom_start=9, tiles=None)
    folium.GeoJson(grids_gdf, tooltip=folium.GeoJsonTooltip(fields=["name", "community"])).add_to(m)
    m.save(tmpfile)

served plain (no gzip) from Python's ``http.server`` on 127.0.0.1.  ``tiles=None`` as
ours draws no base map either.  The saved page references leaflet, jQuery, Bootstrap,
awesome-markers and Font Awesome on CDNs, which cannot be reached here; to work
offline, its HTML is rewritten: leaflet.js and leaflet.css point to local copies
served from the installed ``xstatic.pkg.leaflet`` package (the very files our server
serves), and the jQuery / Bootstrap / awesome-markers / Font Awesome / glyphicons
references are dropped (this page uses none of them: no popups, no markers).  Both
pages are loaded with every other host unresolvable, and the run stops if a
rewritten page still references another host.

For each page, ``--loads`` (3) loads, each in a fresh browser context (fresh profile
state, HTTP cache disabled), after one warm-up load that fills the server's caches:

- **bytes**: the sum over requests of CDP ``Network.loadingFinished.encodedDataLength``:
  what came over the wire, bodies as sent (gzipped where the server gzips) plus response
  headers.  The naive page is sent plain; its **gzipped** figure replaces each body by
  ``gzip.compress(body, 6)`` (headers kept) -- what it would weigh behind a gzipping
  server.  Our server gzips the map layers (not the page or leaflet.js), so the byte
  ratio uses naive *gzipped* / ours *as sent*: the comparison least favourable to us.
- **requests**: http(s) requests the page made.
- **time to draw**: ``performance.now()`` (milliseconds since navigation start) at the
  first animation frame where ours has ``<body data-gridmap-ready>`` (its layers shown at
  start are loaded), or where the naive page has fired ``load`` and shows every grid as an
  SVG path (``path.leaflet-interactive`` count >= the number of grids).  Median of the loads.

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import re
import statistics
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from _server import demo_data_dir, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing but 127.0.0.1 resolves
]
VIEWPORT = {"width": 1280, "height": 800}
NINGBO_CENTRE = (29.87, 121.55)

OURS_DRAWN_JS = "() => document.body && document.body.hasAttribute('data-gridmap-ready') ? performance.now() : 0"
NAIVE_DRAWN_JS = """(n) => document.readyState === 'complete'
    && document.querySelectorAll('path.leaflet-interactive').length >= n ? performance.now() : 0"""


@dataclass
class Load:
    draw_ms: float
    wire_bytes: int
    urls: list[str] = field(default_factory=list)
    sizes: dict[str, tuple[int, str]] = field(default_factory=dict)  # url -> (wire bytes, content-encoding)
    page_errors: list[str] = field(default_factory=list)
    gzipped_bytes: int = 0  # naive page: wire_bytes with every body gzipped


def load_once(browser, url: str, drawn_js: str, arg=None, screenshot: str | None = None) -> Load:
    """One load in a fresh context, cache disabled; bytes from CDP, draw time from the page."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sent: dict[str, str] = {}
    done: dict[str, int] = {}
    cdp.on("Network.requestWillBeSent", lambda e: sent.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.loadingFinished", lambda e: done.__setitem__(e["requestId"], e["encodedDataLength"]))
    cdp.on("Network.loadingFailed", lambda e: done.__setitem__(e["requestId"], 0))
    encodings: dict[str, str] = {}
    cdp.on("Network.responseReceived", lambda e: encodings.__setitem__(e["requestId"], next(
        (v for k, v in e["response"]["headers"].items() if k.lower() == "content-encoding"), "-")))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(url, wait_until="commit", timeout=120_000)
    draw_ms = page.wait_for_function(drawn_js, arg=arg, polling="raf", timeout=300_000).json_value()
    page.wait_for_load_state("networkidle", timeout=120_000)  # every response has finished arriving
    if screenshot:
        page.screenshot(path=screenshot)
    context.close()
    urls = [u for rid, u in sent.items() if u.startswith("http")]
    wire = sum(n for rid, n in done.items() if sent.get(rid, "").startswith("http"))
    sizes = {u: (int(done.get(rid, 0)), encodings.get(rid, "-")) for rid, u in sent.items() if u.startswith("http")}
    return Load(draw_ms, int(wire), urls=urls, sizes=sizes, page_errors=errors)


def measure(browser, url: str, drawn_js: str, loads: int, arg=None, screenshot: str | None = None):
    warm_up = load_once(browser, url, drawn_js, arg)
    runs = [load_once(browser, url, drawn_js, arg, screenshot=screenshot if i == 0 else None)
            for i in range(loads)]
    return warm_up, runs


# --- the naive page ---------------------------------------------------------------------------

def naive_page(grids, directory: Path) -> Path:
    import folium
    import xstatic.pkg.leaflet as leaflet

    m = folium.Map(location=NINGBO_CENTRE, zoom_start=9, tiles=None)
    folium.GeoJson(grids, tooltip=folium.GeoJsonTooltip(fields=["name", "community"])).add_to(m)
    saved = directory / "naive.html"
    m.save(str(saved))
    html = offline(saved.read_text(encoding="utf-8"))
    (directory / "index.html").write_text(html, encoding="utf-8")
    (directory / "leaflet").symlink_to(leaflet.BASE_DIR, target_is_directory=True)
    return directory / "index.html"


def offline(html: str) -> str:
    """Point leaflet at local copies; drop the other CDN scripts and stylesheets."""
    def script(match):
        url = match.group(1)
        return '<script src="/leaflet/leaflet.js"></script>' if re.search(r"/leaflet(@[\d.]+)?/dist/leaflet\.js$",
                                                                          url) else ""

    def stylesheet(match):
        url = match.group(1)
        return '<link rel="stylesheet" href="/leaflet/leaflet.css"/>' if re.search(
            r"/leaflet(@[\d.]+)?/dist/leaflet\.css$", url) else ""

    html = re.sub(r'<script src="(https?://[^"]+)"></script>', script, html)
    html = re.sub(r'<link rel="stylesheet" href="(https?://[^"]+)"\s*/?>', stylesheet, html)
    left = re.findall(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//[^"\'\s>]+', html)
    if left or "/leaflet/leaflet.js" not in html:
        raise SystemExit(f"the naive page still references other hosts (or lost leaflet): {left[:5]}")
    return html


class StaticServer:
    """http.server on 127.0.0.1 in a thread, plain (no gzip); remembers the bytes of each file it sent."""

    def __init__(self, directory: Path):
        self.sent: list[Path] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn

            def send_head(self):
                path = Path(self.translate_path(self.path))
                if path.is_dir():
                    path = path / "index.html"
                if path.is_file():
                    server.sent.append(path)
                return super().send_head()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def gzipped_equivalent(run: Load, files: list[Path]) -> int:
    """The run's wire bytes with every plain body replaced by its gzip.compress(level 6) size."""
    plain = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), compresslevel=6)) for p in files)
    return run.wire_bytes - plain + packed


# --- report -----------------------------------------------------------------------------------

def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=3, help="measured loads per page (median reported)")
    parser.add_argument("--screenshot", default="/tmp/gridmap-city.png", help="where to save a screenshot of ours")
    parser.add_argument("--naive-screenshot", default="/tmp/gridmap-naive.png")
    args = parser.parse_args()

    from geodata.store import open_store

    with demo_data_dir() as data_dir:
        run(args, data_dir, open_store(data_dir).read("grids"))


def run(args, data_dir: str, grids) -> None:
    from playwright.sync_api import sync_playwright

    print(f"demo: {len(grids)} grids; Chromium at {CHROMIUM}, {VIEWPORT['width']}x{VIEWPORT['height']}, "
          f"{args.loads} loads per page after one warm-up, fresh context each, cache disabled", flush=True)

    with tempfile.TemporaryDirectory(prefix="gridmap-naive-") as tmp, sync_playwright() as driver:
        naive_html = naive_page(grids, Path(tmp))
        page_bytes = naive_html.stat().st_size
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            with running_server(data_dir, WORKERS=1) as (base, _):
                ours_warm, ours = measure(browser, base + "/", OURS_DRAWN_JS, args.loads,
                                          screenshot=args.screenshot)
            with StaticServer(Path(tmp)) as static:
                naive = []
                naive_warm = load_once(browser, static.base + "/", NAIVE_DRAWN_JS, len(grids))
                for i in range(args.loads):
                    static.sent.clear()
                    naive.append(load_once(browser, static.base + "/", NAIVE_DRAWN_JS, len(grids),
                                           screenshot=args.naive_screenshot if i == 0 else None))
                    naive[-1].gzipped_bytes = gzipped_equivalent(naive[-1], static.sent)
        finally:
            browser.close()

    for name, runs in (("ours", ours), ("naive", naive)):
        outside = [u for r in runs for u in r.urls if not u.startswith("http://127.0.0.1:")]
        errors = sorted({e for r in runs for e in r.page_errors})
        if outside or errors:
            print(f"  note: {name}: requests elsewhere {outside[:3]}, page errors {errors[:3]}")

    ours_bytes = statistics.median(r.wire_bytes for r in ours)
    ours_ms = statistics.median(r.draw_ms for r in ours)
    naive_bytes = statistics.median(r.wire_bytes for r in naive)
    naive_gz = statistics.median(r.gzipped_bytes for r in naive)
    naive_ms = statistics.median(r.draw_ms for r in naive)

    print(f"ours  (/ on the real server):   {mb(ours_bytes)} over the wire (layers gzipped), "
          f"{len(ours[0].urls)} requests, drawn in {ours_ms:.0f} ms (median; loads "
          f"{', '.join(f'{r.draw_ms:.0f}' for r in ours)} ms; first load, server caches cold: "
          f"{ours_warm.draw_ms:.0f} ms)")
    print(f"naive (folium.GeoJson, 1 page): {mb(naive_bytes)} over the wire plain "
          f"({mb(page_bytes)} HTML), {mb(naive_gz)} if gzipped, {len(naive[0].urls)} requests, "
          f"drawn in {naive_ms:.0f} ms (median; loads {', '.join(f'{r.draw_ms:.0f}' for r in naive)} ms; "
          f"warm-up {naive_warm.draw_ms:.0f} ms)")
    print(f"bytes: naive gzipped / ours as sent = {naive_gz / ours_bytes:.1f}x "
          f"(naive plain / ours = {naive_bytes / ours_bytes:.1f}x; goal >= 8x)")
    print(f"time to draw: naive / ours = {naive_ms / ours_ms:.1f}x")
    for name, runs in (("ours", ours), ("naive", naive)):
        paths = ", ".join(f"{re.sub(r'^http://127[.]0[.]0[.]1:[0-9]+', '', u)} {mb(n)}"
                          + (f" ({enc})" if enc != "-" else "") for u, (n, enc) in runs[0].sizes.items())
        print(f"  {name} requests: {paths}")
    print(f"screenshots: ours {args.screenshot}, naive {args.naive_screenshot}")


if __name__ == "__main__":
    main()
