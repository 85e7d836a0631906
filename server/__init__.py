"""gridmap's web application: thin Flask adapters over ``geodata`` and ``maps``."""

from __future__ import annotations

import contextlib
import os
import secrets
import weakref
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app
from flask_compress import Compress

from geodata.cache import VersionCache
from geodata.catalog import Catalog
from geodata.jobs import JobPool
from geodata.store import FileStore, Store
from maps.coverage_map import Basemap

from . import config as settings
from .config import analysis_params


@dataclass(frozen=True)
class Services:
    """What routes reach through ``app.extensions["gridmap"]``."""

    store: Store
    catalog: Catalog
    display: VersionCache  # light map layers, per layer version
    responses: VersionCache  # rendered documents (summaries, downloads), per analysis or version
    pages: VersionCache  # items pages, per data version and URL (so a strong ETag names exact bytes)
    basemap: Basemap
    jobs: JobPool  # heavy work (what-ifs, recommendations, upload checks), bounded; started at its first job


def services() -> Services:
    return current_app.extensions["gridmap"]


def create_app(config: dict | None = None) -> Flask:
    """Build the app from defaults, ``GRIDMAP_*`` variables and ``config`` (options or a test's)."""
    values = settings.load(config)
    app = Flask(__name__)
    app.config.update(values)
    app.config["MAX_CONTENT_LENGTH"] = values["MAX_UPLOAD_MB"] * 2**20  # larger requests get 413
    app.json.ensure_ascii = False  # Chinese names stay readable in JSON
    app.json.sort_keys = False
    # gzip text responses on the fly; map data is gzipped once per version instead (see pages._send)
    app.config.setdefault("COMPRESS_MIMETYPES", ["text/html", "text/css", "text/csv", "text/javascript",
                                                 "application/javascript", "application/json",
                                                 "application/geo+json", "application/vnd.google-earth.kml+xml",
                                                 "application/vnd.oai.openapi+json", "application/schema+json"])
    app.config.setdefault("COMPRESS_ALGORITHM", "gzip")
    Compress(app)

    store = FileStore(values["DATA_DIR"])
    app.config["SECRET_KEY"] = values["SECRET_KEY"] or _stored_secret(Path(values["DATA_DIR"]))
    if values["DEMO"]:
        from geodata.demo import install_if_empty

        install_if_empty(store)
    basemap = Basemap.from_setting(values["BASEMAP"], values["TIANDITU_KEY"])  # a bad setting fails at start
    jobs = JobPool(processes=values["JOB_PROCESSES"], timeout_s=values["JOB_TIMEOUT_S"],
                   memory_mb=values["JOB_MEMORY_MB"], queue=values["JOB_QUEUE"],
                   waiters=max(1, values["THREADS"] - 2))  # two threads always left for readers
    # its processes end with the app (tests make many apps); at exit, pebble's own handler stops them
    weakref.finalize(app, jobs.close_later).atexit = False
    catalog = Catalog(store, analysis_params(values), jobs=jobs)
    app.extensions["gridmap"] = Services(store=store, catalog=catalog, display=VersionCache(4),
                                         responses=VersionCache(32), pages=VersionCache(256), basemap=basemap,
                                         jobs=jobs)

    from . import api, assets, auth, dashboard, editing, errors, i18n, pages, planning, uploads

    auth.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(uploads.blueprint)
    app.register_blueprint(planning.blueprint)
    app.register_blueprint(editing.blueprint)
    app.register_blueprint(assets.blueprint)
    app.register_blueprint(dashboard.blueprint)
    i18n.register(app)
    app.register_blueprint(pages.blueprint)
    errors.register(app)
    return app


def _stored_secret(data_dir: Path) -> str:
    """A random key kept in the data dir, so sessions survive restarts and all workers agree."""
    path = data_dir / "secret_key"
    if not path.exists():
        tmp = data_dir / f".secret_key.{os.getpid()}"
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic and never overwrites: the first process to get here wins
        tmp.unlink()
    return path.read_text().strip()
