/* gridmap editing pages.
 *
 * Upload page: "Check" posts the file as a dry run (with a preview of the parsed features), shows the
 * report as a table and the features on a small Leaflet map (errors red, warnings orange, others
 * blue); "Store" posts the same file for real with If-Match set to the version the check saw.
 * When the check says the replace removes much of the layer (or all of a district), its impact is shown
 * in words and per district, and "Store" waits for a ticked box before it sends confirm=replace.
 * History page: "Restore" asks first, posts to the restore API, then reloads.
 *
 * Everything that comes from a file or an answer is inserted as text (textContent, text nodes,
 * tooltip elements), never as markup.
 */
(function () {
  "use strict";

  var textsElement = document.getElementById("editing-texts");
  var TEXTS = textsElement ? JSON.parse(textsElement.textContent) : {};
  var COLOURS = { error: "#d62728", warning: "#ff7f0e", ok: "#1f77b4" };
  var RANK = { ok: 0, warning: 1, error: 2 };
  var CANVAS_ABOVE = 1000;  // more features than this: drawn on a canvas, not as SVG elements

  function t(key, n) {
    var s = Object.prototype.hasOwnProperty.call(TEXTS, key) ? TEXTS[key] : key;
    return n === undefined ? s : s.replace("{n}", String(n));
  }

  function present(value) { return value !== null && value !== undefined; }

  /* A feature's number for people, from 1; the report's index (and data-index) stays 0-based. */
  function ordinal(index) { return index + 1; }

  function setStatus(element, state, message, link) {
    element.setAttribute("data-state", state);
    element.removeAttribute("data-confirm");
    element.textContent = message || "";
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      element.appendChild(document.createTextNode(" "));
      element.appendChild(a);
    }
  }

  /* POST and read the answer: {status, body}; status 0 when the server could not be reached. */
  function send(url, data, headers) {
    return fetch(url, { method: "POST", body: data, headers: headers, credentials: "same-origin" }).then(
      function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = JSON.parse(text); } catch (e) { body = null; }
          return { status: response.status, body: body };
        });
      },
      function () { return { status: 0, body: null }; });
  }

  function errorMessage(answer) {
    if (answer.status === 0) return t("editing.network_error");
    var error = answer.body && answer.body.error;
    if (error && error.message) return String(error.message);
    return t("editing.failed") + " (HTTP " + answer.status + ")";
  }

  // --- the preview map -------------------------------------------------------------------------

  function Preview(element) {
    this.element = element;
    this.map = null;
    this.group = null;
    this.byIndex = {};  // feature index -> {layer, key}
    this.byKey = {};  // key -> [layer]
    this.selected = [];
    this.onFeatureClick = null;
    this.renderers = {};  // one of each, reused: Leaflet keeps a renderer on the map once used
  }

  Preview.prototype.ensureMap = function () {
    if (this.map) {
      this.map.invalidateSize();
      return;
    }
    this.map = L.map(this.element, { attributionControl: false, zoomSnap: 0.25 }).setView([29.87, 121.55], 9);
  };

  /* The layers a problem is about: its feature by index when that feature has its key (or it names
   * none), else every feature with its key (a merge reports positions in the merged layer). */
  Preview.prototype.targets = function (problem) {
    var entry = present(problem.index) ? this.byIndex[problem.index] : undefined;
    if (entry && (!present(problem.key) || entry.key === String(problem.key))) return [entry.layer];
    if (present(problem.key) && this.byKey[String(problem.key)]) return this.byKey[String(problem.key)];
    return [];
  };

  Preview.prototype.show = function (collection, keyName, problems) {
    var self = this;
    this.ensureMap();
    if (this.group) this.map.removeLayer(this.group);
    this.byIndex = {};
    this.byKey = {};
    this.selected = [];
    var features = (collection && collection.features) || [];
    var kind = features.length > CANVAS_ABOVE ? "canvas" : "svg";
    var renderer = this.renderers[kind] = this.renderers[kind] || L[kind]();
    var style = function () { return { color: COLOURS.ok, weight: 1.5, fillOpacity: 0.25 }; };
    this.group = L.geoJSON(collection || { type: "FeatureCollection", features: [] }, {
      renderer: renderer,
      style: style,
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, { radius: 6, renderer: renderer });
      },
      onEachFeature: function (feature, layer) {
        var props = feature.properties || {};
        var key = present(props[keyName]) ? String(props[keyName]) : null;
        layer.gridmapIndex = props.index;
        layer.gridmapStatus = "ok";
        self.byIndex[props.index] = { layer: layer, key: key };
        if (key !== null) (self.byKey[key] = self.byKey[key] || []).push(layer);
        layer.bindTooltip(function () {  // an element, so the key is text whatever it contains
          var span = document.createElement("span");
          span.textContent = "#" + ordinal(props.index) + (key !== null ? " · " + key : "");
          return span;
        }, { sticky: true });
        layer.on("click", function () { if (self.onFeatureClick) self.onFeatureClick(props.index); });
      },
    }).addTo(this.map);

    problems.forEach(function (problem) {
      self.targets(problem).forEach(function (layer) {
        if (RANK[problem.kind] > RANK[layer.gridmapStatus]) layer.gridmapStatus = problem.kind;
      });
    });
    var counts = { ok: 0, warning: 0, error: 0 }, drawn = 0;
    this.group.eachLayer(function (layer) {
      drawn += 1;
      counts[layer.gridmapStatus] += 1;
      self.restyle(layer, false);
      if (layer.gridmapStatus !== "ok" && layer.bringToFront) layer.bringToFront();
    });
    this.group.eachLayer(function (layer) {  // errors on top of warnings
      if (layer.gridmapStatus === "error" && layer.bringToFront) layer.bringToFront();
    });
    this.element.setAttribute("data-features", String(drawn));
    this.element.setAttribute("data-error-features", String(counts.error));
    this.element.setAttribute("data-warning-features", String(counts.warning));
    this.fit(this.group, false);  // a new file: straight there
    return drawn;
  };

  Preview.prototype.restyle = function (layer, selected) {
    layer.setStyle({ color: COLOURS[layer.gridmapStatus], fillColor: COLOURS[layer.gridmapStatus],
                     weight: selected ? 4 : (layer.gridmapStatus === "ok" ? 1.5 : 2.5) });
  };

  Preview.prototype.fit = function (layerOrBounds, animate) {
    var bounds = layerOrBounds.getBounds ? layerOrBounds.getBounds() : layerOrBounds;
    if (!bounds.isValid()) return;
    var north = bounds.getNorth(), south = bounds.getSouth();
    if (Math.abs(north) > 90 || Math.abs(south) > 90) return;  // not lon/lat: nothing sensible to fit
    this.map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17, animate: animate });
  };

  Preview.prototype.zoomTo = function (problem) {
    var self = this, layers = this.targets(problem);
    if (!layers.length) return false;
    this.selected.forEach(function (layer) { self.restyle(layer, false); });
    var bounds = L.latLngBounds([]);
    layers.forEach(function (layer) {
      bounds.extend(layer.getBounds ? layer.getBounds() : layer.getLatLng());
      self.restyle(layer, true);
      if (layer.bringToFront) layer.bringToFront();
    });
    this.selected = layers;
    this.fit(bounds, true);
    return true;
  };

  // --- the upload page -------------------------------------------------------------------------

  function uploadPage(form) {
    var status = document.getElementById("upload-status");
    var result = document.getElementById("upload-result");
    var checkButton = document.getElementById("upload-check");
    var storeButton = document.getElementById("upload-store");
    var tbody = document.querySelector("#upload-problems tbody");
    var preview = new Preview(document.getElementById("preview-map"));
    var impactSection = document.getElementById("upload-impact");
    var confirmBox = document.getElementById("upload-confirm");
    var confirmLabel = impactSection.querySelector("label.confirm");
    var elements = form.elements;
    var checked = null;  // what the last check without errors saw: {layer, file, options, version, confirm}
    var busy = false;
    window.gridmapUpload = { preview: preview };  // for tests and curious editors

    function template(name, layer) {
      return form.getAttribute(name).replace("__layer__", encodeURIComponent(layer));
    }

    function options() {
      return { mode: elements.mode.value, coordinates: elements.coordinates.value,
               source_crs: elements.source_crs.value.trim(), encoding: elements.encoding.value.trim() };
    }

    function formData(opts, file, dryRun, confirm) {
      var data = new FormData();
      data.append("csrf_token", elements.csrf_token.value);
      data.append("file", file, file.name);
      data.append("message", elements.message.value);
      Object.keys(opts).forEach(function (name) { if (opts[name]) data.append(name, opts[name]); });
      if (dryRun) {
        data.append("dry_run", "1");
        data.append("preview", "1");
      }
      if (confirm) data.append("confirm", "replace");
      return data;
    }

    /* The check needs confirming and the box is not ticked: "Store" must not send. */
    function awaitingConfirmation() { return Boolean(checked && checked.confirm && !confirmBox.checked); }

    function setBusy(on) {
      busy = on;
      checkButton.disabled = on;
      storeButton.disabled = on || awaitingConfirmation();
      form.setAttribute("aria-busy", on ? "true" : "false");
    }

    function hideImpact() {
      impactSection.hidden = true;
      confirmBox.checked = false;
      confirmLabel.hidden = true;
    }

    function forgetCheck() {
      checked = null;
      storeButton.hidden = true;
      hideImpact();
    }

    /* The report's impact on the current version, as text; true when storing needs confirmation. */
    function showImpact(impact) {
      if (!impact || !impact.before) {  // a first upload removes nothing: no need to say so
        hideImpact();
        return false;
      }
      var needs = impact.needs_confirmation === true;
      impactSection.hidden = false;
      impactSection.setAttribute("data-needs-confirmation", needs ? "true" : "false");
      impactSection.querySelector(".impact-summary").textContent = String(impact.summary || "");
      var districts = impact.districts || [], rows = impactSection.querySelector("tbody");
      rows.textContent = "";
      districts.forEach(function (d) {
        var row = rows.insertRow(), name = row.insertCell();
        name.textContent = String(d.district);
        if (d.emptied) {
          row.className = "emptied";
          var tag = document.createElement("span");
          tag.className = "tag";
          tag.textContent = t("editing.impact_emptied");
          name.appendChild(document.createTextNode(" "));
          name.appendChild(tag);
        }
        [d.before, d.after, d.removed, d.added, d.changed].forEach(function (n) {
          var cell = row.insertCell();
          cell.className = "num";
          cell.textContent = Number(n).toLocaleString();
        });
      });
      impactSection.querySelector(".table-wrap").hidden = !districts.length;
      confirmBox.checked = false;
      confirmLabel.hidden = !needs;
      return needs;
    }

    function askToConfirm() {
      setStatus(status, "ok", t("editing.confirm_needed"));
      status.setAttribute("data-confirm", "needed");
    }

    function field(name, value) {
      result.querySelector('dd[data-field="' + name + '"]').textContent = present(value) && value !== "" ? String(value) : "—";
    }

    function selectRows(index) {
      Array.prototype.forEach.call(tbody.rows, function (row) {
        var match = row.getAttribute("data-index") === String(index);
        row.classList.toggle("selected", match);
      });
      var first = tbody.querySelector("tr.selected");
      if (first) first.scrollIntoView({ block: "nearest" });
    }
    preview.onFeatureClick = selectRows;

    function problemRow(problem) {
      var row = document.createElement("tr");
      row.className = problem.kind;
      row.setAttribute("data-kind", problem.kind);
      if (present(problem.index)) row.setAttribute("data-index", String(problem.index));
      var fieldText = present(problem.field) ? problem.field : (present(problem.index) ? t("editing.geometry") : "");
      [t("editing." + problem.kind), present(problem.index) ? ordinal(problem.index) : t("editing.whole_layer"),
       present(problem.key) ? problem.key : "", fieldText, problem.message].forEach(function (value, i) {
        var cell = document.createElement("td");
        if (i === 1) cell.className = "num";
        cell.textContent = String(value);
        row.appendChild(cell);
      });
      if (preview.targets(problem).length) {
        row.classList.add("zoomable");
        row.tabIndex = 0;
        var zoom = function () {
          Array.prototype.forEach.call(tbody.rows, function (r) { r.classList.remove("selected"); });
          row.classList.add("selected");
          preview.zoomTo(problem);
        };
        row.addEventListener("click", zoom);
        row.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            zoom();
          }
        });
      }
      return row;
    }

    function showReport(body, layer) {
      var report = body.report || {};
      var errors = report.errors || [], warnings = report.warnings || [];
      var problems = errors.map(function (p) { return Object.assign({ kind: "error" }, p); })
        .concat(warnings.map(function (p) { return Object.assign({ kind: "warning" }, p); }));
      result.hidden = false;
      field("features", body.features);
      field("errors", errors.length);
      field("warnings", warnings.length);
      field("version", present(body.version) ? body.version : t("editing.no_version"));
      field("format", report.format);
      field("source_crs", report.source_crs);
      field("encoding", report.encoding);
      var notes = result.querySelector("ul.notes");
      notes.textContent = "";
      (report.notes || []).forEach(function (note) {
        var li = document.createElement("li");
        li.textContent = String(note);
        notes.appendChild(li);
      });

      var keyName = elements.layer.querySelector('option[value="' + layer + '"]').getAttribute("data-key");
      var drawn = preview.show(body.preview, keyName, problems);
      if (!drawn) notes.appendChild(Object.assign(document.createElement("li"), { textContent: t("editing.preview_empty") }));

      tbody.textContent = "";
      if (!problems.length) {
        var row = tbody.insertRow(), cell = row.insertCell();
        cell.colSpan = 5;
        cell.className = "none";
        cell.textContent = t("editing.no_problems");
      }
      problems.forEach(function (problem) { tbody.appendChild(problemRow(problem)); });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;
      var file = elements.file.files[0];
      forgetCheck();
      if (!file) {
        setStatus(status, "error", t("editing.no_file"));
        elements.file.focus();
        return;
      }
      var layer = elements.layer.value, opts = options();
      setBusy(true);
      setStatus(status, "checking", t("editing.checking"));
      send(template("data-api", layer), formData(opts, file, true), { Accept: "application/json" })
        .then(function (answer) {
          var body = answer.body;
          if ((answer.status === 200 || answer.status === 422) && body && body.report) {
            showReport(body, layer);
            if (answer.status === 200) {
              var confirm = showImpact(body.report.impact);
              checked = { layer: layer, file: file, options: opts, version: present(body.version) ? body.version : 0,
                          confirm: confirm };
              storeButton.hidden = false;
              if (confirm) askToConfirm();
              else setStatus(status, "ok", t("editing.ok_to_store"));
            } else {
              setStatus(status, "invalid", t("editing.has_errors"));
            }
          } else {
            result.hidden = true;
            setStatus(status, "error", errorMessage(answer));
          }
          setBusy(false);
        })
        .catch(function (error) {
          setBusy(false);
          setStatus(status, "error", t("editing.failed"));
          throw error;  // a bug: let the console show it
        });
    });

    confirmBox.addEventListener("change", function () {
      if (!busy) storeButton.disabled = awaitingConfirmation();
    });

    storeButton.addEventListener("click", function () {
      if (busy || !checked || awaitingConfirmation()) return;
      var attempt = checked;
      // the version the check saw; "0" when the layer had none, so a first upload cannot race another
      var headers = { Accept: "application/json", "If-Match": '"' + attempt.version + '"' };
      setBusy(true);
      setStatus(status, "storing", t("editing.storing"));
      send(template("data-api", attempt.layer), formData(attempt.options, attempt.file, false, attempt.confirm),
           headers)
        .then(function (answer) {
          var impact = answer.body && answer.body.report && answer.body.report.impact;
          if (answer.status === 409 && impact) {  // the layer changed in a way the check did not see
            checked = attempt;
            attempt.confirm = true;
            showImpact(impact);
            confirmLabel.hidden = false;
            askToConfirm();
            setBusy(false);
            return;
          }
          forgetCheck();
          if (answer.status === 201 && answer.body) {
            var version = answer.body.version;
            setStatus(status, "stored", t("editing.stored", version),
                      { href: template("data-history", attempt.layer), text: t("editing.view_history") });
            status.setAttribute("data-version", String(version));
            field("version", version);
          } else if (answer.status === 412) {
            setStatus(status, "conflict", t("editing.conflict"));
          } else {
            setStatus(status, "error", errorMessage(answer));
          }
          setBusy(false);
        })
        .catch(function (error) {
          setBusy(false);
          setStatus(status, "error", t("editing.failed"));
          throw error;
        });
    });

    function changed(event) {
      var name = event.target.name;
      if (name === "message" || name === "csrf_token") return;  // the message does not change the check
      if (event.target === confirmBox) return;  // ticking the box is what the check asked for
      if (!checked && result.hidden) return;
      forgetCheck();
      setStatus(status, "changed", t("editing.changed"));
    }
    form.addEventListener("change", changed);
    form.addEventListener("input", changed);
  }

  // --- the history page ------------------------------------------------------------------------

  function restoreForm(form) {
    var status = document.getElementById("history-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var number = form.getAttribute("data-version");
      if (!window.confirm(t("editing.restore_confirm", number))) return;
      var button = form.querySelector("button");
      button.disabled = true;
      var headers = { Accept: "application/json", "X-CSRFToken": form.elements.csrf_token.value };
      var current = form.getAttribute("data-if-match");
      if (current) headers["If-Match"] = '"' + current + '"';
      send(form.action, new FormData(form), headers).then(function (answer) {
        if (answer.status === 201) {
          window.location.reload();
          return;
        }
        button.disabled = false;
        if (answer.status === 412) setStatus(status, "conflict", t("editing.restore_conflict"));
        else setStatus(status, "error", errorMessage(answer));
      });
    });
  }

  var uploadForm = document.getElementById("upload-form");
  if (uploadForm) uploadPage(uploadForm);
  Array.prototype.forEach.call(document.querySelectorAll("form.restore"), restoreForm);
})();
