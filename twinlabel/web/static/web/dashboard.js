// The project dashboard: progress, annotators, labels, suggestion quality, training runs (live
// loss curve, cancel / retry, comparison) and the embedding map. Charts are plotly.js, served as a
// static file from the plotly wheel (window.Plotly); the data comes from two JSON endpoints.

import { requestJson } from "./http.js";
import { Lasso } from "./lasso.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
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
let lasso = null;
const projectionSelect = document.getElementById("map-projection");

function call(address, method = "GET") {
  return requestJson(address, { method, body: method === "POST" ? {} : undefined });
}

function layout(title, extra = {}) {
  return { title: { text: title, font: { size: 14 } }, margin: { t: 40, r: 10, b: 40, l: 50 }, height: 300,
           legend: { orientation: "h" }, ...extra };
}

// Day charts: a date axis with one tick per day and bars 0.8 day wide, over at least a week, so
// one day of data is one narrow bar with a date under it, not a chart-wide bar with sub-second ticks.
const DAY_MS = 86400000;
const MIN_DAYS_SHOWN = 7;

function dayAxis(days) {
  const ms = days.map((d) => Date.parse(d));
  const last = Math.max(...ms), first = Math.min(...ms, last - (MIN_DAYS_SHOWN - 1) * DAY_MS);
  const span = (last - first) / DAY_MS + 1;
  return { type: "date", range: [first - DAY_MS / 2, last + DAY_MS / 2], tickformat: "%b %-d",
           dtick: span <= 14 ? DAY_MS : undefined, ticklabelmode: "instant" };
}

const DAY_BAR = { width: DAY_MS * 0.8 };

// A chart with nothing to show says in one line what will appear there and what starts it,
// instead of drawing empty axes.
function plot(id, traces, chartLayout, emptyText = null) {
  const el = document.getElementById(id);
  let note = el.previousElementSibling?.classList.contains("chart-empty") ? el.previousElementSibling : null;
  if (emptyText) {
    if (!note) {
      note = Object.assign(document.createElement("p"), { className: "chart-empty muted" });
      el.before(note);
    }
    note.textContent = emptyText;
    el.hidden = true;
    Plotly.purge(el);
    return Promise.resolve();
  }
  note?.remove();
  el.hidden = false;
  return Plotly.react(el, traces, chartLayout, PLOT);
}


// Plotly renders a subset of HTML in chart text (<a href>, <b>, ...): label and user names are
// people's text, so they are escaped to show as written and never become links.
const plain = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const labelName = (id) => plain(labelsById.get(id)?.name ?? "–");
const labelColour = (id) => labelsById.get(id)?.color ?? "#64748b";
const fmt = (v, digits = 3) => (v == null ? "–" : Number(v).toFixed(digits));

// A big project's counts of suggestions, submissions per day, tags, attributes and reviews come
// from the worker's last computation (refreshed within a minute or two of a change): say when.
function drawAsOf() {
  const note = document.getElementById("figures-as-of");
  note.hidden = !data.figures_as_of;
  if (data.figures_as_of) {
    const when = new Date(data.figures_as_of).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    note.textContent = `Submissions over time, label and suggestion counts, reviews and agreement as the worker computed them at ${when} ` +
      "(this project is large; they are refreshed about every minute while it changes). Image counts by state are live (but for “with suggestions”).";
  }
}

function drawProgress() {
  const p = data.progress;
  const keys = ["submitted", "with_suggestions", "unlabeled", "skipped"];
  plot("chart-progress", [{
    type: "bar", x: keys.map((k) => k.replace("_", " ")), y: keys.map((k) => p[k]),
    marker: { color: keys.map((k) => STATE_COLOURS[k]) }, text: keys.map((k) => p[k]), textposition: "auto",
  }], layout(`Images by state (${p.total} in all)`),
  p.total ? null : "Images by state (unlabeled, submitted, skipped) appear here once images are added: upload them on the project page.");
  const days = data.submitted_per_day;
  plot("chart-progress-time", [
    { type: "scatter", mode: "lines+markers", name: "submitted (cumulative)", x: days.map((d) => d.day), y: days.map((d) => d.cumulative) },
    { type: "bar", name: "submitted that day", x: days.map((d) => d.day), y: days.map((d) => d.submitted), opacity: 0.5, ...DAY_BAR },
  ], layout("Submitted over time", { xaxis: days.length ? dayAxis(days.map((d) => d.day)) : {} }),
  days.length ? null : "Submitted images per day appear here from the first submit (Enter on the annotate page).");
}

