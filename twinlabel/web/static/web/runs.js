// Model assistance on the project page: start a pretraining or a probe refit, cancel a run,
// and watch progress live (polls the runs endpoint every 1.5 s while a run is active). Before a
// pretraining starts the page shows what it would take on the worker's device; a long one needs
// an explicit confirmation (the server refuses it otherwise).

import { requestJson } from "./http.js";

const config = JSON.parse(document.getElementById("runs-config").textContent);
const list = document.getElementById("runs");
const message = document.getElementById("runs-message");
let timer = null;
let estimate = null; // the server's pretrain_estimate for the default settings

function duration(seconds) {
  if (seconds == null) return "";
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function call(url, method = "GET", body = undefined) {
  return requestJson(url, { method, body });
}

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function progressCell(run) {
  const td = document.createElement("td");
  if (run.kind === "pretrain" && run.epochs) {
    const bar = document.createElement("progress");
    const done = run.status === "succeeded" ? run.epochs
      : run.epoch + (run.steps_per_epoch ? (run.step % run.steps_per_epoch) / run.steps_per_epoch : 0);
    bar.max = run.epochs;
    bar.value = Math.min(done, run.epochs);
    td.append(bar, ` epoch ${Math.min(run.epoch + (run.status === "running" ? 1 : 0), run.epochs)}/${run.epochs}`);
  } else if (run.kind === "probe" && run.metrics && run.metrics.cv) {
    td.textContent = `${run.metrics.labeled} labeled · CV mAP ${run.metrics.cv.map?.toFixed(3) ?? "–"}`;
  }
  return td;
}

function row(run) {
  const tr = document.createElement("tr");
  tr.dataset.runId = run.id;
  tr.dataset.status = run.status;
  tr.append(
    cell(`#${run.id} ${run.kind}`),
    cell(run.status + (run.cancel_requested && run.status === "running" ? " (cancelling)" : ""), `run-${run.status}`),
    progressCell(run),
    cell(run.loss == null ? "" : `loss ${run.loss.toFixed(2)}`),
    cell(run.images_per_s == null ? "" : `${Math.round(run.images_per_s)} img/s`),
    cell(run.eta_s == null ? "" : `about ${duration(run.eta_s)} left`, "run-eta"),
    cell(run.device || ""),
  );
  const actions = document.createElement("td");
  if (config.isAdmin && (run.status === "queued" || run.status === "running") && !run.cancel_requested) {
    const cancel = document.createElement("button");
    cancel.textContent = "Cancel";
    cancel.className = "danger";
    cancel.addEventListener("click", () => act(() => call(config.cancelUrl.replace("{id}", run.id), "POST", {})));
    actions.append(cancel);
  }
  // A queued run's message says why it waits (paused for other runs, the queue unreachable): a note,
  // not an error.
  if (run.error) actions.append(Object.assign(document.createElement("span"), { className: run.status === "queued" ? "muted run-note" : "error", textContent: run.error.split("\n").filter(Boolean).pop() }));
  tr.append(actions);
  return tr;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const { runs, pretrain_estimate: next } = await call(config.url);
    estimate = next;
    const hint = document.getElementById("pretrain-estimate");
    if (hint && estimate) {
      hint.textContent = `Pretrain: about ${estimate.text} on the worker's ${estimate.device.toUpperCase()}`
        + ` (${estimate.images} images${estimate.config.time_budget_s ? ", time budget" : ""})`;
    }
    list.replaceChildren(...runs.map(row));
    document.getElementById("runs-empty").hidden = runs.length > 0;
    const active = runs.some((r) => r.status === "queued" || r.status === "running");
    timer = setTimeout(refresh, active ? 1500 : 10000);
  } catch (error) {
    message.textContent = `Could not read the runs: ${error.message}`;
    timer = setTimeout(refresh, 5000);
  }
}

async function act(action) {
  message.textContent = "";
  try {
    await action();
  } catch (error) {
    message.textContent = error.message;
  }
  refresh();
}

function startPretrain() {
  const body = { kind: "pretrain", config: {} };
  if (estimate && estimate.needs_confirmation) {
    const ok = window.confirm(`This pretraining would take about ${estimate.text} on the worker's `
      + `${estimate.device.toUpperCase()} (${estimate.images} images). Start it anyway?`);
    if (!ok) return;
    body.confirm = true;
  }
  act(() => call(config.url, "POST", body));
}

document.getElementById("start-pretrain")?.addEventListener("click", startPretrain);
document.getElementById("start-probe")?.addEventListener("click", () =>
  act(() => call(config.url, "POST", { kind: "probe" })));
refresh();
