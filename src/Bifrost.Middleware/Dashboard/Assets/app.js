// Bifrost dashboard: polls api/overview every 2 s and renders it; the Requests and Jobs pages poll while shown. No dependencies, no inline code (the page's CSP
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

  // The request log page: the newest 100 entries matching the filters, refreshed every 2 s while the page is shown.
  var selected = null;

  function requestsQuery() {
    var form = document.getElementById("request-filters");
    var params = new URLSearchParams();
    ["provider", "model", "status", "source"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) { params.set(name, value); }
    });
    params.set("limit", "100");
    return "api/requests?" + params.toString();
  }

  function renderRequests(list) {
    var body = document.querySelector('[data-testid="requests"] tbody');
    while (body.firstChild) { body.removeChild(body.firstChild); }
    list.data.forEach(function (e) {
      var tr = document.createElement("tr");
      tr.className = "clickable" + (e.id === selected ? " selected" : "");
      tr.setAttribute("data-id", e.id);
      var tokens = e.input_tokens === null && e.output_tokens === null ? "–" : number(e.input_tokens) + " / " + number(e.output_tokens);
      [[new Date(e.time).toLocaleTimeString("en-GB"), "time"], [e.operation, "operation"], [e.source, "source"], [e.provider || "–", "provider"],
        [e.model || "–", "model"], [String(e.status) + (e.error_code ? " " + e.error_code : ""), "status"], [number(e.latency_ms), "latency"],
        [e.time_to_first_chunk_ms === null ? "–" : number(e.time_to_first_chunk_ms), "ttfc"], [tokens, "tokens"],
        [e.cost_usd === null ? "–" : usd(e.cost_usd), "cost"], [e.virtual_key_id ? "vk:" + e.virtual_key_id : (e.owner || "–"), "owner"]]
        .forEach(function (cell) {
          var td = document.createElement("td");
          td.textContent = cell[0];
          td.setAttribute("data-cell", cell[1]);
          if (cell[1] === "status" && e.status >= 400) { td.className = "status-error"; }
          tr.appendChild(td);
        });
      tr.addEventListener("click", function () { detail(e.id); });
      body.appendChild(tr);
    });
    text("requests-status", list.data.length + (list.has_more ? "+" : "") + " shown");
  }

  function detail(id) {
    selected = id;
    fetch("api/requests/" + encodeURIComponent(id), { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (e) {
        var aside = document.getElementById("request-detail");
        var dl = aside.querySelector("dl");
        while (dl.firstChild) { dl.removeChild(dl.firstChild); }
        Object.keys(e).forEach(function (key) {
          if (e[key] === null || e[key] === undefined) { return; }
          var dt = document.createElement("dt");
          dt.textContent = key;
          var dd = document.createElement("dd");
          dd.textContent = typeof e[key] === "object" ? JSON.stringify(e[key], null, 2) : String(e[key]);
          dd.setAttribute("data-field", key);
          dl.appendChild(dt);
          dl.appendChild(dd);
        });
        text("detail-id", e.id);
        aside.hidden = false;
        document.querySelectorAll('[data-testid="requests"] tbody tr').forEach(function (tr) {
          tr.className = "clickable" + (tr.getAttribute("data-id") === id ? " selected" : "");
        });
      })
      .catch(function (err) { text("requests-status", "cannot read the request (" + err.message + ")"); });
  }

  function pollRequests() {
    if (document.getElementById("page-requests").hidden) { setTimeout(pollRequests, 2000); return; }
    fetch(requestsQuery(), { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(renderRequests)
      .catch(function (err) { text("requests-status", "cannot read the request log (" + err.message + ")"); })
      .then(function () { setTimeout(pollRequests, 2000); });
  }

  function refreshRequests() {
    fetch(requestsQuery(), { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (list) { if (list) { renderRequests(list); } });
  }

  document.getElementById("request-filters").addEventListener("input", refreshRequests);
  document.getElementById("request-filters").addEventListener("submit", function (e) { e.preventDefault(); });

  // The Jobs page: batches and async jobs of every owner (api/jobs), refreshed every 1.5 s while the page is shown. A
  // cancel asks first, then posts with the X-Bifrost-Dashboard header (the API refuses a cancel without it: CSRF).
  var jobsShown = {};

  function jobsQuery(kind) {
    var params = new URLSearchParams();
    params.set("kind", kind);
    var state = document.getElementById("jobs-state").value;
    if (state) { params.set("state", state); }
    params.set("limit", "50");
    return "api/jobs?" + params.toString();
  }

  function time(t) { return t ? new Date(t).toLocaleTimeString("en-GB") : "–"; }

  function addCell(tr, value, name, cls) {
    var td = document.createElement("td");
    if (typeof value === "string") { td.textContent = value; } else { td.appendChild(value); }
    td.setAttribute("data-cell", name);
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function cancelCell(tr, job) {
    var td = addCell(tr, "", "actions");
    if (!job.cancellable) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "cancel";
    button.textContent = "Cancel";
    button.setAttribute("data-testid", "cancel-" + job.id);
    button.addEventListener("click", function () {
      var what = job.type === "batch" ? "batch " + job.id + "? Lines not yet run will not run; finished lines are kept." : "job " + job.id + "?";
      if (!window.confirm("Cancel " + what)) { return; }
      button.disabled = true;
      fetch("api/jobs/" + encodeURIComponent(job.id) + "/cancel", { method: "POST", headers: { "Accept": "application/json", "X-Bifrost-Dashboard": "1" }, cache: "no-store" })
        .then(function (r) {
          return r.json().then(function (body) {
            if (!r.ok) { throw new Error(body && body.error && body.error.message ? body.error.message : "HTTP " + r.status); }
          });
        })
        .then(function () { text("jobs-message", "cancel requested for " + job.id); refreshJobs(); })
        .catch(function (err) { button.disabled = false; text("jobs-message", "cannot cancel " + job.id + " (" + err.message + ")"); });
    });
    td.appendChild(button);
  }

  function renderJobs(testid, list, cells) {
    var key = JSON.stringify(list.data);
    if (jobsShown[testid] === key) { return; } // unchanged: keep the rows (and a button about to be clicked)
    jobsShown[testid] = key;
    var body = document.querySelector('[data-testid="' + testid + '"] tbody');
    while (body.firstChild) { body.removeChild(body.firstChild); }
    list.data.forEach(function (job) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-id", job.id);
      cells(tr, job);
      body.appendChild(tr);
    });
  }

  function batchCells(tr, b) {
    var c = b.request_counts || { total: 0, completed: 0, failed: 0 };
    var done = c.completed + c.failed;
    addCell(tr, b.id, "id");
    addCell(tr, b.status, "status", "status-" + b.status);
    addCell(tr, b.endpoint || "–", "endpoint");
    addCell(tr, b.model ? (b.provider ? b.provider + "/" : "") + b.model : "–", "model");
    var wrap = document.createElement("span");
    var bar = document.createElement("progress");
    bar.max = Math.max(1, c.total);
    bar.value = done;
    bar.setAttribute("data-cell", "bar");
    var label = document.createElement("span");
    label.setAttribute("data-cell", "progress");
    label.textContent = done + " / " + c.total + (c.failed ? " (" + c.failed + " failed)" : "");
    wrap.appendChild(bar);
    wrap.appendChild(label);
    addCell(tr, wrap, "progress-cell");
    addCell(tr, time(b.created_at), "created");
    addCell(tr, b.owner, "owner");
    cancelCell(tr, b);
  }

  function asyncCells(tr, j) {
    addCell(tr, j.id, "id");
    addCell(tr, j.kind, "kind");
    addCell(tr, j.status, "status", "status-" + j.status);
    addCell(tr, time(j.created_at), "created");
    addCell(tr, number(j.waited_ms), "waited");
    addCell(tr, number(j.ran_ms), "ran");
    addCell(tr, j.error_code || "–", "error");
    addCell(tr, j.owner, "owner");
    cancelCell(tr, j);
  }

  function fetchJson(url) {
    return fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body && body.error && body.error.message ? body.error.message : "HTTP " + r.status); }
          return body;
        });
      });
  }

  function refreshJobs() {
    return Promise.all([fetchJson(jobsQuery("batch")), fetchJson(jobsQuery("async"))])
      .then(function (lists) {
        renderJobs("batches", lists[0], batchCells);
        renderJobs("async-jobs", lists[1], asyncCells);
        text("jobs-status", lists[0].data.length + (lists[0].has_more ? "+" : "") + " batches, " + lists[1].data.length + (lists[1].has_more ? "+" : "") + " async jobs shown");
      })
      .catch(function (err) { text("jobs-status", "cannot list the jobs (" + err.message + ")"); });
  }

  function pollJobs() {
    if (document.getElementById("page-jobs").hidden) { setTimeout(pollJobs, 1500); return; }
    refreshJobs().then(function () { setTimeout(pollJobs, 1500); });
  }

  document.getElementById("jobs-state").addEventListener("change", function () { jobsShown = {}; refreshJobs(); });

  function show(page) {
    document.querySelectorAll(".page").forEach(function (p) { p.hidden = p.id !== "page-" + page; });
    document.querySelectorAll("nav a").forEach(function (a) { a.className = a.getAttribute("data-page") === page ? "active" : ""; });
    if (page === "requests") { refreshRequests(); }
    if (page === "jobs") { refreshJobs(); }
  }

  window.addEventListener("hashchange", function () { show((location.hash || "#overview").substring(1)); });
  show((location.hash || "#overview").substring(1));
  poll();
  pollRequests();
  pollJobs();
})();
