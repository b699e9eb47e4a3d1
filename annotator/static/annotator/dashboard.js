// The project dashboard: progress, annotators, labels, suggestion quality, training runs (live
// loss curve, cancel / retry, comparison) and the embedding map. Charts are plotly.js, served as a
// static file from the plotly wheel (window.Plotly); the data comes from two JSON endpoints.

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const message = document.getElementById("dash-message");
const PLOT = { displaylogo: false, responsive: true };
const STATE_COLOURS = { submitted: "#16a34a", with_suggestions: "#f59e0b", unlabeled: "#94a3b8", skipped: "#ef4444" };
const url = (template, id) => template.replace("{id}", id);
let data = null;
let labelsById = new Map();
const selected = new Set();
let lossRun = null;
let lossTimer = null;
let sortBy = { key: "map", descending: true };

async function call(address, method = "GET") {
  const response = await fetch(address, {
    method, credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: method === "POST" ? "{}" : undefined,
  });
  const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function layout(title, extra = {}) {
  return { title: { text: title, font: { size: 14 } }, margin: { t: 40, r: 10, b: 40, l: 50 }, height: 300,
           legend: { orientation: "h" }, ...extra };
}

// Plotly renders a subset of HTML in chart text (<a href>, <b>, ...): label and user names are
// people's text, so they are escaped to show as written and never become links.
const plain = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const labelName = (id) => plain(labelsById.get(id)?.name ?? "–");
const labelColour = (id) => labelsById.get(id)?.color ?? "#64748b";
const fmt = (v, digits = 3) => (v == null ? "–" : Number(v).toFixed(digits));

function drawProgress() {
  const p = data.progress;
  const keys = ["submitted", "with_suggestions", "unlabeled", "skipped"];
  Plotly.react("chart-progress", [{
    type: "bar", x: keys.map((k) => k.replace("_", " ")), y: keys.map((k) => p[k]),
    marker: { color: keys.map((k) => STATE_COLOURS[k]) }, text: keys.map((k) => p[k]), textposition: "auto",
  }], layout(`Images by state (${p.total} in all)`), PLOT);
  const days = data.submitted_per_day;
  Plotly.react("chart-progress-time", [
    { type: "scatter", mode: "lines+markers", name: "submitted (cumulative)", x: days.map((d) => d.day), y: days.map((d) => d.cumulative) },
    { type: "bar", name: "submitted that day", x: days.map((d) => d.day), y: days.map((d) => d.submitted), opacity: 0.5 },
  ], layout("Submitted over time"), PLOT);
}

function drawAnnotators() {
  const { people, per_day: perDay } = data.annotators;
  document.getElementById("activity-days").textContent = `last ${data.activity_days} days`;
  for (const [field, id] of [["images", "chart-annotator-images"], ["boxes", "chart-annotator-boxes"], ["tags", "chart-annotator-tags"]]) {
    const traces = people.map((person) => {
      const rows = perDay.filter((r) => r.user === person.id);
      return { type: "bar", name: plain(person.name), x: rows.map((r) => r.day), y: rows.map((r) => r[field]) };
    });
    Plotly.react(id, traces.length ? traces : [{ type: "bar", x: [], y: [] }],
                 layout(`${field[0].toUpperCase()}${field.slice(1)} per annotator per day`, { barmode: "stack" }), PLOT);
  }
  const percent = (rate) => (rate == null ? "–" : `${Math.round(rate * 100)} %`);
  const reviews = new Map(data.reviews.map((r) => [r.annotator_id, r]));
  document.getElementById("people").replaceChildren(...people.map((p) => {
    const review = reviews.get(p.id);
    return row([p.name, p.median_seconds == null ? "–" : `${p.median_seconds.toFixed(1)} s`,
                `${p.accepted} / ${p.decided}`, percent(p.accept_rate),
                review ? `${review.accepted} / ${review.accepted + review.rejected}` : "–",
                percent(review ? review.accept_rate : null)]);
  }));
  document.getElementById("agreement").replaceChildren(...(data.agreement.length ? data.agreement.map((a) =>
    row([a.annotators.join(" & "), String(a.images), a.box_f1.toFixed(2), a.tag_jaccard.toFixed(2)]))
    : [row(["No image has been labeled twice yet (set an overlap percentage on the project page).", "", "", ""])]));
}

function row(texts) {
  const tr = document.createElement("tr");
  for (const text of texts) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
  return tr;
}

function drawLabels() {
  const rows = data.label_counts;
  const names = rows.map((r) => labelName(r.label));
  const series = [["boxes", "boxes"], ["human_tags", "tags by people"], ["model_tags", "accepted suggestions"], ["suggested", "suggested now"]];
  Plotly.react("chart-labels", series.map(([key, name]) => ({ type: "bar", name, x: names, y: rows.map((r) => r[key]) })),
               layout("Human labels and suggestions per label", { barmode: "group" }), PLOT);
  const q = data.suggestion_quality;
  const qNames = q.labels.map((r) => labelName(r.label));
  Plotly.react("chart-quality", [
    { type: "bar", name: "accept rate (live precision)", x: qNames, y: q.labels.map((r) => r.accept_rate),
      text: q.labels.map((r) => `${r.accepted}/${r.decided}`), textposition: "auto" },
    { type: "bar", name: "probe CV AP", x: qNames, y: q.labels.map((r) => r.cv_ap) },
    { type: "bar", name: "probe CV F1", x: qNames, y: q.labels.map((r) => r.cv_f1) },
  ], layout("Suggestion quality per label", { barmode: "group", yaxis: { range: [0, 1] } }), PLOT);
  document.getElementById("quality-summary").textContent = q.probe_run
    ? `Current probe (run #${q.probe_run}, ${q.labeled ?? "?"} labeled images): CV mAP ${fmt(q.map)}, micro F1 ${fmt(q.micro_f1)}, macro F1 ${fmt(q.macro_f1)}.`
    : "No probe has been fitted yet: pretrain from the project page.";
}

function runActions(run) {
  const td = document.createElement("td");
  const button = (text, action) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
    b.addEventListener("click", async (event) => {
      event.stopPropagation();
      try { await call(url(action, run.id), "POST"); await load(); } catch (error) { message.textContent = error.message; }
    });
    return b;
  };
  if ((run.status === "queued" || run.status === "running") && !run.cancel_requested) td.append(button("Cancel", config.urls.cancel));
  if (run.status === "failed" || run.status === "cancelled") td.append(button("Retry", config.urls.retry));
  return td;
}

