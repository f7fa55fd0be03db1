(function () {
  "use strict";
  var graph = document.getElementById("kw-graph");
  if (!graph) { return; }
  function has(el, n) { return (" " + el.getAttribute("data-paths") + " ").indexOf(" " + n + " ") >= 0; }
  function clear() {
    graph.classList.remove("dim");
    document.querySelectorAll(".on").forEach(function (el) { el.classList.remove("on"); });
  }
  function show(n) {
    clear();
    graph.classList.add("dim");
    graph.querySelectorAll("[data-paths]").forEach(function (el) { if (has(el, n)) { el.classList.add("on"); } });
    var row = document.getElementById("kw-path-" + n), steps = document.getElementById("kw-steps-" + n);
    if (row) { row.classList.add("on"); }
    if (steps) { steps.classList.add("on"); }
  }
  function showNode(node) {
    clear();
    graph.classList.add("dim");
    var ids = node.getAttribute("data-paths").split(" ");
    node.classList.add("on");
    ids.forEach(function (n) {
      graph.querySelectorAll(".edge").forEach(function (el) { if (has(el, n)) { el.classList.add("on"); } });
      var row = document.getElementById("kw-path-" + n);
      if (row) { row.classList.add("on"); }
    });
  }
  document.querySelectorAll("tr.path").forEach(function (row) {
    row.addEventListener("click", function () { show(row.getAttribute("data-path")); });
  });
  graph.querySelectorAll(".node").forEach(function (node) {
    node.addEventListener("click", function () { showNode(node); });
  });
  var m = /(?:^|[#&])path=(\d+)/.exec(window.location.hash);
  if (m) { show(m[1]); }
})();
