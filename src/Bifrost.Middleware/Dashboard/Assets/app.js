// Bifrost dashboard: polls api/overview every 2 s and renders it. No dependencies, no inline code (the page's CSP
// allows scripts and styles from this origin only).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function text(id, value) {
    var el = document.querySelector('[data-testid="' + id + '"]');
    if (el && el.textContent !== value) { el.textContent = value; }
  }

  function number(n) { return n === null || n === undefined ? "–" : n.toLocaleString("en-US"); }
  function ms(n) { return n === null || n === undefined ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: 1 }); }
  function usd(n) { return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 6 }); }
  function percent(n) { return (n * 100).toLocaleString("en-US", { maximumFractionDigits: 1 }) + " %"; }

  function chart(id, series) {
    var svg = document.getElementById(id);
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) { max = v; } }); });
    if (max === 0) { max = 1; }
    var width = 600, height = 160, pad = 4;
    series.forEach(function (s) {
      var n = s.values.length, points = [];
      s.values.forEach(function (v, i) {
        if (v === null) { return; }
        var x = n <= 1 ? 0 : (i / (n - 1)) * width;
        var y = height - pad - (v / max) * (height - 2 * pad);
        points.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", s.color);
      line.setAttribute("stroke-width", "2");
      line.setAttribute("data-series", s.name);
      svg.appendChild(line);
      if (points.length > 0) {
        // the latest point as a dot: a series of one point draws no line
        var last = points[points.length - 1].split(",");
        var dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", last[0]);
        dot.setAttribute("cy", last[1]);
        dot.setAttribute("r", "3");
        dot.setAttribute("fill", s.color);
        svg.appendChild(dot);
      }
    });
    var label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "4");
    label.setAttribute("y", "14");
    label.setAttribute("font-size", "12");
    label.setAttribute("fill", "#667085");
    label.textContent = "max " + max.toLocaleString("en-US", { maximumFractionDigits: 4 });
    svg.appendChild(label);
  }

  function rows(testid, items, cells) {
    var body = document.querySelector('[data-testid="' + testid + '"] tbody');
    while (body.firstChild) { body.removeChild(body.firstChild); }
    items.forEach(function (item) {
      var tr = document.createElement("tr");
      cells(item).forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = cell.text;
        if (cell.name) { td.setAttribute("data-cell", cell.name); }
        if (cell.cls) { td.className = cell.cls; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function render(o) {
    text("rps", o.requests_per_second.toLocaleString("en-US", { maximumFractionDigits: 1 }));
    text("requests-total", number(o.requests));
    text("error-rate", percent(o.error_rate));
    text("latency", ms(o.latency_p50_ms) + " / " + ms(o.latency_p95_ms) + " / " + ms(o.latency_p99_ms) + " ms");
    text("tokens", number(o.input_tokens) + " / " + number(o.output_tokens));
    text("cost", usd(o.cost_usd));
    text("started", new Date(o.started_at).toISOString());
    var s = o.series;
    chart("chart-requests", [
      { name: "requests", color: "#2f6fed", values: s.map(function (p) { return p.requests; }) },
      { name: "errors", color: "#d92d20", values: s.map(function (p) { return p.errors; }) }]);
    chart("chart-latency", [
      { name: "p50", color: "#2f6fed", values: s.map(function (p) { return p.p50_ms; }) },
      { name: "p95", color: "#f79009", values: s.map(function (p) { return p.p95_ms; }) }]);
    chart("chart-tokens", [{ name: "tokens", color: "#12b76a", values: s.map(function (p) { return p.tokens; }) }]);
    chart("chart-cost", [{ name: "cost", color: "#7a5af8", values: s.map(function (p) { return p.cost_usd; }) }]);
    rows("models", o.models, function (m) {
      return [{ text: m.provider, name: "provider" }, { text: m.model, name: "model" }, { text: number(m.requests), name: "requests" },
        { text: number(m.errors), name: "errors", cls: m.errors ? "errors" : "" }, { text: number(m.input_tokens), name: "input" },
        { text: number(m.output_tokens), name: "output" }, { text: usd(m.cost_usd), name: "cost" }, { text: ms(m.p95_ms), name: "p95" }];
    });
    rows("providers", o.providers, function (p) {
      var a = p.attempts || {};
      var last = p.last_errors.map(function (e) { return e.error_type + " (" + e.model + ")"; }).join(", ");
      return [{ text: p.name, name: "provider" }, { text: number(p.requests), name: "requests" },
        { text: number(p.errors), name: "errors", cls: p.errors ? "errors" : "" }, { text: percent(p.success_rate), name: "success" },
        { text: [a.success || 0, a.retry || 0, a.fallback || 0, a.error || 0].join(" / "), name: "attempts" },
        { text: last || "–", name: "last-errors" }];
    });
  }

  function poll() {
    fetch("api/overview", { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (o) {
        render(o);
        var status = document.getElementById("status");
        status.className = "";
        status.textContent = "updated " + new Date(o.now).toLocaleTimeString("en-GB");
      })
      .catch(function (e) {
        var status = document.getElementById("status");
        status.className = "error";
        status.textContent = "cannot reach the gateway (" + e.message + ")";
      })
      .then(function () { setTimeout(poll, 2000); });
  }

  function show(page) {
    document.querySelectorAll(".page").forEach(function (p) { p.hidden = p.id !== "page-" + page; });
    document.querySelectorAll("nav a").forEach(function (a) { a.className = a.getAttribute("data-page") === page ? "active" : ""; });
  }

  window.addEventListener("hashchange", function () { show((location.hash || "#overview").substring(1)); });
  show((location.hash || "#overview").substring(1));
  poll();
})();
