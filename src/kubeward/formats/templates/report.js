(function () {
  "use strict";
  var search = document.getElementById("kw-search");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-sev-filter]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("details.control"));
  var shown = document.getElementById("kw-shown");
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
  if (search) { search.addEventListener("input", apply); }
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
})();