function drawAnnotators() {
  const { people, per_day: perDay } = data.annotators;
  document.getElementById("activity-days").textContent = `last ${data.activity_days} days`;
  for (const [field, id] of [["images", "chart-annotator-images"], ["boxes", "chart-annotator-boxes"], ["tags", "chart-annotator-tags"]]) {
    const traces = people.map((person) => {
      const rows = perDay.filter((r) => r.user === person.id);
      return { type: "bar", name: plain(person.name), x: rows.map((r) => r.day), y: rows.map((r) => r[field]), ...DAY_BAR };
    }).filter((t) => t.x.length);
    const title = `${field[0].toUpperCase()}${field.slice(1)} per annotator per day`;
    plot(id, traces, layout(title, { barmode: "stack", xaxis: perDay.length ? dayAxis(perDay.map((r) => r.day)) : {} }),
         traces.length ? null : `${title} appear here once someone submits an image (in the last ${data.activity_days} days).`);
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
  const series = [["boxes", "boxes"], ["occluded", "boxes occluded"], ["truncated", "boxes truncated"],
    ["difficult", "boxes difficult"], ["human_tags", "tags by people"], ["model_tags", "accepted suggestions"],
    ["auto_tags", "auto-accepted"], ["suggested", "suggested now"]];
  const anything = rows.some((r) => series.some(([key]) => r[key]));
  plot("chart-labels", series.map(([key, name]) => ({ type: "bar", name, x: names, y: rows.map((r) => r[key]) })),
       layout("Human labels and suggestions per label", { barmode: "group" }),
       !rows.length ? "Boxes, tags and suggestions per label appear here once the project has labels: add them on the project page."
         : anything ? null : "Boxes, tags and suggestions per label appear here as people draw boxes and tag images.");
  const q = data.suggestion_quality;
  const qNames = q.labels.map((r) => labelName(r.label));
  plot("chart-quality", [
    { type: "bar", name: "accept rate (live precision)", x: qNames, y: q.labels.map((r) => r.accept_rate),
      text: q.labels.map((r) => `${r.accepted}/${r.decided}`), textposition: "auto" },
    { type: "bar", name: "probe CV AP", x: qNames, y: q.labels.map((r) => r.cv_ap) },
    { type: "bar", name: "probe CV F1", x: qNames, y: q.labels.map((r) => r.cv_f1) },
  ], layout("Suggestion quality per label", { barmode: "group", yaxis: { range: [0, 1] } }),
  q.probe_run || q.labels.some((r) => r.decided) ? null
    : "Suggestion quality per label appears after the first probe: pretrain from the project page, then the probe refits as images are submitted.");
  document.getElementById("quality-summary").textContent = q.probe_run
    ? `Current probe (run #${q.probe_run}, ${q.labeled ?? "?"} labeled images): CV mAP ${fmt(q.map)}, micro F1 ${fmt(q.micro_f1)}, macro F1 ${fmt(q.macro_f1)}.`
      + scorerText(q)
    : "No probe has been fitted yet: pretrain from the project page.";
}

// Which model made the suggestions: the linear probe on the frozen features, or the backbone
// fine-tuned on the labels when its out-of-fold mAP was the better one.
function scorerText(q) {
  const f = q.finetune;
  if (!f) return " Scored by a linear probe on the pretrained features.";
  if (f.skipped) return ` Scored by a linear probe on the pretrained features: fine-tuning was skipped (${f.skipped}).`;
  if (f.deferred) {
    return " Scored by a linear probe on the pretrained features, for now: a fine-tuning run follows with its own scores.";
  }
  const averaged = f.ensemble_cv_map != null ? `, ${fmt(f.ensemble_cv_map)} averaged` : "";
  const versus = `out-of-fold mAP ${fmt(f.cv_map)} fine-tuned against ${fmt(f.frozen_cv_map)} frozen${averaged}, `
    + `${Math.round(f.seconds)} s`;
  if (q.scorer === "finetuned") return ` Scored by the backbone fine-tuned on the labels (${versus}).`;
  if (q.scorer === "ensemble") {
    return ` Scored by the backbone fine-tuned on the labels and the linear probe, averaged (${versus}).`;
  }
  return ` Scored by a linear probe on the pretrained features: fine-tuning was tried and kept out (${versus}).`;
}

// Per label, side by side: what the confident suggestions are estimated to be worth and how much
// they cover, next to what people did with them; then the calibration error and the learning curve.
function drawTrust() {
  const q = data.suggestion_quality;
  const percent = (rate) => (rate == null ? "–" : `${Math.round(rate * 100)} %`);
  const body = document.getElementById("trust");
  body.replaceChildren(...q.labels.map((r) => row([
    labelName(r.label), fmt(r.target, 2),
    r.confident ? "yes" : r.near_chance ? "no (near chance)" : "no",
    r.confident ? `${percent(r.estimated_precision)} (≥ ${percent(r.precision_lower_bound)})` : "–",
    percent(r.coverage), r.decided ? `${percent(r.accept_rate)} of ${r.decided}` : "–",
    r.auto_accepted ? `${r.auto_accepted}` : r.auto_threshold != null ? `0 (from ${percent(r.auto_threshold)})` : "–",
    r.audited ? `${r.audit_confirmed} of ${r.audited} right${r.audit_pending ? `, ${r.audit_pending} waiting` : ""}`
      : r.audit_pending ? `${r.audit_pending} waiting` : "–"])));
  const ece = q.ece || {};
  document.getElementById("trust-summary").textContent = q.still_learning
    ? `Abstaining: ${q.still_learning}.`
    : `Calibration error (ECE, held out): ${fmt(ece.calibrated)} after calibration, ${fmt(ece.uncalibrated)} before.`;
  const curve = q.learning_curve || [];
  // The curve is the frozen probe's (refitting a fine-tuned network per sub-sample would cost
  // minutes); a fine-tuning's own out-of-fold mAP on all the labels, and its average with the
  // probe's, sit beside it as one point each.
  const traces = [{ type: "scatter", mode: "lines+markers", name: "linear probe, frozen features",
                    x: curve.map((p) => p.labeled), y: curve.map((p) => p.map) }];
  const tuned = q.finetune;
  if (curve.length && tuned && tuned.cv_map != null) {
    traces.push({ type: "scatter", mode: "markers", name: "fine-tuned network", marker: { symbol: "diamond", size: 10 },
                  x: [tuned.images], y: [tuned.cv_map] });
    if (tuned.ensemble_cv_map != null) {
      traces.push({ type: "scatter", mode: "markers", name: "fine-tuned and probe averaged",
                    marker: { symbol: "square", size: 9 }, x: [tuned.images], y: [tuned.ensemble_cv_map] });
    }
  }
  plot("chart-curve", traces,
       layout("Learning curve: rising at the right means more labels still help",
              { xaxis: { title: { text: "labeled images" } }, yaxis: { range: [0, 1], title: { text: "mAP" } } }),
       curve.length ? null : "The learning curve (mAP at a quarter, half and all of the labels) appears here once "
                             + "the model is fitted: it refits by itself after every 10 submissions.");
}

// The current detector: its COCO figures per label, and the shares of its shown boxes people
// accepted, adjusted or rejected.
function drawBoxQuality() {
  const q = data.box_quality;
  const percent = (rate) => (rate == null ? "–" : `${Math.round(rate * 100)} %`);
  document.getElementById("box-quality").replaceChildren(...q.labels.map((r) => row([
    labelName(r.label), fmt(r.ap50), fmt(r.map), r.confident ? `yes (from ${fmt(r.threshold, 2)})` : "no",
    (!q.detector_run ? "–" : r.shown_from == null ? (r.confident ? "confident only" : "never")
      : fmt(Math.max(r.shown_from, 0.3), 2)) + (r.shown_withdrawn ? " (rejections hid the rest)"
      : r.shown_raised_from != null ? ` (rejections raised it from ${fmt(Math.max(r.shown_raised_from, 0.3), 2)})` : ""),
    String(r.decided), percent(r.accepted_rate), percent(r.adjusted_rate), percent(r.rejected_rate)])));
  const shown = q.decided ? ` Of ${q.decided} decided boxes: ${percent(q.accepted_rate)} accepted, `
    + `${percent(q.adjusted_rate)} adjusted, ${percent(q.rejected_rate)} rejected.` : "";
  document.getElementById("box-quality-summary").textContent = q.detector_run
    ? `Current detector (run #${q.detector_run}, ${q.held_out_images ?? "?"} held-out images): AP50 ${fmt(q.ap50)}, `
      + `mAP ${fmt(q.map)}.${shown}`
    : `No detector has been fitted yet: it fits by itself once people have submitted images with boxes.${shown}`;
}

function runActions(run) {
  const td = document.createElement("td");
  const button = (text, action, key) => {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
    if (key) {
      b.append(" ", Object.assign(document.createElement("kbd"), { textContent: key }));
      b.dataset.key = key.toLowerCase();
    }
    b.addEventListener("click", async (event) => {
      event.stopPropagation();
      try { await call(url(action, run.id), "POST"); await load(); } catch (error) { message.textContent = error.message; }
    });
    return b;
  };
  // X cancels the newest queued or running run, T retries the newest failed or cancelled one: the
  // key is shown on the button it presses.
  if (cancellable(run)) td.append(button("Cancel", config.urls.cancel, run.id === keyRun(cancellable)?.id ? "X" : ""));
  if (retriable(run)) td.append(button("Retry", config.urls.retry, run.id === keyRun(retriable)?.id ? "T" : ""));
  return td;
}

const cancellable = (run) => (run.status === "queued" || run.status === "running") && !run.cancel_requested;
const retriable = (run) => run.status === "failed" || run.status === "cancelled";
const keyRun = (which) => [...(data?.runs || [])].sort((a, b) => b.id - a.id).find(which) || null;

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
                   run.images_per_s == null ? "" : Math.round(run.images_per_s), fmt(run.loss, 2),
                   run.detector ? `AP50 ${fmt(run.detector.ap50)}` : fmt(run.probe?.map)];
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
  plot("chart-loss", [{ type: "scatter", mode: "lines", name: "loss", x: history.map((h) => h[0]), y: history.map((h) => h[1]) }],
       layout(`Run #${run.id} loss by step`, { xaxis: { title: { text: "step" } } }),
       history.length ? null : `Run #${run.id}'s loss by step appears here from its first logged step.`);
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
  ["crop_min", "crop min", (r) => r.config.crop_min], ["colour", "colour", (r) => r.config.colour],
  ["projector", "projector", (r) => (r.config.projector || []).join("-")],
  ["final_loss", "final loss", (r) => r.final_loss], ["map", "probe mAP", (r) => r.probe?.map],
  ["micro_f1", "micro F1", (r) => r.probe?.micro_f1], ["macro_f1", "macro F1", (r) => r.probe?.macro_f1],
  ["labeled", "labeled", (r) => r.probe?.labeled],
  ["box_ap50", "box AP50", (r) => r.detector?.ap50], ["box_map", "box mAP", (r) => r.detector?.map],
  ["boxed", "boxed images", (r) => r.detector?.boxed_images],
];
const COMPARED = (r) => r.kind === "pretrain" || r.kind === "detector";