function drawRuns() {
  const body = document.getElementById("runs");
  body.replaceChildren(...data.runs.map((run) => {
    const tr = document.createElement("tr");
    tr.dataset.runId = run.id;
    tr.classList.toggle("loss-shown", run.id === lossRun);
    const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: selected.has(run.id), title: "Compare this run" });
    box.addEventListener("click", (event) => event.stopPropagation());
    box.addEventListener("change", () => { box.checked ? selected.add(run.id) : selected.delete(run.id); drawComparison(); });
    const pick = document.createElement("td");
    pick.append(box);
    const cells = [`#${run.id} ${run.kind}`, run.status, run.device || "", run.duration_s == null ? "" : `${run.duration_s} s`,
                   run.images_per_s == null ? "" : Math.round(run.images_per_s), fmt(run.loss, 2), fmt(run.probe?.map)];
    tr.append(pick, ...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
    const files = document.createElement("td");
    files.className = "files";
    files.dataset.runId = run.id;
    fileLinks(files, run.files);
    tr.append(files, runActions(run));
    if (run.kind === "pretrain") tr.addEventListener("click", () => showLoss(run.id));
    return tr;
  }));
  drawComparison();
}

function fileLinks(td, files) {
  // TensorBoard: download the event files into a folder and run `tensorboard --logdir` on it.
  td.replaceChildren(...files.map((f) => Object.assign(document.createElement("a"), {
    href: f.url, className: "small", title: f.name,
    textContent: f.kind === "trace" ? "profiler trace" : "TensorBoard events" })));
}

async function showLoss(runId) {
  clearTimeout(lossTimer);
  lossRun = runId;
  document.querySelectorAll("#runs tr").forEach((tr) => tr.classList.toggle("loss-shown", Number(tr.dataset.runId) === runId));
  let run;
  try { run = await call(url(config.urls.run, runId)); } catch (error) { message.textContent = error.message; return; }
  if (lossRun !== runId) return;
  const history = run.loss_history || [];
  Plotly.react("chart-loss", [{ type: "scatter", mode: "lines", name: "loss", x: history.map((h) => h[0]), y: history.map((h) => h[1]) }],
               layout(`Run #${run.id} loss by step`, { xaxis: { title: { text: "step" } } }), PLOT);
  const progress = run.epochs ? `epoch ${Math.min(run.epoch + (run.status === "running" ? 1 : 0), run.epochs)}/${run.epochs}` : "";
  document.getElementById("loss-caption").textContent = `${run.status} · ${progress} · ${run.images_per_s ? Math.round(run.images_per_s) + " img/s" : ""}`;
  const files = document.querySelector(`td.files[data-run-id="${run.id}"]`);
  if (files) fileLinks(files, run.files);
  const active = run.status === "running" || run.status === "queued";
  if (active) lossTimer = setTimeout(() => showLoss(runId), 2000);
  // The run just ended: the table, the probe metrics and the map change with it.
  const shown = data?.runs.find((r) => r.id === runId);
  if (!active && shown && (shown.status === "running" || shown.status === "queued")) load();
}

const COMPARE_COLUMNS = [
  ["id", "run", (r) => r.id], ["status", "status", (r) => r.status],
  ["resolution", "resolution", (r) => r.config.resolution], ["epochs", "epochs", (r) => r.config.epochs],
  ["batch_size", "batch", (r) => r.config.batch_size], ["lr_weights", "lr", (r) => r.config.lr_weights],
  ["crop_min", "crop min", (r) => r.config.crop_min], ["projector", "projector", (r) => (r.config.projector || []).join("-")],
  ["final_loss", "final loss", (r) => r.final_loss], ["map", "probe mAP", (r) => r.probe?.map],
  ["micro_f1", "micro F1", (r) => r.probe?.micro_f1], ["macro_f1", "macro F1", (r) => r.probe?.macro_f1],
  ["labeled", "labeled", (r) => r.probe?.labeled],
];

