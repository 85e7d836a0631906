/* gridmap's map behaviour: layers drawn from the server's vector tiles (Leaflet.VectorGrid) or fetched
 * whole by URL, tooltips and popups built from text nodes (feature values never become HTML), place names,
 * search, full screen, and planning (recommended sites, centres proposed by a click and the coverage they
 * would add).  The Python builders in maps/ emit only calls to these functions with JSON options. */
(function () {
  "use strict";
  var registry = window.gridmap = window.gridmap || {layers: {}, pending: [], maps: []};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // a 16-px outline icon drawn as SVG (symbols such as the print one are missing from many fonts)
  function outlineIcon(d, strokeWidth) {
    var ns = "http://www.w3.org/2000/svg", icon = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
    icon.setAttribute("viewBox", "0 0 16 16"); icon.setAttribute("width", "16"); icon.setAttribute("height", "16");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none"); path.setAttribute("stroke", "#333"); path.setAttribute("stroke-width", String(strokeWidth));
    icon.appendChild(path);
    return icon;
  }

  function formatValue(value, format) {
    if (format === "percent" && typeof value === "number") { return (value * 100).toFixed(1) + "%"; }
    if (format === "number" && typeof value === "number") { return value.toLocaleString(); }
    return String(value);
  }

  // [{field, label, format?, labels?}] -> a box of "label: value" rows, as text
  function fieldRows(props, fields) {
    var box = el("div", "gm-fields");
    fields.forEach(function (f) {
      var value = props[f.field];
      if (value === null || value === undefined || value === "") { return; }
      if (f.labels && Object.prototype.hasOwnProperty.call(f.labels, value)) { value = f.labels[value]; }
      var row = el("div", "gm-row");
      row.appendChild(el("b", null, f.label + ": "));
      row.appendChild(document.createTextNode(formatValue(value, f.format)));
      box.appendChild(row);
    });
    return box;
  }

  // links: [{label, href: "/path?x={field}"}]; each {field} is URL-encoded from the properties
  function linkRow(props, links) {
    var row = el("div", "gm-links");
    links.forEach(function (link) {
      var missing = false;
      var href = link.href.replace(/\{(\w+)\}/g, function (_, field) {
        var v = props[field];
        if (v === null || v === undefined) { missing = true; return ""; }
        return encodeURIComponent(String(v));
      });
      if (missing && !link.optional) { return; }
      href = href.replace(/[?&]\w+=(?=&|$)/g, "");  // drop parameters left empty
      var a = el("a", null, link.label);
      a.href = href;
      row.appendChild(a);
    });
    return row;
  }

  function styleFor(opts, feature) {
    var key = opts.styleBy ? feature.properties[opts.styleBy] : null;
    return opts.styles[key] || opts.styles["*"] || {};
  }

  function pointLayer(opts, feature, latlng) {
    var style = styleFor(opts, feature);
    if (opts.points === "circle") { return L.circleMarker(latlng, style); }
    if (opts.points === "catchment") {
      var radius = opts.radii[feature.properties[opts.styleBy]] || 0;
      return L.circle(latlng, Object.assign({radius: radius, interactive: false}, style));
    }
    // "icon": a small CSS shape per class, e.g. gm-center gm-center-district
    return L.marker(latlng, {icon: L.divIcon({className: style.className || "gm-icon",
      iconSize: style.iconSize || [12, 12]}), keyboard: false, title: String(feature.properties.name || "")});
  }

  // The drawing order is fixed by each layer's kind (opts.stack, maps/layers.py STACK), not by when
  // its data arrives: every vector layer shares one canvas (one canvas per pane would stop the events
  // of the layers under it), which draws in the order features were added; so whenever a layer's
  // features are (re)added, the layers that belong above it are brought back to the front, in order.
  registry.stacked = registry.stacked || [];
  function stack(map, layer, rank) {
    var entry = {map: map, layer: layer, rank: rank, seq: registry.stacked.length};
    registry.stacked.push(entry);
    return entry;
  }
  function restack(entry) {
    registry.stacked.filter(function (other) {
      return other.map === entry.map && (other.rank > entry.rank || (other.rank === entry.rank && other.seq > entry.seq)) &&
        entry.map.hasLayer(other.layer) && other.layer.bringToFront;
    }).sort(function (a, b) { return a.rank - b.rank || a.seq - b.seq; })
      .forEach(function (other) { other.layer.bringToFront(); });
  }

  registry.geojsonLayer = function (map, opts) {
    var layer = L.geoJSON(null, {
      style: function (feature) { return styleFor(opts, feature); },
      pointToLayer: function (feature, latlng) { return pointLayer(opts, feature, latlng); },
      interactive: opts.interactive !== false
    });
    // bound once on the group, not on each of 8,000 features: Leaflet hands over the feature hovered
    if (opts.tooltip && opts.tooltip.length) {
      layer.bindTooltip(function (item) { return fieldRows(item.feature.properties, opts.tooltip); },
        {sticky: opts.points !== "icon"});
    }
    if (opts.popup && opts.popup.length) {
      layer.bindPopup(function (item) {
        var box = fieldRows(item.feature.properties, opts.popup);
        if (opts.links) { box.appendChild(linkRow(item.feature.properties, opts.links)); }
        return box;
      });
    }
    var shown = opts.cluster ? L.markerClusterGroup({disableClusteringAtZoom: opts.cluster,
      showCoverageOnHover: false, chunkedLoading: true}) : layer;
    registry.layers[opts.name] = layer;  // the features
    registry.shown = registry.shown || {};
    registry.shown[opts.name] = shown;  // what the layer control adds and removes
    registry.loaded = registry.loaded || [];  // layer names, in the order their data arrived
    var entry = stack(map, layer, opts.stack || 0);
    layer.on("add", function () { restack(entry); });  // switched on again: its features drew on top
    if (opts.data) {
      layer.addData(opts.data);
      if (opts.dim) { dimOutside(map, opts.data, opts.dim); }
      if (opts.show) { shown.addTo(map); }
      share(opts.key, shown, null);
      return shown;
    }
    var loading = null;
    function load() {  // fetched once, when the layer is first shown
      loading = loading || fetch(opts.url, {credentials: "same-origin"})
        .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.url); } return r.json(); })
        .then(function (data) {
          layer.addData(data);
          if (opts.cluster) { shown.addLayers(layer.getLayers()); }
          restack(entry);
          registry.loaded.push(opts.name);
          layer.fire("gridmap:loaded");
        })
        .catch(function (err) { console.warn("gridmap: could not load layer " + opts.name, err); });
      return loading;
    }
    if (opts.show) { shown.addTo(map); registry.pending.push(load()); } else { shown.once("add", load); }
    share(opts.key, shown, load);
    return shown;
  };

  // --- layers drawn from vector tiles (OGC API – Tiles, Mapbox Vector Tiles) by Leaflet.VectorGrid ----
  // Tiles carry only what the map shows; a popup asks the server for the whole feature by its key
  // (opts.itemUrl, "{id}" in it).  VectorGrid draws each tile on a canvas of its own, so one tile layer
  // over another would take every pointer event: the tiles take none, and a pointer on the map is
  // matched here against the features of the tiles under it, top layer first (as one shared canvas did).
  registry.tileLayers = registry.tileLayers || [];  // [{map, layer, opts}]; opts.zIndex: the drawing order

  function tileStyle(opts) {
    return function (props, zoom) {
      if (opts.kinds && opts.kinds.indexOf(props.kind) < 0) { return []; }  // another layer's gap kind
      var key = opts.styleBy ? props[opts.styleBy] : null;
      var style = opts.styles[key] || opts.styles["*"];
      if (!style || zoom < (style.minZoom || 0)) { return []; }  // e.g. community centres from street scale
      // VectorGrid starts from L.Path's options (no fill): a style with a fill colour fills
      return Object.assign({fill: style.fillColor !== undefined || style.fillOpacity !== undefined}, style,
        {interactive: false});
    };
  }

  // Leaflet.VectorGrid's protobuf layer, which asks for no tile below the layer's first zoom (without
  // Leaflet's minZoom, which would grey the layer out in the layer control there), and none before the page
  // has set its first view (the shared URL's, or the data's extent): a province's tiles at the city's zoom
  // folium starts at would be asked for, then thrown away.
  // Each tile is drawn 512 px wide from the server's tile of the zoom above (the same ground): a quarter of
  // the requests a view makes (a browser asks a host six at a time), the same detail on screen.
  var TILE_PX = 512, ZOOM_OFFSET = 1;
  var GridmapTiles = L.VectorGrid.Protobuf.extend({
    _isValidTile: function (coords) {
      return coords.z - ZOOM_OFFSET >= (this.gridmapOptions.minZoom || 0) &&
        L.VectorGrid.Protobuf.prototype._isValidTile.call(this, coords);
    },
    _getVectorTilePromise: function (coords) {
      var asked = L.point(coords.x, coords.y);
      asked.z = coords.z - ZOOM_OFFSET;
      return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, asked);
    },
    _update: function (center) {
      if (!this._map || !this._map._gridmapViewSet) { return; }
      return L.VectorGrid.Protobuf.prototype._update.call(this, center);
    }
  });
  function viewSet(map) {
    if (map._gridmapViewSet) { return; }
    map._gridmapViewSet = true;
    registry.tileLayers.forEach(function (e) { if (e.map === map && map.hasLayer(e.layer)) { e.layer._update(); } });
  }

  var anonymous = 0;
  registry.vectorTileLayer = function (map, opts) {
    if (!map.getPane("gridmap-tiles")) {  // above a base map, below the overlay pane's outlines and markers
      map.createPane("gridmap-tiles").style.zIndex = 350;
    }
    var layer = new GridmapTiles(opts.url, {
      pane: "gridmap-tiles", rendererFactory: L.canvas.tile, interactive: false, zIndex: opts.zIndex,
      vectorTileLayerStyles: (function () { var s = {}; s[opts.layer] = tileStyle(opts); return s; })(),
      // kept per tile (VectorGrid stores features only when it has an id for them): what the pointer meets
      getFeatureId: function (f) {  // a feature without a key (an overview's dissolved area) gets one of its own
        var id = f.properties[opts.idField];
        return id !== undefined && id !== null ? id : "gm-" + (++anonymous);
      },
      maxZoom: 18, keepBuffer: 1, tileSize: TILE_PX,
      opacity: opts.opacity === undefined || opts.opacity === null ? 1 : opts.opacity,  // the whole layer's
      bounds: opts.bounds ? L.latLngBounds(opts.bounds).pad(0.02) : undefined,  // no tile asked for beyond the data
      fetchOptions: {credentials: "same-origin"}
    });
    layer.gridmapOptions = opts;
    registry.tileLayers.push({map: map, layer: layer, opts: opts});
    registry.layers[opts.name] = layer;
    registry.shown = registry.shown || {};
    registry.shown[opts.name] = layer;
    pointer(map);
    // loaded: its tiles in view have come, or the view is out of its zoom range (Leaflet asks for none then)
    var firstLoad = new Promise(function (resolve) {
      layer.once("load remove", resolve);  // removed (a shared view without it): nothing to wait for
      function outOfRange() { if (map.getZoom() - ZOOM_OFFSET < (opts.minZoom || 0)) { resolve(); } }
      L.Util.requestAnimFrame(outOfRange);  // after the page's scripts have set the view
      map.on("zoomend", outOfRange);
    });
    if (opts.show) { layer.addTo(map); registry.pending.push(firstLoad); }
    share(opts.key, layer, function () { return firstLoad; });
    return layer;
  };

  // The features of one tile layer's tiles under a map point: [{props, symbolizer}], last drawn first.
  function tileFeaturesAt(entry, latlng) {
    var layer = entry.layer, map = entry.map, zoom = map.getZoom();
    if (!layer._vectorTiles || !map.hasLayer(layer)) { return []; }
    var size = layer.getTileSize(), point = map.project(latlng, zoom);
    var coords = point.unscaleBy(size).floor();
    var renderer = layer._vectorTiles[coords.x + ":" + coords.y + ":" + zoom];
    if (!renderer || !renderer._features) { return []; }
    var local = point.subtract(coords.scaleBy(size)), found = [];
    Object.keys(renderer._features).forEach(function (id) {
      var f = renderer._features[id].feature;
      if (!f._parts && !f._point) { return; }
      if (!f._pxBounds) { f.makeInteractive(); }
      // an outline is met on its stroke only, as Leaflet's own canvas meets it
      var hit = f instanceof L.Polyline && !(f instanceof L.Polygon && f.options.fill)
        ? L.Polyline.prototype._containsPoint.call(f, local) : f._containsPoint(local);
      if (hit) { found.push({props: f.properties, symbolizer: f}); }
    });
    return found.reverse();
  }

  // The topmost interactive feature at a point: {entry, props} or null.  ``accept`` (optional): only the
  // layers it accepts (editing picks a grid under a gap's outline, not the outline).
  registry.featureAt = function (map, latlng, accept) {
    var entries = registry.tileLayers.filter(function (e) {
      return e.map === map && e.opts.interactive !== false && (!accept || accept(e));
    })
      .sort(function (a, b) { return b.opts.zIndex - a.opts.zIndex; });
    for (var i = 0; i < entries.length; i++) {
      var hits = tileFeaturesAt(entries[i], latlng);
      if (hits.length) { return {entry: entries[i], props: hits[0].props}; }
    }
    return null;
  };

  // Every feature in the tiles a layer holds now (for tests and the benchmark): their properties.
  registry.tileFeatures = function (name) {
    var layer = registry.layers[name], out = [];
    if (!layer || !layer._vectorTiles) { return out; }
    Object.keys(layer._vectorTiles).forEach(function (key) {
      var features = layer._vectorTiles[key]._features || {};
      Object.keys(features).forEach(function (id) { out.push(features[id].feature.properties); });
    });
    return out;
  };

  function itemUrl(opts, id) { return opts.itemUrl.replace("{id}", encodeURIComponent(String(id))); }

  // A popup of a feature fetched by key: its fields as text, its links; a note while it loads.
  function openFeaturePopup(map, opts, id, latlng) {
    var box = el("div", "gm-fields", opts.loading || "…");
    var popup = L.popup({maxWidth: 320, autoPan: false}).setLatLng(latlng).setContent(box).openOn(map);
    return fetch(itemUrl(opts, id), {credentials: "same-origin", headers: {Accept: "application/geo+json"}})
      .then(readJson)
      .then(function (feature) {
        var props = feature.properties || {};
        var content = fieldRows(props, opts.popup && opts.popup.length ? opts.popup : opts.tooltip);
        if (opts.links && opts.links.length) { content.appendChild(linkRow(props, opts.links)); }
        content.setAttribute("data-id", String(id));
        popup.setContent(content);
        return feature;
      })
      .catch(function (err) { box.textContent = String(err.message || err); return null; });
  }
  registry.openFeaturePopup = openFeaturePopup;

  // One pointer handler a map: hover shows the top feature's tooltip (from the tile's properties),
  // a click opens its popup (fetched by key).  Not while centres are being placed (the what-if's click).
  function pointer(map) {
    if (map._gridmapPointer) { return; }
    map._gridmapPointer = true;
    var tooltip = L.tooltip({sticky: true, direction: "auto"}), pending = null, last = null;
    function placing() { return L.DomUtil.hasClass(map.getContainer(), "gm-placing"); }
    map.on("mousemove", function (e) {
      last = e;
      if (pending) { return; }
      pending = L.Util.requestAnimFrame(function () {
        pending = null;
        var hit = placing() ? null : registry.featureAt(map, last.latlng);
        var opts = hit && hit.entry.opts;
        map.getContainer().style.cursor = hit && (opts.popup.length || opts.tooltip.length) ? "pointer" : "";
        if (hit && opts.tooltip.length) {
          tooltip.setContent(fieldRows(hit.props, opts.tooltip)).setLatLng(last.latlng);
          if (!map.hasLayer(tooltip)) { map.openTooltip(tooltip); }
        } else if (map.hasLayer(tooltip)) { map.closeTooltip(tooltip); }
      });
    });
    map.on("mouseout", function () { if (map.hasLayer(tooltip)) { map.closeTooltip(tooltip); } });
    map.on("click", function (e) {
      if (placing()) { return; }
      var hit = registry.featureAt(map, e.latlng);
      if (!hit) { return; }
      var opts = hit.entry.opts, id = hit.props[opts.idField];
      if (map.hasLayer(tooltip)) { map.closeTooltip(tooltip); }
      if (id !== undefined && id !== null && opts.itemUrl && (opts.popup.length || opts.tooltip.length)) {
        openFeaturePopup(map, opts, id, e.latlng);
      }
    });
  }

  // Place names: each level's from its zoom on (opts.levels: [{level, minZoom, className}], most important
  // first), asked for in the view (opts.url, "{level}" in it), placed largest first and left out where one
  // would overlap a name already placed.  Text only (a text node), in a pane that takes no pointer events.
  registry.labelLayer = function (map, opts) {
    if (!map.getPane("gridmap-labels")) {
      var pane = map.createPane("gridmap-labels");
      pane.style.zIndex = 450;  // above the tiles and outlines, below markers and popups
      pane.style.pointerEvents = "none";
    }
    var layer = L.layerGroup([], {pane: "gridmap-labels"}), asked = 0, timer = null;
    registry.layers[opts.name] = layer;
    registry.shown = registry.shown || {};
    registry.shown[opts.name] = layer;
    function place(found) {
      layer.clearLayers();
      var boxes = [];
      found.forEach(function (group) {
        group.names.forEach(function (item) {
          var p = map.latLngToContainerPoint([item[1], item[0]]), size = group.size;
          var w = String(item[2]).length * size * 0.62 + 8, h = size + 6;  // CJK glyphs are about 1em
          var box = L.bounds([p.x - w / 2, p.y - h / 2], [p.x + w / 2, p.y + h / 2]);
          if (boxes.some(function (b) { return b.intersects(box); })) { return; }
          boxes.push(box);
          var text = el("span", null, item[2]);
          L.marker([item[1], item[0]], {pane: "gridmap-labels", interactive: false, keyboard: false,
            icon: L.divIcon({className: "gm-label " + group.className, html: text, iconSize: [w, h]})}).addTo(layer);
        });
      });
      layer.fire("gridmap:labelled");
    }
    function refresh() {
      if (!map.hasLayer(layer)) { return; }
      var mine = ++asked, zoom = map.getZoom(), b = map.getBounds().pad(0.1);
      var bbox = [Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90), Math.min(b.getEast(), 180),
        Math.min(b.getNorth(), 90)].map(function (v) { return v.toFixed(4); }).join(",");
      var levels = opts.levels.filter(function (l) { return zoom >= l.minZoom; });
      Promise.all(levels.map(function (l) {
        return fetch(opts.url.replace("{level}", l.level) + "?bbox=" + bbox, {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (names) { return {names: names, className: l.className, size: l.size}; });
      })).then(function (found) { if (mine === asked) { place(found); } })
        .catch(function (err) { console.warn("gridmap: could not load place names", err); });
    }
    map.on("moveend", function () { clearTimeout(timer); timer = setTimeout(refresh, 100); });
    layer.on("add", refresh);
    if (opts.show) { layer.addTo(map); }
    share(opts.key, layer, null);
    return layer;
  };

  // A unit's map: everything outside the unit under a veil (the world with the unit's rings as holes).
  function dimOutside(map, data, style) {
    var holes = [];
    (data.features || []).forEach(function (f) {
      var g = f.geometry, polygons = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
      polygons.forEach(function (p) { holes.push(p[0].map(function (xy) { return [xy[1], xy[0]]; })); });
    });
    var world = [[-89, -360], [-89, 360], [89, 360], [89, -360]];
    L.polygon([world].concat(holes), Object.assign({stroke: false, fillColor: "#ffffff", fillOpacity: 0.6,
      interactive: false, className: "gm-dim"}, style)).addTo(map);
  }

  // Layers a shared URL may name, by their stable key (never by their label, which is translated).
  registry.keyed = registry.keyed || {};  // key -> {layer: what the control switches, load: its data, once}
  function share(key, layer, load) {
    if (key) { registry.keyed[key] = {layer: layer, load: load || null}; }
  }

  // Search through the server (/api/search): codes, units, grids and centres, each hit named with its
  // parents; choosing one zooms to it, outlines it and opens its popup when its feature is on the map.
  registry.searchControl = function (map, opts) {
    var control = L.control({position: "topleft"});
    var outline = null;  // the chosen hit's outline
    control.onAdd = function () {
      var box = el("form", "gm-search leaflet-bar");
      box.setAttribute("role", "search");
      var input = el("input");
      input.type = "search";
      input.placeholder = opts.placeholder;
      input.setAttribute("aria-label", opts.placeholder);
      input.setAttribute("autocomplete", "off");
      var list = el("ul", "gm-search-hits");
      list.setAttribute("role", "listbox");
      var message = el("div", "gm-search-message");
      message.setAttribute("role", "status");
      box.appendChild(input); box.appendChild(list); box.appendChild(message);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);

      var hits = [], asked = 0, timer = null;
      function ask(query, then) {
        var mine = ++asked;  // answers to older queries are dropped
        fetch(opts.url + "?" + new URLSearchParams({q: query, limit: "8"}), {credentials: "same-origin"})
          .then(function (r) { return r.ok ? r.json() : {hits: []}; })
          .then(function (body) { if (mine === asked) { show(body.hits || []); if (then) { then(); } } })
          .catch(function () { if (mine === asked) { show([]); } });
      }
      function show(found) {
        hits = found;
        list.textContent = "";
        found.forEach(function (hit, i) {
          var item = el("li", "gm-search-hit");
          item.setAttribute("role", "option");
          item.appendChild(el("b", null, hit.name));
          if (hit.parents.length) { item.appendChild(el("span", "gm-search-parents", " · " + hit.parents.join(" · "))); }
          item.appendChild(el("span", "gm-search-kind", opts.kinds[hit.kind] || hit.kind));
          item.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
          list.appendChild(item);
        });
        message.textContent = found.length || !input.value.trim() ? "" : opts.notFound;
      }
      function choose(i) {
        var hit = hits[i];
        if (!hit) { return; }
        input.value = hit.name;
        list.textContent = "";
        var b = hit.bbox;
        map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {maxZoom: hit.kind === "center" ? 17 : 16});
        // a grid or a centre: its whole feature, asked for by key, is outlined and its popup opened
        var drawn = registry.layers[hit.kind === "center" ? opts.centersLayer : opts.gridsLayer];
        if ((hit.kind === "grid" || hit.kind === "center") && drawn && drawn.gridmapOptions) {
          openFeaturePopup(map, drawn.gridmapOptions, hit.id, L.latLng((b[1] + b[3]) / 2, (b[0] + b[2]) / 2))
            .then(function (feature) { if (feature) { drawOutline(feature, hit.id); } });
          return;
        }
        var source = opts.collections[hit.kind];
        var url = hit.unit && source ? opts.itemsUrl.replace("{collection}", source) + "?" +
          new URLSearchParams(unitFilter(hit)) + "&limit=1" : null;
        if (url) {
          fetch(url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.json() : null; })
            .then(function (body) {
              if (body && body.features && body.features.length) { drawOutline(body.features[0], hit.id); }
            });
        }
      }
      function unitFilter(hit) {  // the districts collection names its units by `name`
        return hit.kind === "district" ? {name: hit.name} : hit.unit;
      }
      function drawOutline(feature, id) {
        if (outline) { map.removeLayer(outline); }
        outline = L.geoJSON(feature, {interactive: false, style: {color: opts.outlineColour, weight: 3, fill: false,
          dashArray: "6 4"}, pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, {radius: 14, color: opts.outlineColour, weight: 3, fill: false});
        }}).addTo(map);
        box.setAttribute("data-outlined", id);  // what is outlined (for tests and assistive tools)
      }
      input.addEventListener("input", function () {
        clearTimeout(timer);
        var query = input.value.trim();
        if (!query) { asked++; show([]); return; }
        timer = setTimeout(function () { ask(query); }, 150);
      });
      input.addEventListener("blur", function () { setTimeout(function () { list.textContent = ""; }, 150); });
      box.addEventListener("submit", function (e) {  // Enter: the best hit of what is typed
        e.preventDefault();
        var query = input.value.trim();
        if (query) { clearTimeout(timer); ask(query, function () { choose(0); }); }
      });
      return box;
    };
    return control.addTo(map);
  };

  // The map's title: the first control of the top-left corner, above the zoom buttons (text only).
  registry.mapTitle = function (map, opts) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var box = el("div", "gm-map-title leaflet-bar" + (opts.screen ? "" : " gm-print-only"), opts.text);
      box.setAttribute("role", "heading");
      box.setAttribute("aria-level", "1");
      return box;
    };
    control.addTo(map);
    var corner = control.getContainer().parentNode;
    corner.insertBefore(control.getContainer(), corner.firstChild);
    return control;
  };

  // --- share and print: the map as it is shown, with its legend and title, as a PNG; the browser's print -------

  var scripts = {};
  function loadScript(url) {  // once a page
    scripts[url] = scripts[url] || new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = url;
      tag.onload = resolve;
      tag.onerror = function () { delete scripts[url]; reject(new Error("could not load " + url)); };
      document.head.appendChild(tag);
    });
    return scripts[url];
  }

  // What the image leaves out: the map's buttons and panels (the title, legend and scale stay).
  function exported(node) {
    if (!node.classList) { return true; }
    if (node.classList.contains("leaflet-control")) {
      return node.classList.contains("gm-map-title") || node.classList.contains("leaflet-control-scale") ||
        node.classList.contains("leaflet-control-attribution");
    }
    return !node.classList.contains("leaflet-popup") && !node.classList.contains("leaflet-tooltip");
  }

  registry.exportMap = function (map, opts) {
    var target = map.getContainer().parentNode;  // the map and its legend
    var size = target.getBoundingClientRect();
    var restore = null;
    return loadScript(opts.script).then(function () {
      document.body.classList.add("gm-exporting");  // the title, when it is for print and export only
      restore = unfoldLegends();
      return window.domtoimage.toBlob(target, {
        width: Math.round(size.width), height: Math.round(size.height), bgcolor: "#ffffff", filter: exported,
        // a base map tile another host refuses to hand over: left blank, the rest is drawn
        imagePlaceholder: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
      });
    }).then(function (blob) {
      document.body.classList.remove("gm-exporting");
      restore();
      var link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = String(opts.filename).replace(/[\\/:*?"<>|]+/g, "_") + ".png";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
      return blob;
    }, function (err) {
      document.body.classList.remove("gm-exporting");
      if (restore) { restore(); }
      throw err;
    });
  };

  registry.exportControl = function (map, opts) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var bar = el("div", "leaflet-bar gm-export-bar");
      function button(className, label, text, act) {
        var b = el("a", className, text);
        b.href = "#";
        b.title = label;
        b.setAttribute("role", "button");
        b.setAttribute("aria-label", label);
        L.DomEvent.on(b, "click", function (e) { L.DomEvent.preventDefault(e); act(b); });
        bar.appendChild(b);
        return b;
      }
      button("gm-export", opts.texts.export_png, "PNG", function (b) {
        if (b.getAttribute("aria-busy") === "true") { return; }
        b.setAttribute("aria-busy", "true");
        registry.exportMap(map, opts).catch(function (err) {
          console.warn("gridmap: the export failed", err);
          window.alert(opts.texts.export_failed + ": " + String(err && err.message || err));
        }).then(function () { b.removeAttribute("aria-busy"); });
      });
      var print = button("gm-print", opts.texts.print, null, function () { window.print(); });
      print.appendChild(outlineIcon("M4 6V1h8v5M4 12H1V6h14v6h-3M4 9h8v6H4z", 1.5));  // a printer (⎙ is in few fonts)
      L.DomEvent.disableClickPropagation(bar);
      return bar;
    };
    return control.addTo(map);
  };

  // The base map's tiles come from another host: without internet they fail. Said once, as text.
  registry.basemapNotice = function (map, layer, opts) {
    var shown = false;
    layer.on("tileerror", function () {
      if (shown) { return; }
      shown = true;
      var control = L.control({position: "bottomright"});
      control.onAdd = function () {
        var box = el("div", "gm-basemap-notice leaflet-bar", opts.text);
        box.setAttribute("role", "status");
        return box;
      };
      control.addTo(map);
    });
  };

  registry.fullscreenControl = function (map, opts) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var bar = el("div", "leaflet-bar");
      var button = el("a", "gm-fullscreen");
      button.appendChild(outlineIcon("M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5", 2));
      button.href = "#";
      button.title = opts.title;
      button.setAttribute("role", "button");
      button.setAttribute("aria-label", opts.title);
      L.DomEvent.on(button, "click", function (e) {
        L.DomEvent.preventDefault(e);
        var target = map.getContainer();
        if (document.fullscreenElement) { document.exitFullscreen(); } else if (target.requestFullscreen) {
          target.requestFullscreen();
        }
      });
      document.addEventListener("fullscreenchange", function () { map.invalidateSize(); });
      bar.appendChild(button);
      return bar;
    };
    return control.addTo(map);
  };

  // --- planning: recommended sites and proposed centres, in one collapsible panel ---------------

  // A fetch answer as JSON; a failed one throws the API's own message ({"error": {"message"}}).
  function readJson(response) {
    return response.json().catch(function () { return null; }).then(function (body) {
      if (!response.ok) {
        var message = body && body.error && body.error.message;
        throw new Error(message || (response.status + " " + response.statusText));
      }
      return body;
    });
  }

  var PANEL_NARROW = 600;  // px; the legend's default breakpoint too (maps/layers.py Legend.narrow)

  // The panel both planning elements write into; whichever comes first builds it.
  function planningPanel(map, texts) {
    registry.panels = registry.panels || [];
    var found = registry.panels.filter(function (p) { return p.map === map; })[0];
    if (found) { return found; }
    var box = el("section", "gm-planning leaflet-bar");
    box.setAttribute("aria-label", texts.title);
    var head = el("div", "gm-planning-head");
    var toggle = el("button", "gm-planning-toggle", "−");
    toggle.type = "button";
    toggle.title = texts.collapse;
    toggle.setAttribute("aria-expanded", "true");
    var body = el("div", "gm-planning-body");
    function fold(folded) {
      body.hidden = folded;
      toggle.textContent = folded ? "+" : "−";
      toggle.title = folded ? texts.expand : texts.collapse;
      toggle.setAttribute("aria-expanded", String(!folded));
    }
    toggle.addEventListener("click", function () { fold(!body.hidden); });
    // Folded at first on narrow screens (as the legend is), where it would cover much of the map.
    fold(window.matchMedia("(max-width: " + PANEL_NARROW + "px)").matches);
    head.appendChild(el("span", "gm-planning-title", texts.title));
    head.appendChild(toggle);
    box.appendChild(head);
    box.appendChild(body);
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    var control = L.control({position: "bottomleft"});
    control.onAdd = function () { return box; };
    control.addTo(map);
    var panel = {
      map: map, box: box, body: body, fold: fold,
      folded: function () { return body.hidden; },
      section: function (className, heading) {
        var section = el("div", "gm-planning-section " + className);
        section.appendChild(el("h4", null, heading));
        body.appendChild(section);
        return section;
      }
    };
    registry.panels.push(panel);
    return panel;
  }

  function unitName(props) {
    return ["city", "district", "street", "community"].map(function (k) { return props[k]; })
      .filter(function (v) { return v !== null && v !== undefined && v !== ""; }).join(" / ");
  }

  registry.recommendationsLayer = function (map, opts) {
    var section = planningPanel(map, opts.panel).section("gm-recommendations", opts.texts.recommendations);
    section.hidden = true;  // shown while the layer is on
    var status = el("p", "gm-planning-status");
    var list = el("ol", "gm-rec-list");
    var hint = el("p", "gm-planning-hint", opts.texts.zoom_hint);
    hint.hidden = true;
    section.appendChild(status); section.appendChild(list); section.appendChild(hint);

    var layer = L.featureGroup();
    registry.layers[opts.name] = layer;
    registry.shown = registry.shown || {};
    registry.shown[opts.name] = layer;

    function draw(data) {
      var solver = Object.prototype.hasOwnProperty.call(opts.solvers, data.solver) ? opts.solvers[data.solver]
        : String(data.solver || "");
      var lines = [opts.texts.solver + ": " + solver], found = data.features.length;
      // why fewer than k came back, in the page's language (the API's own reason is in English)
      if (!found) { lines.push(opts.texts.none); }
      else if (found < opts.k) { lines.push(opts.texts.fewer.replace("{n}", String(found))); }
      status.textContent = lines.join(" · ");
      section.setAttribute("data-state", "loaded");
      data.features.forEach(function (feature) {
        var props = Object.assign({}, feature.properties, {unit: unitName(feature.properties), solver: solver});
        var xy = feature.geometry.coordinates, latlng = L.latLng(xy[1], xy[0]);
        var badge = el("span", null, props.rank);  // the rank, as text
        var marker = L.marker(latlng, {icon: L.divIcon({className: "gm-rec", html: badge, iconSize: [24, 24]}),
          keyboard: false, riseOnHover: true});
        marker.feature = feature;
        marker.bindTooltip(fieldRows(props, opts.tooltip), {direction: "top", offset: [0, -12]});
        layer.addLayer(marker);

        var button = el("button", "gm-rec-row");
        button.type = "button";
        button.setAttribute("data-rank", String(props.rank));
        button.appendChild(el("span", "gm-rec-rank", props.rank));
        button.appendChild(el("span", "gm-rec-unit", props.unit));  // district / street / community: names repeat
        button.appendChild(el("span", "gm-rec-gain", "+" + formatValue(props.new_population, "number")));
        button.appendChild(el("span", "gm-rec-share", formatValue(props.covered_share, "percent")));
        button.title = props.unit + " · " + opts.texts.new_population + " " +
          formatValue(props.new_population, "number") + " · " + opts.texts.cumulative_share + " " +
          formatValue(props.covered_share, "percent");
        button.addEventListener("click", function () {
          map.setView(latlng, Math.max(map.getZoom(), opts.zoom));
          marker.openTooltip();
        });
        var item = el("li");
        item.appendChild(button);
        list.appendChild(item);
      });
      hint.hidden = !data.features.length;
    }

    var loading = null;
    function load() {  // fetched once, when the layer is first shown (again after a failure)
      if (loading) { return loading; }
      status.textContent = opts.texts.loading;
      section.setAttribute("data-state", "loading");
      loading = fetch(opts.url, {credentials: "same-origin", headers: {Accept: "application/geo+json"}})
        .then(readJson)
        .then(function (data) { draw(data); layer.fire("gridmap:loaded"); })
        .catch(function (err) {
          loading = null;
          status.textContent = opts.texts.failed + ": " + err.message;
          section.setAttribute("data-state", "error");
        });
      return loading;
    }
    layer.on("add", function () { section.hidden = false; load(); });
    layer.on("remove", function () { section.hidden = true; });
    if (opts.show) { layer.addTo(map); }
    share(opts.key, layer, load);
    return layer;
  };

  registry.whatifControl = function (map, opts) {
    var t = opts.texts;
    var section = planningPanel(map, opts.panel).section("gm-whatif", t.whatif);
    if (opts.signIn) {  // what-ifs need a signed-in user: say so, with the way to sign in
      var note = el("p", "gm-planning-hint gm-whatif-sign-in", t.sign_in + " ");
      var link = el("a", null, t.sign_in_link);
      link.href = opts.signIn;
      note.appendChild(link);
      section.appendChild(note);
      registry.proposed = [];
      registry.proposals = L.layerGroup().addTo(map);
      return;
    }
    // the level of the centres the next clicks place (each with its level's catchment radius)
    var levelBox = el("label", "gm-whatif-level-box", t.level + " ");
    var levelSelect = el("select", "gm-whatif-level");
    var levelNames = {};
    opts.levels.forEach(function (pair) {  // [[level, label]]: a list keeps the order (JSON objects are sorted)
      var level = pair[0];
      levelNames[level] = pair[1];
      var option = el("option", null, pair[1]);
      option.value = level;
      option.selected = level === opts.level;
      levelSelect.appendChild(option);
    });
    levelBox.appendChild(levelSelect);
    section.appendChild(levelBox);
    var buttons = el("div", "gm-whatif-buttons");
    var place = el("button", "gm-whatif-place", t.place);
    place.type = "button";
    place.setAttribute("aria-pressed", "false");
    var clear = el("button", "gm-whatif-clear", t.clear);
    clear.type = "button";
    clear.disabled = true;
    buttons.appendChild(place); buttons.appendChild(clear);
    var hint = el("p", "gm-planning-hint", t.placing_hint);
    hint.hidden = true;
    var result = el("div", "gm-whatif-result");
    result.setAttribute("aria-live", "polite");
    section.appendChild(buttons); section.appendChild(hint); section.appendChild(result);

    var drawn = L.featureGroup().addTo(map);
    stack(map, drawn, opts.stack || 0);  // proposals draw above every layer that arrives later
    var proposed = [];  // [lon, lat, level] of each proposed centre, kept here only: nothing is stored
    var active = false, asked = 0;
    registry.proposed = proposed;
    registry.proposals = drawn;

    function setActive(on) {
      if (on) { map.fire("gridmap:tool", {tool: "whatif"}); }  // another tool on the map (editing) ends
      active = on;
      place.setAttribute("aria-pressed", String(on));
      hint.hidden = !on;
      L.DomUtil[on ? "addClass" : "removeClass"](map.getContainer(), "gm-placing");
      if (on) { map.doubleClickZoom.disable(); } else { map.doubleClickZoom.enable(); }
    }
    map.on("gridmap:tool", function (e) { if (e.tool !== "whatif" && active) { setActive(false); } });
    function say(state, rows) {
      result.setAttribute("data-state", state);
      result.textContent = "";
      rows.forEach(function (row) { result.appendChild(row); });
    }
    function line(label, value, className) {
      var row = el("div", className);
      row.appendChild(el("b", null, label + ": "));
      row.appendChild(document.createTextNode(value));
      return row;
    }
    function signed(n) { return (n >= 0 ? "+" : "") + formatValue(n, "number"); }
    // The city, the district and the street of each proposed centre: before → after, as a small table.
    function effectsTable(effects) {
      var table = el("table", "gm-whatif-effects");
      var head = el("tr");
      [t.effect_unit, t.effect_share, t.effect_change].forEach(function (h) { head.appendChild(el("th", null, h)); });
      table.appendChild(head);
      effects.forEach(function (e) {
        var row = el("tr", "gm-effect gm-effect-" + e.level);
        row.setAttribute("data-level", e.level);
        var name = e.level === "city" ? (e.city || t.city) : e.level === "district" ? e.district
          : e.street + " · " + e.district;  // street names repeat across districts
        row.appendChild(el("td", "gm-effect-unit", name));
        row.appendChild(el("td", "gm-effect-share", formatValue(e.before.covered_share, "percent") + " → " +
          formatValue(e.after.covered_share, "percent")));
        row.appendChild(el("td", "gm-effect-change",
          signed(e.after.covered_population - e.before.covered_population)));
        table.appendChild(row);
      });
      return table;
    }
    function show(data) {
      var before = data.before || {}, after = data.after || {};
      var change = after.covered_population - before.covered_population;
      result.setAttribute("data-before", String(before.covered_share));
      result.setAttribute("data-after", String(after.covered_share));
      result.setAttribute("data-change", String(change));
      var rows = [
        line(t.share_change, formatValue(before.covered_share, "percent") + " → " +
          formatValue(after.covered_share, "percent"), "gm-whatif-share"),
        line(t.population_change, signed(change), "gm-whatif-change"),
        el("div", "gm-whatif-count", t.proposed_count.replace("{n}", String(data.proposed)))];
      if (data.effects && data.effects.length) {
        rows.push(el("h4", null, t.effects));
        rows.push(effectsTable(data.effects));
      }
      rows.push(el("p", "gm-planning-hint", t.not_stored));
      say("done", rows);
    }
    function send() {
      var mine = ++asked;  // only the answer to the latest proposal set is shown
      var body = {type: "FeatureCollection", features: proposed.map(function (xy) {
        return {type: "Feature", geometry: {type: "Point", coordinates: [xy[0], xy[1]]}, properties: {level: xy[2]}};
      })};
      var headers = {"Content-Type": "application/json", Accept: "application/json"};
      var meta = document.querySelector('meta[name="' + opts.csrfMeta + '"]');
      if (meta && meta.content) { headers["X-CSRFToken"] = meta.content; }
      say("loading", [el("div", null, t.loading)]);
      fetch(opts.url, {method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body)})
        .then(readJson)
        .then(function (data) { if (mine === asked) { show(data); } })
        .catch(function (err) {
          if (mine === asked) { say("error", [el("div", "gm-planning-error", t.failed + ": " + err.message)]); }
        });
    }

    place.addEventListener("click", function () { setActive(!active); });
    document.addEventListener("keydown", function (e) { if (active && e.key === "Escape") { setActive(false); } });
    clear.addEventListener("click", function () {
      asked++;  // an answer still on its way is for proposals that are gone
      proposed.length = 0;
      drawn.clearLayers();
      clear.disabled = true;
      ["data-state", "data-before", "data-after", "data-change"].forEach(function (a) { result.removeAttribute(a); });
      result.textContent = "";
    });
    map.on("click", function (e) {
      if (!active) { return; }
      map.closePopup();  // the click also reached the grid under it
      var latlng = e.latlng.wrap();
      var level = levelSelect.value;
      proposed.push([Math.round(latlng.lng * 1e6) / 1e6, Math.round(latlng.lat * 1e6) / 1e6, level]);
      L.circle(latlng, {radius: opts.radii[level], className: "gm-proposed-catchment", color: "#0571b0", weight: 2,
        dashArray: "6 4", fillColor: "#0571b0", fillOpacity: 0.08, interactive: false}).addTo(drawn);
      var size = {district: 20, street: 16, community: 13}[level] || 16;
      L.marker(latlng, {icon: L.divIcon({className: "gm-proposed gm-proposed-" + level, iconSize: [size, size]}),
        keyboard: false, interactive: false, title: levelNames[level]}).addTo(drawn);
      clear.disabled = false;
      send();
    });
  };

  // The legend is a <details>: folded at first on narrow screens, where it would cover the map.
  // Printed or exported, a folded legend opens for the while (then folds again).
  function unfoldLegends() {
    var folded = [].slice.call(document.querySelectorAll("details.gridmap-legend:not([open])"));
    folded.forEach(function (legend) { legend.open = true; });
    return function () { folded.forEach(function (legend) { legend.open = false; }); };
  }
  var refold = null;
  window.addEventListener("beforeprint", function () { refold = unfoldLegends(); });
  window.addEventListener("afterprint", function () { if (refold) { refold(); refold = null; } });

  registry.legend = function (id, narrow) {
    var legend = document.getElementById(id);
    if (!legend) { return; }
    if (window.matchMedia("(max-width: " + narrow + "px)").matches) { legend.open = false; }
    L.DomEvent.disableClickPropagation(legend);
    L.DomEvent.disableScrollPropagation(legend);
  };

  // --- the URL follows the view: #z=13&lat=29.87&lon=121.55&layers=grids,gaps ------------------

  // What the fragment asks for, each part only when valid: {view: {zoom, centre}?, layers: [key]?}.
  // Values are only compared and parsed as numbers; none is ever written into the page.
  function readFragment(map, hash) {
    var params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
    var wanted = {};
    var decimal = /^-?\d{1,3}(\.\d{1,12})?$/;
    var z = params.get("z"), lat = params.get("lat"), lon = params.get("lon");
    if (z !== null && lat !== null && lon !== null && /^\d{1,2}$/.test(z) && decimal.test(lat) && decimal.test(lon)) {
      var zoom = Number(z), y = Number(lat), x = Number(lon);
      if (zoom >= map.getMinZoom() && zoom <= map.getMaxZoom() && Math.abs(y) <= 85 && Math.abs(x) <= 180) {
        wanted.view = {zoom: zoom, centre: L.latLng(y, x)};
      }
    }
    var raw = params.get("layers");
    if (raw !== null) {
      var known = raw.split(",").filter(function (key) {
        return Object.prototype.hasOwnProperty.call(registry.keyed, key);
      });
      // "layers=" means none on; a list of only unknown names is ignored, not read as "none"
      if (known.length || raw === "") { wanted.layers = known; }
    }
    return wanted;
  }

  function writeFragment(map) {
    var centre = map.getCenter().wrap();
    var on = Object.keys(registry.keyed).filter(function (key) { return map.hasLayer(registry.keyed[key].layer); });
    var hash = "#z=" + map.getZoom() + "&lat=" + centre.lat.toFixed(5) + "&lon=" + centre.lng.toFixed(5) +
      "&layers=" + on.join(",");  // keys are [a-z_]: nothing to encode
    if (hash !== window.location.hash) {
      // replaceState: panning must not fill the back button's history; the query (unit, lang) stays
      window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search + hash);
    }
  }

  function applyFragment(map, hash, bounds) {
    var wanted = readFragment(map, hash);
    if (wanted.layers) {
      Object.keys(registry.keyed).forEach(function (key) {
        var entry = registry.keyed[key], on = wanted.layers.indexOf(key) >= 0;
        if (on && !map.hasLayer(entry.layer)) {
          entry.layer.addTo(map);
          if (entry.load) { registry.pending.push(entry.load()); }  // the page is ready once it has loaded
        } else if (!on && map.hasLayer(entry.layer)) {
          map.removeLayer(entry.layer);
        }
      });
    }
    // not animated: an animation still under way would end after, and over, the view asked for
    map._gridmapViewSet = true;  // tiles are asked for from here on, for this view
    if (wanted.view) { map.setView(wanted.view.centre, wanted.view.zoom, {animate: false}); }
    else if (bounds) { map.fitBounds(bounds, {animate: false}); }
  }

  registry.shareView = function (map, opts) {
    applyFragment(map, window.location.hash, opts.bounds);
    var timer = null;
    function later() {  // at most one replaceState per 300 ms, with the view as it is by then
      if (timer === null) { timer = window.setTimeout(function () { timer = null; writeFragment(map); }, 300); }
    }
    map.on("moveend overlayadd overlayremove", later);
    window.addEventListener("hashchange", function () { applyFragment(map, window.location.hash); });
  };

  registry.ready = function (map) {
    viewSet(map);  // a page without a shared view: its tiles are asked for now
    registry.map = map;
    registry.maps.push(map);
    registry.done = Promise.all(registry.pending).then(function () {
      document.body.setAttribute("data-gridmap-ready", "1");
    });
  };
})();