function drawComparison() {
  const table = document.getElementById("compare-table");
  const runs = data.runs.filter((r) => selected.has(r.id) && COMPARED(r));
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
    page = await call(`${config.urls.map}?projection=${projectionSelect.value}` + (after == null ? "" : `&after=${after}`));
    points.push(...page.points);
    after = page.next_after;
  } while (after != null);
  const shown = page.projection === "umap" ? "UMAP" : "PCA";
  document.getElementById("map-projection-note").textContent = page.run && !page.projections?.includes("umap")
    ? "(no UMAP for this backbone: PCA shown)" : "";
  document.getElementById("map-caption").textContent = page.run
    ? `${page.sampled} of ${page.total} images, backbone run #${page.run}` : "no embeddings yet: pretrain first";
  const groups = new Map();
  const versions = {};
  for (const [id, x, y, kind, label, version] of points) {
    versions[id] = version;
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
  await plot("chart-map", traces, layout(`Image embeddings (${shown}, 2-D)`, { height: 520, hovermode: "closest", dragmode: lasso?.dragmode || "zoom" }),
             traces.length ? null : "A map of the images appears here once a pretraining has embedded them: "
               + "start one with Pretrain on the project page (each image becomes a point, coloured by its labels).");
  const chart = document.getElementById("chart-map");
  if (!traces.length) return;
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
  if (!lasso) {
    lasso = new Lasso({ chart, bar: document.getElementById("lasso-bar"), url: config.urls.bulkTags, labels: data.labels });
    // A write moved versions and colours: draw the map again from the server.
    chart.addEventListener("lasso-saved", () => drawMap());
  }
  document.getElementById("lasso-bar").hidden = false;
  lasso.listen(versions);
  lasso.select([]);
}