function drawComparison() {
  const table = document.getElementById("compare-table");
  const runs = data.runs.filter((r) => selected.has(r.id) && r.kind === "pretrain");
  const column = COMPARE_COLUMNS.find(([key]) => key === sortBy.key) || COMPARE_COLUMNS[0];
  runs.sort((a, b) => {
    const x = column[2](a), y = column[2](b);
    if (x == null) return 1;
    if (y == null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (sortBy.descending ? -1 : 1);
  });
  const head = document.createElement("tr");
  for (const [key, title] of COMPARE_COLUMNS) {
    const th = Object.assign(document.createElement("th"), { textContent: title, tabIndex: 0 });
    th.dataset.key = key;
    if (key === sortBy.key) th.setAttribute("aria-sort", sortBy.descending ? "descending" : "ascending");
    const sort = () => { sortBy = { key, descending: key === sortBy.key ? !sortBy.descending : true }; drawComparison(); };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => { if (event.key === "Enter") sort(); });
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...runs.map((run) => {
    const tr = document.createElement("tr");
    for (const [key, , value] of COMPARE_COLUMNS) {
      const v = value(run);
      tr.append(Object.assign(document.createElement("td"), { textContent: typeof v === "number" && !Number.isInteger(v) ? fmt(v) : (v ?? "–") }));
    }
    return tr;
  }));
}

async function drawMap() {
  const points = [];
  let after = null;
  let page;
  do {
    page = await call(config.urls.map + (after == null ? "" : `?after=${after}`));
    points.push(...page.points);
    after = page.next_after;
  } while (after != null);
  document.getElementById("map-caption").textContent = page.run
    ? `${page.sampled} of ${page.total} images, backbone run #${page.run}` : "no embeddings yet: pretrain first";
  const groups = new Map();
  for (const [id, x, y, kind, label] of points) {
    const key = kind === "human" || kind === "suggested" ? `${kind === "human" ? "labeled" : "suggested"}: ${labelName(label)}` : kind;
    if (!groups.has(key)) groups.set(key, { kind, label, x: [], y: [], ids: [] });
    const g = groups.get(key);
    g.x.push(x); g.y.push(y); g.ids.push(id);
  }
  const traces = [...groups.entries()].sort().map(([name, g]) => ({
    type: "scatter", mode: "markers", name, x: g.x, y: g.y, customdata: g.ids, hovertemplate: `image %{customdata}<extra>${name}</extra>`,
    marker: { size: g.kind === "human" ? 7 : 5, symbol: g.kind === "suggested" ? "circle-open" : "circle",
              color: g.kind === "human" || g.kind === "suggested" ? labelColour(g.label) : g.kind === "skipped" ? "#fca5a5" : "#cbd5e1" },
  }));
  await Plotly.react("chart-map", traces.length ? traces : [{ type: "scatter", mode: "markers", x: [], y: [] }],
                     layout("Image embeddings (PCA, 2-D)", { height: 520, hovermode: "closest" }), PLOT);
  const chart = document.getElementById("chart-map");
  chart.removeAllListeners?.("plotly_hover");
  chart.removeAllListeners?.("plotly_click");
  chart.on("plotly_hover", (event) => {
    const id = event.points[0].customdata;
    const img = document.getElementById("map-thumb");
    img.src = url(config.urls.thumb, id);
    img.hidden = false;
    document.getElementById("map-thumb-caption").textContent = `image ${id} · ${event.points[0].data.name} · click to annotate`;
  });
  chart.on("plotly_click", (event) => { window.location.href = url(config.urls.annotate, event.points[0].customdata); });
}

async function load() {
  message.textContent = "";
  try {
    data = await call(config.urls.data);
    labelsById = new Map(data.labels.map((l) => [l.id, l]));
    drawProgress();
    drawAnnotators();
    drawLabels();
    drawRuns();
    const pretrains = data.runs.filter((r) => r.kind === "pretrain");
    const running = pretrains.find((r) => r.status === "running") || pretrains.find((r) => r.loss != null) || pretrains[0];
    if (lossRun == null && running) await showLoss(running.id);
    else if (lossRun == null) Plotly.react("chart-loss", [{ type: "scatter", x: [], y: [] }], layout("Loss by step (no pretraining yet)"), PLOT);
    else await showLoss(lossRun);
    await drawMap();
    document.body.dataset.dashboard = "ready";
  } catch (error) {
    message.textContent = `Could not load the dashboard: ${error.message}`;
  }
}

document.getElementById("refresh").addEventListener("click", load);
document.getElementById("compare").addEventListener("click", drawComparison);
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select") || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "r") load();
  if (event.key === "c") {
    if (!selected.size) data?.runs.filter((r) => r.kind === "pretrain").forEach((r) => selected.add(r.id));
    drawRuns();
  }
});
load();
