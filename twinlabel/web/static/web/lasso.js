// The embedding map's lasso: points selected with plotly's lasso or box select get one tag added or
// removed at once (POST bulk-tags/, docs/api.md), with the version each point was drawn with, so an
// image edited since is reported and left alone; U takes the last write back as one step.
// Keys: L lasso, A add the chosen tag, D remove it, U undo.

import { HttpError, requestJson } from "./http.js";

export class Lasso {
  constructor({ chart, bar, url, labels }) {
    this.chart = chart;
    this.url = url;
    this.el = (id) => bar.querySelector(`#${id}`);
    this.bar = bar;
    this.selection = []; // [{id, version}]
    this.dragmode = "zoom"; // kept across redraws of the map
    this.undoToken = null;
    const select = this.el("lasso-label");
    select.replaceChildren(...labels.map((l) => new Option(l.name, l.id)));
    bar.querySelectorAll("button[data-lasso]").forEach((b) => b.addEventListener("click", () => this.act(b.dataset.lasso)));
  }

  // After each (re)draw of the map: plotly forgets listeners with the chart.
  listen(versions) {
    this.versions = versions; // {image id: version}
    this.chart.removeAllListeners?.("plotly_selected");
    this.chart.removeAllListeners?.("plotly_deselect");
    this.chart.on("plotly_selected", (event) => this.select((event?.points || []).map((p) => p.customdata)));
    this.chart.on("plotly_deselect", () => this.select([]));
    this.chart.on("plotly_relayout", (change) => { if (change?.dragmode) this.dragmode = change.dragmode; });
  }

  select(ids) {
    this.selection = ids.map((id) => ({ id, version: this.versions[id] }));
    this.el("lasso-count").textContent = `${ids.length} image${ids.length === 1 ? "" : "s"} selected`;
    this.bar.querySelectorAll("button[data-lasso=add], button[data-lasso=remove]").forEach((b) => { b.disabled = !ids.length; });
  }

  lassoMode() {
    this.dragmode = "lasso";
    window.Plotly.relayout(this.chart, { dragmode: "lasso" });
  }

  async act(action) {
    if (action === "lasso") return this.lassoMode();
    if (action === "undo") return this.undo();
    if (!this.selection.length) return;
    const label = Number(this.el("lasso-label").value);
    const versions = Object.fromEntries(this.selection.map((s) => [s.id, s.version]));
    const body = { images: this.selection.map((s) => s.id), label, action, versions };
    const name = this.el("lasso-label").selectedOptions[0]?.textContent;
    await this.send(body, (r) => `${action === "add" ? "Tagged" : "Untagged"} “${name}”: ${r.changed} changed, ${r.unchanged} already so`);
  }

  async undo() {
    if (!this.undoToken) return;
    const token = this.undoToken;
    this.undoToken = null;
    this.el("lasso-undo").disabled = true;
    await this.send({ undo: token }, (r) => `Undone on ${r.changed} image${r.changed === 1 ? "" : "s"}`, false);
  }

  async send(body, say, keepUndo = true) {
    const result = this.el("lasso-result");
    result.textContent = "Saving…";
    let report;
    try {
      report = await requestJson(this.url, { method: "POST", body });
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 409 && error.data)) {
        result.textContent = `Not saved: ${error.message}`;
        return;
      }
      report = error.data;
    }
    for (const c of report.conflicts) this.versions[c.id] = c.version;
    const conflicts = report.conflicts.length
      ? `; ${report.conflicts.length} edited by someone since the map was drawn, left as they are (ids ${report.conflicts.map((c) => c.id).slice(0, 10).join(", ")})`
      : "";
    const boxes = report.still_present?.length ? `; ${report.still_present.length} still have a box of that label` : "";
    result.textContent = `${say(report)}${conflicts}${boxes}.`;
    if (keepUndo && report.undo && report.changed) {
      this.undoToken = report.undo;
      this.el("lasso-undo").disabled = false;
    }
    this.chart.dispatchEvent(new CustomEvent("lasso-saved", { detail: report }));
  }

  // Keys, from the page's one keydown handler: true when the key was the lasso's.
  key(event) {
    const map = { l: "lasso", a: "add", d: "remove", u: "undo" };
    if (!(event.key in map)) return false;
    this.act(map[event.key]);
    return true;
  }
}
