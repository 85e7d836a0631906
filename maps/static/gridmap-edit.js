// Editing on the map, for editors (maps/edit_control.py): pick a grid or centre and move its vertices
// (they snap to the neighbours', and a vertex two grids share moves in both), draw a grid, cut one along a
// line, join two, place or drag a centre, fill in the form built from the layer's schema; undo; check the
// change (a dry run: the upload's report, problems outlined on the map); save it with a message as one
// version.  Leaflet-Geoman draws and edits; the split and the merge are computed by the server (shapely),
// so shared edges stay exact.  Every value shown goes in as text, never markup.
(function () {
  "use strict";
  var registry = window.gridmap = window.gridmap || {layers: {}, pending: [], maps: []};
  if (L.PM) { L.PM.setOptIn(true); }  // only the layers made here are edited or snapped to: no label, no tile

  var SAME = 1e-10;  // degrees: two vertices at the same place (JSON round trips keep doubles exact)
  var STYLE = {
    // a light fill: the grid's coverage colour stays readable under it (orange over blue would read as grey)
    edit: {color: "#d7301f", weight: 3, fillColor: "#fdbb84", fillOpacity: 0.2},
    context: {color: "#2b8cbe", weight: 1.5, dashArray: "4 3", fillColor: "#a6bddb", fillOpacity: 0.12},
    problem: {color: "#ff00ff", weight: 4, dashArray: null}
  };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function button(label, className) {
    var b = el("button", className, label);
    b.type = "button";
    return b;
  }
  function fill(template, collection, id) {
    var out = template.replace("{collection}", encodeURIComponent(collection));
    return id === undefined ? out : out.replace("{id}", encodeURIComponent(String(id)));
  }
  function copy(value) { return JSON.parse(JSON.stringify(value)); }

  registry.editControl = function (map, opts) {
    var t = opts.texts, urls = opts.urls;
    map.options.pmIgnore = false;
    L.PM.reInitLayer(map);
    if (opts.lang === "zh" && map.pm.setLang) { map.pm.setLang("zh"); }
    map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: false,
      continueDrawing: false, templineStyle: {color: "#d7301f"}, hintlineStyle: {color: "#d7301f", dashArray: "5 5"}});

    // --- the session: what is loaded, what changed --------------------------------------------------
    // items: key -> {layer, feature, etag (null: new), original (JSON text as loaded; null: new), role}
    var session = {layer: null, items: {}, removed: {}, selected: null};
    var undoStack = [];
    var drawn = L.featureGroup().addTo(map);
    var shapes = {};  // key -> the Leaflet layer drawing it
    var tool = "pick", busy = false;

    function snapshot() {
      return JSON.stringify({layer: session.layer, items: session.items, removed: session.removed,
                             selected: session.selected});
    }
    var last = snapshot();
    function remember() { undoStack.push(last); }  // call before a change; settle() after it
    function settle() { last = snapshot(); render(); }

    // --- the panel ------------------------------------------------------------------------------------
    var control = L.control({position: "topleft"});
    var box = el("div", "leaflet-bar gm-edit");
    var toggle = button(t.edit, "gm-edit-toggle");
    toggle.setAttribute("aria-pressed", "false");
    var panel = el("div", "gm-edit-panel");
    panel.hidden = true;
    box.appendChild(toggle); box.appendChild(panel);
    control.onAdd = function () {
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    control.addTo(map);

    var tools = el("div", "gm-edit-tools");
    var toolButtons = {};
    [["pick", t.pick], ["draw_grid", t.draw_grid], ["split", t.split], ["merge", t.merge],
     ["add_center", t.add_center]].forEach(function (pair) {
      var b = button(pair[1], "gm-edit-tool gm-edit-" + pair[0].replace("_", "-"));
      b.setAttribute("data-tool", pair[0]);
      b.addEventListener("click", function () { setTool(pair[0]); });
      toolButtons[pair[0]] = b;
      tools.appendChild(b);
    });
    var hint = el("p", "gm-edit-hint", t.pick_hint);
    var form = el("form", "gm-edit-form");
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    var summary = el("div", "gm-edit-changes");
    var actions = el("div", "gm-edit-actions");
    var undoButton = button(t.undo, "gm-edit-undo");
    var discardButton = button(t.discard, "gm-edit-discard");
    var checkButton = button(t.check, "gm-edit-check");
    actions.appendChild(undoButton); actions.appendChild(discardButton); actions.appendChild(checkButton);
    var messageLabel = el("label", "gm-edit-message-label", t.message + " ");
    var message = el("input", "gm-edit-message");
    message.type = "text"; message.maxLength = 500;
    messageLabel.appendChild(message);
    var saveButton = button(t.save, "gm-edit-save");
    var report = el("div", "gm-edit-report");
    report.setAttribute("aria-live", "polite");
    // the form last: the panel scrolls, the buttons stay in reach
    var sendRow = el("div", "gm-edit-send");  // the message and the save button on one line
    sendRow.appendChild(messageLabel); sendRow.appendChild(saveButton);
    [tools, hint, summary, actions, sendRow, report, form].forEach(function (n) {
      panel.appendChild(n);
    });

    function say(state, rows) {
      report.setAttribute("data-state", state);
      report.textContent = "";
      rows.forEach(function (row) { report.appendChild(typeof row === "string" ? el("div", null, row) : row); });
    }

    // --- requests ---------------------------------------------------------------------------------------
    function headers(extra) {
      var h = {"Content-Type": "application/json", Accept: "application/geo+json, application/json"};
      var meta = document.querySelector('meta[name="' + opts.csrfMeta + '"]');
      if (meta && meta.content) { h["X-CSRFToken"] = meta.content; }
      return L.Util.extend(h, extra || {});
    }
    function answer(response) {
      return response.text().then(function (body) {
        var data = null;
        try { data = body ? JSON.parse(body) : null; } catch (e) { data = null; }
        return {status: response.status, ok: response.ok, data: data, etag: response.headers.get("ETag"),
                version: response.headers.get("X-Gridmap-Version")};
      });
    }
    function errorText(got) {
      var error = got.data && got.data.error;
      return (error && error.message) || ("HTTP " + got.status);
    }
    function load(collection, key) {
      return fetch(fill(urls.item, collection, key), {credentials: "same-origin",
                                                      headers: {Accept: "application/geo+json"}})
        .then(answer)
        .then(function (got) {
          if (!got.ok) { throw new Error(errorText(got)); }
          return got;
        });
    }
    function post(url, body, extra) {
      return fetch(url, {method: "POST", credentials: "same-origin", headers: headers(extra),
                         body: JSON.stringify(body)}).then(answer);
    }

    // --- loading features ---------------------------------------------------------------------------------
    function keyOf(layer, feature) { return String(feature.properties[opts.schemas[layer].key]); }
    function add(layer, got, role) {
      var key = keyOf(layer, got.data);
      var known = session.items[key];
      if (known) {
        if (role === "edit") { known.role = "edit"; }
        return key;
      }
      var feature = {type: "Feature", geometry: got.data.geometry, properties: got.data.properties || {}};
      session.items[key] = {layer: layer, feature: feature, etag: got.etag, original: JSON.stringify(feature),
                            role: role};
      return key;
    }
    function sameLayer(layer) {
      if (session.layer && session.layer !== layer && changedKeys().length + Object.keys(session.removed).length) {
        say("refused", [t.one_layer]);
        return false;
      }
      if (session.layer !== layer) { session.items = {}; session.removed = {}; session.selected = null; }
      session.layer = layer;
      return true;
    }
    function bboxOf(geometry) {
      var b = L.geoJSON(geometry).getBounds();
      return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
    }
    // the grids meeting a box, each loaded with its own ETag: snap targets, and the neighbours an edit may move
    function loadContext(bbox) {
      var url = fill(urls.items, "grids") + "?limit=60&bbox=" + bbox.map(function (v) { return v.toFixed(7); }).join(",");
      return fetch(url, {credentials: "same-origin", headers: {Accept: "application/geo+json"}})
        .then(answer)
        .then(function (got) {
          var keys = ((got.data && got.data.features) || []).map(function (f) { return keyOf("grids", f); })
            .filter(function (k) { return !session.items[k] && !session.removed[k]; });
          return Promise.all(keys.map(function (k) {
            return load("grids", k).then(function (one) { add("grids", one, "context"); }, function () { return null; });
          }));
        });
    }
    function pick(collection, key, at) {
      var layer = opts.pickedFrom[collection];
      if (!layer || !sameLayer(layer) || busy) { return Promise.resolve(); }
      if (session.items[key] && session.items[key].role === "edit") {
        session.selected = key; render(); return Promise.resolve();
      }
      busy = true;
      say("loading", [t.loading]);
      return load(layer, key).then(function (got) {
        remember();
        add(layer, got, "edit");
        session.selected = key;
        return layer === "grids" ? loadContext(bboxOf(got.data.geometry)) : null;
      }).then(function () { say("", []); settle(); if (at) { reveal(at); } },
              function (err) { say("error", [t.failed + ": " + err.message]); })
        .then(function () { busy = false; });
    }
    // The place just picked, when the form that opened covers it, is moved into the map's open part: beside
    // the panel, or above it where it is a sheet along the bottom (a phone).
    function reveal(latlng) {
      if (panel.hidden) { return; }
      var box = panel.getBoundingClientRect(), frame = map.getContainer().getBoundingClientRect();
      var p = map.latLngToContainerPoint(latlng), x = frame.left + p.x, y = frame.top + p.y;
      if (x < box.left || x > box.right || y < box.top || y > box.bottom) { return; }
      var sheet = box.width > frame.width / 2;
      var target = sheet ? L.point(p.x, (box.top - frame.top) / 2)
        : L.point((box.right - frame.left + frame.width) / 2, p.y);
      map.panBy(p.subtract(target), {animate: false});
    }
    registry.edit = {pick: pick, session: session};

    // --- drawing the session ------------------------------------------------------------------------------
    function render() {
      drawn.clearLayers();
      shapes = {};
      Object.keys(session.items).forEach(function (key) {
        var item = session.items[key];
        var shape;
        if (item.feature.geometry.type === "Point") {
          var xy = item.feature.geometry.coordinates;
          shape = L.marker([xy[1], xy[0]], {pmIgnore: false, title: key,
            icon: L.divIcon({className: "gm-edit-center" + (key === session.selected ? " gm-edit-selected" : ""),
                             iconSize: [16, 16]})});
        } else {
          shape = L.GeoJSON.geometryToLayer(item.feature, {pmIgnore: false});
          shape.setStyle(item.role === "edit" ? STYLE.edit : STYLE.context);
        }
        shape.gmKey = key;
        shape.on("click", function (e) {
          if (tool !== "pick" && tool !== "merge") { return; }  // drawing: the map's click places a vertex
          L.DomEvent.stop(e);
          clickedItem(key);
        });
        drawn.addLayer(shape);
        shapes[key] = shape;
        if (item.role === "edit" && tool === "pick") { editable(shape, key); }
      });
      showForm();
      showChanges();
    }
    function editable(shape, key) {
      // a centre is dragged whole; a grid by its vertices only (a grid dragged whole would leave a gap)
      shape.pm.enable({snappable: true, snapDistance: 15, allowSelfIntersection: false,
                       draggable: shape instanceof L.Marker});
      var moving = null;
      shape.on("pm:markerdragstart", function (e) {
        var at = e.markerEvent && e.markerEvent.target ? e.markerEvent.target.getLatLng() : null;
        moving = at ? L.latLng(at.lat, at.lng) : null;
      });
      shape.on("pm:markerdragend", function (e) {
        var to = e.markerEvent && e.markerEvent.target ? e.markerEvent.target.getLatLng() : null;
        if (moving && to) { moveShared(key, moving, to); }
        moving = null;
      });
      shape.on("pm:edit", function () { changedShapes(key, shape); });
    }
    // A vertex the neighbours have at the same place moves with it: a shared edge stays shared.
    function moveShared(key, from, to) {
      Object.keys(shapes).forEach(function (other) {
        var shape = shapes[other];
        if (other === key || !(shape instanceof L.Polygon)) { return; }
        var moved = false;
        var latlngs = (function walk(list) {
          return list.map(function (entry) {
            if (Array.isArray(entry)) { return walk(entry); }
            if (Math.abs(entry.lat - from.lat) < SAME && Math.abs(entry.lng - from.lng) < SAME) {
              moved = true;
              return L.latLng(to.lat, to.lng);
            }
            return entry;
          });
        })(shape.getLatLngs());
        if (!moved) { return; }
        var editing = shape.pm && shape.pm.enabled();
        if (editing) { shape.pm.disable(); }  // its vertex handles would stay where the vertex was
        shape.setLatLngs(latlngs);
        if (editing) { shape.pm.enable({snappable: true, snapDistance: 15, allowSelfIntersection: false}); }
      });
    }
    function geometryOf(shape) { return shape.toGeoJSON(false).geometry; }  // false: every digit kept
    function changedShapes(edited, shape) {
      if (shapes[edited] !== shape) { return; }  // a shape drawn over since (its edit event comes late)
      remember();
      Object.keys(shapes).forEach(function (key) {
        var item = session.items[key];
        if (!item) { return; }
        var now = geometryOf(shapes[key]);
        if (JSON.stringify(now) !== JSON.stringify(item.feature.geometry)) { item.feature.geometry = now; }
      });
      last = snapshot();
      showChanges();
    }

    // --- what changed --------------------------------------------------------------------------------------
    function changedKeys() {
      return Object.keys(session.items).filter(function (key) {
        var item = session.items[key];
        return item.original === null || JSON.stringify(item.feature) !== item.original;
      });
    }
    function changeSet() {
      var keys = changedKeys(), ifMatch = {};
      keys.concat(Object.keys(session.removed)).forEach(function (key) {
        var item = session.items[key];
        var tag = item ? item.etag : session.removed[key];
        if (tag) { ifMatch[key] = tag; }
      });
      return {type: "FeatureCollection", removed: Object.keys(session.removed), if_match: ifMatch,
              features: keys.map(function (key) { return session.items[key].feature; })};
    }
    function showChanges() {
      var keys = changedKeys(), removed = Object.keys(session.removed);
      summary.textContent = "";
      summary.setAttribute("data-changed", keys.join(","));
      summary.setAttribute("data-removed", removed.join(","));
      undoButton.disabled = !undoStack.length;
      if (!keys.length && !removed.length) { return; }
      summary.appendChild(el("b", null, t.changes + ": "));
      summary.appendChild(document.createTextNode(keys.concat(removed.map(function (k) {
        return k + " (" + t.removed + ")";
      })).join(", ")));
    }

    // --- the form, from the layer's schema ------------------------------------------------------------------
    function showForm() {
      form.textContent = "";
      var key = session.selected, item = key && session.items[key];
      if (!item) { return; }
      var schema = opts.schemas[item.layer];
      form.appendChild(el("div", "gm-edit-form-title", t.attributes + ": " + key));
      form.setAttribute("data-key", key);
      schema.fields.forEach(function (field) {
        var row = el("label", "gm-edit-field");
        var name = el("span", null, (field.label || field.name) + (field.required ? " *" : ""));
        name.title = field.name;  // the stored name, as in downloads and the API
        row.appendChild(name);
        var value = item.feature.properties[field.name];
        var input;
        if (field.choices.length || field.kind === "boolean") {
          input = el("select");
          var choices = field.kind === "boolean" ? ["true", "false"] : field.choices;
          input.appendChild(el("option", null, ""));
          choices.forEach(function (c) {
            var option = el("option", null, (field.choice_labels || {})[c] || c);
            option.value = c;
            input.appendChild(option);
          });
        } else {
          input = el("input");
          input.type = field.kind === "integer" || field.kind === "number" ? "number" : "text";
          if (field.kind === "integer") { input.step = "1"; }
          if (field.kind === "number") { input.step = "any"; }
          if (field.minimum !== undefined) { input.min = String(field.minimum); }
        }
        input.name = field.name;
        input.value = value === null || value === undefined ? "" : String(value);
        if (field.required) { input.required = true; }
        if (field.kind === "key" && item.original !== null) { input.readOnly = true; }  // a stored key stays
        input.addEventListener("change", function () { setField(key, field, input.value); });
        row.appendChild(input);
        form.appendChild(row);
      });
    }
    function typed(field, raw) {
      var text = String(raw).trim();
      if (text === "") { return null; }
      if (field.kind === "integer") { var n = parseInt(text, 10); return isNaN(n) ? text : n; }
      if (field.kind === "number") { var x = parseFloat(text); return isNaN(x) ? text : x; }
      if (field.kind === "boolean") { return text === "true"; }
      return text;
    }
    function setField(key, field, raw) {
      var item = session.items[key];
      if (!item) { return; }
      remember();
      var value = typed(field, raw);
      if (field.kind === "key" && item.original === null) {  // a new feature's key: it is renamed
        if (!value || session.items[String(value)]) { settle(); return; }
        delete session.items[key];
        session.items[String(value)] = item;
        if (session.selected === key) { session.selected = String(value); }
      }
      item.feature.properties[field.name] = value;
      settle();
    }

    // --- tools ------------------------------------------------------------------------------------------------
    var HINTS = {pick: t.pick_hint, draw_grid: t.draw_hint, split: t.split_hint, merge: t.merge_hint,
                 add_center: t.center_hint};
    function setTool(name) {
      if (map.pm.globalDrawModeEnabled && map.pm.globalDrawModeEnabled()) { map.pm.disableDraw(); }
      if ((name === "split" || name === "merge") && !selectedGrid()) { say("refused", [t.select_first]); name = "pick"; }
      tool = name;
      hint.textContent = HINTS[name];
      Object.keys(toolButtons).forEach(function (k) { toolButtons[k].setAttribute("aria-pressed", String(k === name)); });
      panel.setAttribute("data-tool", name);
      render();
      if (name === "draw_grid") {
        if (!sameLayer("grids")) { setTool("pick"); return; }
        var b = map.getBounds();
        loadContext([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]).then(function () {
          render();
          if (tool === "draw_grid") { map.pm.enableDraw("Polygon"); }
        });
      } else if (name === "split") {
        map.pm.enableDraw("Line");
      } else if (name === "add_center") {
        if (!sameLayer("centers")) { setTool("pick"); return; }
        map.pm.enableDraw("Marker", {markerStyle: {icon: L.divIcon({className: "gm-edit-center", iconSize: [16, 16]})}});
      }
    }
    function selectedGrid() {
      var item = session.selected && session.items[session.selected];
      return item && item.layer === "grids" ? session.selected : null;
    }
    function newKey(base) {
      var n = 2;
      while (session.items[base + "-" + n]) { n++; }
      return base + "-" + n;
    }
    function area(geometry) {  // planar, in squared degrees: enough to share a population out
      var rings = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
      return rings.reduce(function (sum, polygon) {
        return sum + polygon.reduce(function (s, ring, i) {
          var a = 0;
          for (var j = 0; j < ring.length - 1; j++) { a += ring[j][0] * ring[j + 1][1] - ring[j + 1][0] * ring[j][1]; }
          return s + (i === 0 ? 1 : -1) * Math.abs(a / 2);
        }, 0);
      }, 0);
    }
    map.on("pm:create", function (e) {
      var layer = e.layer, shape = e.shape;
      map.removeLayer(layer);  // the session draws it from now on
      var geometry = layer.toGeoJSON(false).geometry;
      if (shape === "Line") { split(geometry); return; }
      var kind = shape === "Marker" ? "centers" : "grids";
      var schema = opts.schemas[kind];
      remember();
      var base = kind === "grids" ? "new-grid" : "new-center";
      var key = session.items[base] ? newKey(base) : base;
      var properties = {};
      schema.fields.forEach(function (f) { properties[f.name] = null; });
      var near = session.selected && session.items[session.selected];
      if (near && near.layer === kind) {  // a neighbour's units, to start from
        ["city", "district", "street", "community"].forEach(function (f) {
          if (f in near.feature.properties) { properties[f] = near.feature.properties[f]; }
        });
      }
      properties[schema.key] = key;
      session.items[key] = {layer: kind, feature: {type: "Feature", geometry: geometry, properties: properties},
                            etag: null, original: null, role: "edit"};
      session.selected = key;
      tool = "pick";
      setTool("pick");
      settle();
    });
    function split(line) {
      var key = selectedGrid();
      setTool("pick");
      if (!key) { say("refused", [t.select_first]); return; }
      var item = session.items[key];
      say("loading", [t.loading]);
      post(fill(urls.split, "grids"), {geometry: item.feature.geometry, line: line, id: key}).then(function (got) {
        if (!got.ok) { say("refused", [t.refused + errorText(got)]); return; }
        remember();
        var parts = got.data.features.map(function (f) { return f.geometry; });
        var total = parts.reduce(function (s, g) { return s + area(g); }, 0) || 1;
        var population = item.feature.properties.population;
        parts.forEach(function (geometry, i) {
          var share = area(geometry) / total;
          var target = item;
          if (i > 0) {
            var newOne = newKey(key);
            target = {layer: "grids", etag: null, original: null, role: "edit",
                      feature: {type: "Feature", geometry: geometry, properties: copy(item.feature.properties)}};
            target.feature.properties.grid_id = newOne;
            session.items[newOne] = target;
          }
          target.feature.geometry = geometry;
          if (typeof population === "number") { target.feature.properties.population = Math.round(population * share); }
        });
        say("", []);
        settle();
      }, function (err) { say("error", [t.failed + ": " + err.message]); });
    }
    function merge(other) {
      var key = selectedGrid();
      setTool("pick");
      if (!key || key === other) { return; }
      var a = session.items[key], b = session.items[other];
      var geometries = {};
      geometries[key] = a.feature.geometry;
      geometries[other] = b.feature.geometry;
      say("loading", [t.loading]);
      post(fill(urls.union, "grids"), {geometries: geometries}).then(function (got) {
        if (!got.ok) { say("refused", [t.refused + errorText(got)]); return; }
        remember();
        a.feature.geometry = got.data.geometry;
        ["population", "households", "party_members"].forEach(function (f) {
          var x = a.feature.properties[f], y = b.feature.properties[f];
          if (typeof x === "number" && typeof y === "number") { a.feature.properties[f] = x + y; }
        });
        if (b.original !== null) { session.removed[other] = b.etag; }
        delete session.items[other];
        say("", []);
        settle();
      }, function (err) { say("error", [t.failed + ": " + err.message]); });
    }
    function clickedItem(key) {
      if (tool === "merge") { merge(key); return; }
      if (tool !== "pick" || session.selected === key) { return; }  // (a drag ends with a click too)
      var item = session.items[key];
      if (item.role !== "edit") { remember(); item.role = "edit"; }
      session.selected = key;
      settle();
    }

    // a click on the map's tiles picks what is there: the topmost grid or centre, under any gap, overlap or
    // outline drawn over it (the grid an overlap or a unit's edge lies on is what an editor means to fix)
    function pickable(entry) { return Boolean(opts.pickedFrom[entry.opts.layer]); }
    registry.edit.pickable = pickable;
    map.on("click", function (e) {
      if (!active() || tool !== "pick") { return; }
      var hit = registry.featureAt(map, e.latlng, pickable);
      if (hit) {
        pick(hit.entry.opts.layer, hit.props[hit.entry.opts.idField], e.latlng);
      }
    });

    // --- undo, discard, check, save ---------------------------------------------------------------------------
    undoButton.addEventListener("click", function () {
      if (!undoStack.length) { return; }
      var state = JSON.parse(undoStack.pop());
      session.layer = state.layer; session.items = state.items; session.removed = state.removed;
      session.selected = state.selected;
      last = snapshot();
      say("", []);
      render();
    });
    discardButton.addEventListener("click", function () { reset(); say("", []); });
    function reset() {
      session.layer = null; session.items = {}; session.removed = {}; session.selected = null;
      undoStack.length = 0;
      last = snapshot();
      render();
    }
    function outline(keys) {
      keys.forEach(function (key) {
        var shape = shapes[key];
        if (shape && shape.setStyle) { shape.setStyle(STYLE.problem); shape.bringToFront(); }
        if (shape && shape.getElement && shape instanceof L.Marker && shape.getElement()) {
          L.DomUtil.addClass(shape.getElement(), "gm-edit-problem");
        }
      });
    }
    function problemList(title, problems, className) {
      var wrap = el("div", className);
      wrap.appendChild(el("b", null, title + " (" + problems.length + ")"));
      var list = el("ul");
      problems.forEach(function (p) {
        var row = el("li", null, (p.key ? p.key + (p.field ? " · " + p.field : "") + ": " : "") + p.message);
        if (p.key) { row.setAttribute("data-key", String(p.key)); }
        list.appendChild(row);
      });
      wrap.appendChild(list);
      return wrap;
    }
    function showReport(got, state) {
      var data = got.data || {};
      var r = data.report || {};
      var errors = r.errors || [], warnings = r.warnings || [];
      var rows = [];
      if (state === "refused") { rows.push(el("div", "gm-edit-refused", t.refused + errorText(got))); }
      if (state === "ok") { rows.push(el("div", "gm-edit-ok", t.ok)); }
      if (errors.length) { rows.push(problemList(t.problems, errors, "gm-edit-errors")); }
      if (warnings.length) { rows.push(problemList(t.warnings, warnings, "gm-edit-warnings")); }
      say(state, rows);
      outline(errors.map(function (p) { return p.key; }).filter(Boolean));
      errors.forEach(function (p) {  // the gap or overlap itself, where the report has its place
        if (!p.geometry) { return; }
        L.geoJSON(p.geometry, {interactive: false, style: function () {
          return {color: STYLE.problem.color, weight: 2, fillColor: STYLE.problem.color, fillOpacity: 0.5,
                  className: "gm-edit-problem-area"};
        }}).addTo(drawn);
      });
    }
    function send(dryRun) {
      var body = changeSet();
      if (!body.features.length) { say("refused", [t.nothing]); return Promise.resolve(); }
      var layer = session.layer;
      var extra = {};
      if (!dryRun) {
        var text = message.value.trim();
        if (!text) { say("refused", [t.message_needed]); message.focus(); return Promise.resolve(); }
        extra["X-Gridmap-Message"] = encodeURIComponent(text);
      }
      say(dryRun ? "checking" : "saving", [dryRun ? t.checking : t.saving]);
      busy = true;
      return post(fill(urls.changes, layer) + (dryRun ? "?dry_run=1" : ""), body, extra).then(function (got) {
        busy = false;
        if (!got.ok) { render(); showReport(got, "refused"); return; }
        if (dryRun) { render(); showReport(got, "ok"); return; }
        reset();
        message.value = "";
        var done = el("div", "gm-edit-saved");
        var link = el("a", null, t.history);
        link.href = urls.history.replace("{layer}", encodeURIComponent(layer));
        done.appendChild(el("span", null, t.saved.replace("{n}", got.version || "") + " "));
        done.appendChild(link);
        say("saved", [done]);
        refreshTiles();
      }, function (err) { busy = false; say("error", [t.failed + ": " + err.message]); });
    }
    checkButton.addEventListener("click", function () { send(true); });
    saveButton.addEventListener("click", function () { send(false); });
    function refreshTiles() {  // the saved version's grids, coverage and gaps (revalidated by ETag)
      (registry.tileLayers || []).forEach(function (entry) {
        if (entry.map === map && map.hasLayer(entry.layer)) { entry.layer.redraw(); }
      });
    }

    // --- room for the panel ------------------------------------------------------------------------------------
    // The planning panel (the map's lower left) folds while editing, and unfolds after if it was open.  The
    // panel ends above whatever is in that corner and scrolls within what is left, so its buttons and the
    // form's last field stay in reach at any window size.  (On a narrow screen it is a sheet along the bottom:
    // gridmap-edit.css.)
    var folded = [];
    function foldPlanning(on) {
      if (on) {
        folded = (registry.panels || []).filter(function (p) { return p.map === map && p.fold && !p.folded(); });
        folded.forEach(function (p) { p.fold(true); });
      } else {
        folded.forEach(function (p) { p.fold(false); });
        folded = [];
      }
    }
    var PANEL_MIN = 160, PANEL_GAP = 10;  // px
    var corner = map.getContainer().querySelector(".leaflet-bottom.leaflet-left");
    function fit() {
      if (panel.hidden) { return; }
      if (window.getComputedStyle(panel).position === "fixed") { panel.style.maxHeight = ""; return; }  // a sheet
      var bottom = corner && corner.firstChild ? corner.getBoundingClientRect().top
        : map.getContainer().getBoundingClientRect().bottom;
      var room = Math.floor(bottom - PANEL_GAP - panel.getBoundingClientRect().top);
      panel.style.maxHeight = Math.max(PANEL_MIN, room) + "px";
    }
    var fitting = null;
    function fitSoon() {  // in the next frame: a resize observer's callback must not resize what it watches
      if (fitting === null) { fitting = L.Util.requestAnimFrame(function () { fitting = null; fit(); }); }
    }
    map.on("resize", fitSoon);
    if (window.ResizeObserver) {  // the controls above the panel (a search's hits), the corner below it
      var watch = new ResizeObserver(fitSoon);
      if (corner) { watch.observe(corner); }
      Array.prototype.forEach.call(box.parentNode ? box.parentNode.children : [], function (c) {
        if (c !== box) { watch.observe(c); }
      });
    }

    // --- on and off --------------------------------------------------------------------------------------------
    // One tool on the map at a time: editing and placing what-if centres (gridmap-map.js) each end the other,
    // by the map's "gridmap:tool" event.
    function active() { return toggle.getAttribute("aria-pressed") === "true"; }
    function turn(on) {
      if (on === active()) { return; }
      toggle.setAttribute("aria-pressed", String(on));
      toggle.textContent = on ? t.done : t.edit;
      panel.hidden = !on;
      if (on) { map.fire("gridmap:tool", {tool: "edit"}); }
      foldPlanning(on);
      fit();
      // the map's own hover and popups rest while editing (as while placing what-if centres)
      L.DomUtil[on ? "addClass" : "removeClass"](map.getContainer(), "gm-placing");
      L.DomUtil[on ? "addClass" : "removeClass"](map.getContainer(), "gm-editing");
      map.closePopup();
      if (on) { map.doubleClickZoom.disable(); setTool("pick"); } else {
        map.doubleClickZoom.enable();
        if (map.pm.globalDrawModeEnabled && map.pm.globalDrawModeEnabled()) { map.pm.disableDraw(); }
      }
    }
    toggle.addEventListener("click", function () { turn(!active()); });
    map.on("gridmap:tool", function (e) { if (e.tool !== "edit") { turn(false); } });
    render();
  };
})();
