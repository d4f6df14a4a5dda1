// WRM console: refreshes the first page of the run list every 10 s (unless paused, the page is
// hidden or focus is in the rows) and folds the filters on a phone. Pages work without it.
"use strict";
(function () {
  function refresh() {
    var table = document.querySelector("table[data-refresh]");
    var box = document.getElementById("auto-refresh");
    if (!table || !box) return;
    setInterval(function () {
      if (!box.checked || document.hidden) return;
      var old = document.getElementById("run-rows");
      // never pull the rows from under a keyboard or screen-reader user's focus
      if (old && old.contains(document.activeElement)) return;
      fetch(table.getAttribute("data-refresh"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var holder = document.createElement("table");
          holder.innerHTML = html;
          var rows = holder.querySelector("tbody");
          var now = document.getElementById("run-rows");
          if (rows && now && !now.contains(document.activeElement)) now.replaceWith(rows);
        })
        .catch(function () { /* keep the rows shown; the next tick tries again */ });
    }, 10000);
  }
  function compactFilters() {
    // on a phone the filters start folded (the list is what one came for), unless one is wrong
    var box = document.querySelector("details.filter-box");
    if (box && window.matchMedia("(max-width: 640px)").matches && !box.querySelector("[aria-invalid]")) {
      box.removeAttribute("open");
    }
  }
  document.addEventListener("DOMContentLoaded", function () { refresh(); compactFilters(); });
})();