projectionSelect.addEventListener("change", () => { projectionSelect.blur(); drawMap(); });

async function load() {
  message.textContent = "";
  try {
    data = await call(config.urls.data);
    labelsById = new Map(data.labels.map((l) => [l.id, l]));
    drawAsOf();
    drawProgress();
    drawAnnotators();
    drawLabels();
    drawTrust();
    drawBoxQuality();
    drawRuns();
    const pretrains = data.runs.filter((r) => r.kind === "pretrain");
    const running = pretrains.find((r) => r.status === "running") || pretrains.find((r) => r.loss != null) || pretrains[0];
    if (lossRun == null && running) await showLoss(running.id);
    else if (lossRun == null) plot("chart-loss", [], {}, "The loss curve of a pretraining appears here once one starts: Pretrain on the project page.");
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
  if (lasso?.key(event)) return;
  if (event.key === "r") load();
  if (event.key === "p") {
    projectionSelect.value = projectionSelect.value === "pca" ? "umap" : "pca";
    drawMap();
  }
  if (event.key === "x" || event.key === "t") document.querySelector(`#runs button[data-key="${event.key}"]`)?.click();
  if (event.key === "c") {
    if (!selected.size) data?.runs.filter(COMPARED).forEach((r) => selected.add(r.id));
    drawRuns();
  }
});
load();
