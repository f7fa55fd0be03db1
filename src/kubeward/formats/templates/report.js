(function () {
  "use strict";
  // Filters live in the URL fragment (#q=text&sev=critical,high) so a filtered view can be shared as a link.
  var search = document.getElementById("kw-search");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-sev-filter]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("details.control"));
  var shown = document.getElementById("kw-shown");
  if (!search) { return; }

  function readHash() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    if (params.has("q")) { search.value = params.get("q"); }
    if (params.has("sev")) {
      var wanted = params.get("sev").split(",");
      boxes.forEach(function (b) { b.checked = wanted.indexOf(b.getAttribute("data-sev-filter")) !== -1; });
    }
  }

  function writeHash() {
    var params = new URLSearchParams();
    if (search.value) { params.set("q", search.value); }
    var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.getAttribute("data-sev-filter"); });
    if (on.length !== boxes.length) { params.set("sev", on.join(",")); }
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { /* file:// in some browsers */ }
  }

  function apply() {
    var q = (search.value || "").toLowerCase().trim();
    var on = {};
    boxes.forEach(function (b) { on[b.getAttribute("data-sev-filter")] = b.checked; });
    var total = 0;
    groups.forEach(function (g) {
      var visible = 0;
      var sevOn = on[g.getAttribute("data-severity")] !== false;
      g.querySelectorAll("tr[data-text]").forEach(function (tr) {
        var hit = sevOn && (!q || tr.getAttribute("data-text").indexOf(q) !== -1);
        tr.classList.toggle("hidden", !hit);
        if (hit) { visible += 1; }
      });
      g.classList.toggle("hidden", visible === 0);
      total += visible;
    });
    if (shown) { shown.textContent = String(total); }
  }

  function changed() { apply(); writeHash(); }
  search.addEventListener("input", changed);
  boxes.forEach(function (b) { b.addEventListener("change", changed); });
  readHash();
  apply();
})();
