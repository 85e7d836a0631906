/* gridmap dashboard: click a table heading to sort by it; type in a filter box to hide rows by unit name. */
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function value(cell, numeric) {
    var text = cell ? cell.textContent.trim() : "";
    if (!numeric) return text;
    var n = parseFloat(text.replace(/[^\d.\-]/g, ""));  // "1,234" and "83.2%" read as numbers
    return isNaN(n) ? null : n;  // "—": no value
  }

  function sort(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return [value(row.cells[index], numeric), row];
    });
    rows.sort(function (a, b) {
      if (a[0] === null || b[0] === null) return (a[0] === null) - (b[0] === null);  // no value: last
      var d = numeric ? a[0] - b[0] : a[0].localeCompare(b[0], "zh-CN");
      return ascending ? d : -d;
    });
    each(table.querySelectorAll("th[aria-sort]"), function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var fragment = document.createDocumentFragment();
    rows.forEach(function (pair) { fragment.appendChild(pair[1]); });
    table.tBodies[0].appendChild(fragment);
  }

  function filter(table, query) {
    var names = parseInt(table.getAttribute("data-names"), 10) || 1;
    query = query.trim().toLowerCase();
    each(table.tBodies[0].rows, function (row) {
      var text = "";
      for (var i = 0; i < names; i++) text += row.cells[i].textContent + "\n";
      row.hidden = query !== "" && text.toLowerCase().indexOf(query) < 0;
    });
  }

  each(document.querySelectorAll("table.sortable"), function (table) {
    each(table.querySelectorAll("th[data-sort]"), function (th) {
      th.addEventListener("click", function () { sort(table, th); });  // the button inside, too
    });
    var input = document.querySelector('input[data-filter="' + table.getAttribute("data-level") + '"]');
    if (input) input.addEventListener("input", function () { filter(table, input.value); });
  });

  function openTarget() {  // a link to #level-community opens that section
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();

  // Coverage over time: the API's shares at each of the last versions (newest first), as rows of text
  // with a bar; old versions may take a while the first time (computed, then kept), so the page does not wait.
  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }
  function share(td, found) {
    var value = found && found.covered_share;
    td.textContent = "";
    if (value === null || value === undefined) { td.textContent = "—"; return; }
    var bar = document.createElement("span");
    bar.className = "history-bar";
    bar.style.width = (value * 100).toFixed(1) + "%";
    var label = document.createElement("span");
    label.textContent = (value * 100).toFixed(1) + "%";
    td.appendChild(bar);
    td.appendChild(label);
    td.setAttribute("data-share", String(value));
  }
  each(document.querySelectorAll("section.history[data-url]"), function (section) {
    var texts = JSON.parse(section.getAttribute("data-texts"));
    var status = section.querySelector(".history-status"), wrap = section.querySelector(".history-wrap");
    var body = section.querySelector("tbody");
    fetch(section.getAttribute("data-url"), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) throw new Error((data && data.error && data.error.message) || r.status);
          return data;
        });
      })
      .then(function (data) {
        data.points.forEach(function (p) {
          var row = document.createElement("tr");
          cell(row, p.time_shown || p.time);  // formatted by the server, in GRIDMAP_TIMEZONE
          cell(row, texts.versions.replace("{grids}", p.versions.grids).replace("{centers}",
            p.versions.centers === null ? "—" : p.versions.centers));
          share(cell(row, "", "num history-whole"), p.whole);
          if (p.unit) share(cell(row, "", "num history-unit"), p.unit);
          body.appendChild(row);
        });
        status.hidden = true;
        wrap.hidden = false;
        section.setAttribute("data-state", "loaded");
      })
      .catch(function (err) {
        status.textContent = texts.failed + ": " + err.message;
        section.setAttribute("data-state", "error");
      });
  });
})();
