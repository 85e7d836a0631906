/* gridmap's map behaviour: layers fetched by URL, tooltips and popups built from text
 * nodes (feature values never become HTML), clustering, search, full screen.
 * The Python builders in maps/ emit only calls to these functions with JSON options. */
(function () {
  "use strict";
  var registry = window.gridmap = window.gridmap || {layers: {}, pending: [], maps: []};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
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
    if (opts.data) {
      layer.addData(opts.data);
      if (opts.show) { shown.addTo(map); }
      return shown;
    }
    var loading = null;
    function load() {  // fetched once, when the layer is first shown
      loading = loading || fetch(opts.url, {credentials: "same-origin"})
        .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.url); } return r.json(); })
        .then(function (data) {
          layer.addData(data);
          if (opts.cluster) { shown.addLayers(layer.getLayers()); }
          layer.fire("gridmap:loaded");
        })
        .catch(function (err) { console.warn("gridmap: could not load layer " + opts.name, err); });
      return loading;
    }
    if (opts.show) { shown.addTo(map); registry.pending.push(load()); } else { shown.once("add", load); }
    return shown;
  };

  registry.searchControl = function (map, opts) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var box = el("form", "gm-search leaflet-bar");
      var input = el("input");
      input.type = "search";
      input.placeholder = opts.placeholder;
      input.setAttribute("aria-label", opts.placeholder);
      input.setAttribute("list", "gm-search-list");
      var list = el("datalist");
      list.id = "gm-search-list";
      var message = el("div", "gm-search-message");
      box.appendChild(input); box.appendChild(list); box.appendChild(message);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);

      var index = null;  // name -> [layers], built from the searched layer once it has loaded
      function build() {
        index = new Map();
        var source = registry.layers[opts.layer];
        source.eachLayer(function (item) {
          opts.fields.forEach(function (field) {
            var name = item.feature.properties[field];
            if (!name) { return; }
            if (!index.has(name)) { index.set(name, []); }
            index.get(name).push(item);
          });
        });
        var names = Array.from(index.keys()).sort();
        names.forEach(function (name) { var o = el("option"); o.value = name; list.appendChild(o); });
      }
      input.addEventListener("focus", function () { if (!index) { build(); } });
      box.addEventListener("submit", function (e) {
        e.preventDefault();
        if (!index) { build(); }
        var query = input.value.trim();
        var hits = index.get(query) || [];
        if (!hits.length) {
          index.forEach(function (items, name) { if (!hits.length && name.indexOf(query) >= 0) { hits = items; } });
        }
        message.textContent = hits.length ? "" : opts.notFound;
        if (!hits.length) { return; }
        var bounds = L.latLngBounds([]);
        hits.forEach(function (item) { bounds.extend(item.getBounds()); });
        map.fitBounds(bounds, {maxZoom: 16});
        // a click on the feature opens the popup its layer binds for all its features
        if (hits.length === 1) { hits[0].fire("click", {latlng: bounds.getCenter()}, true); }
      });
      return box;
    };
    return control.addTo(map);
  };

  registry.fullscreenControl = function (map, opts) {
    var control = L.control({position: "topleft"});
    control.onAdd = function () {
      var bar = el("div", "leaflet-bar");
      var button = el("a", "gm-fullscreen");
      var ns = "http://www.w3.org/2000/svg", icon = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
      icon.setAttribute("viewBox", "0 0 16 16"); icon.setAttribute("width", "16"); icon.setAttribute("height", "16");
      path.setAttribute("d", "M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5");
      path.setAttribute("fill", "none"); path.setAttribute("stroke", "#333"); path.setAttribute("stroke-width", "2");
      icon.appendChild(path);
      button.appendChild(icon);
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

  registry.ready = function (map) {
    registry.map = map;
    registry.maps.push(map);
    registry.done = Promise.all(registry.pending).then(function () {
      document.body.setAttribute("data-gridmap-ready", "1");
    });
  };
})();
