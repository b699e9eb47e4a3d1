// Selection on the image grid: Ctrl+click toggles a thumbnail, Shift+click selects a range, a drag
// draws a rectangle (Shift+drag adds to the selection). The selection then gets one tag added or
// removed (POST bulk-tags/) or one label's suggestions accepted or rejected (POST bulk-suggestions/),
// each image with the version it was shown with, so an image edited since is reported and left
// alone; U takes the last write back as one step. On the near-duplicates grid, "tag group" (or G)
// tags every image of a group. Keys: T add, D remove, A accept, R reject, U undo, G group,
// Ctrl+A all, Esc none.

import { HttpError, requestJson } from "./http.js";

const DRAG_MIN_PX = 6; // a smaller movement is a click

class GridSelection {
  constructor({ grid, bar }) {
    this.grid = grid;
    this.bar = bar;
    this.el = (id) => bar.querySelector(`#${id}`);
    this.urls = { tags: bar.dataset.tagsUrl, suggestions: bar.dataset.suggestionsUrl };
    this.selected = new Set(); // image ids
    this.anchor = null; // the last thumbnail clicked, for Shift+click ranges
    this.undoStep = null; // {url, token}
    bar.querySelectorAll("button[data-select]").forEach((b) => b.addEventListener("click", () => this.act(b.dataset.select)));
    this.el("select-label").addEventListener("change", (e) => e.target.blur()); // keys go to the grid again
    grid.addEventListener("click", (e) => this.click(e));
    grid.addEventListener("mousedown", (e) => this.dragStart(e));
    document.addEventListener("keydown", (e) => this.key(e));
  }

  thumbs() {
    return [...this.grid.querySelectorAll(".thumb")];
  }

  thumb(id) {
    return this.grid.querySelector(`.thumb[data-image-id="${id}"]`);
  }

  set(ids, { add = false } = {}) {
    if (!add) this.selected.clear();
    for (const id of ids) this.selected.add(id);
    this.draw();
  }

  draw() {
    for (const t of this.thumbs()) {
      const on = this.selected.has(Number(t.dataset.imageId));
      t.classList.toggle("selected", on);
      t.setAttribute("aria-selected", on ? "true" : "false");
    }
    const n = this.selected.size;
    this.el("select-count").textContent = `${n} image${n === 1 ? "" : "s"} selected`;
    this.bar.querySelectorAll("button[data-select]:not([data-select=undo])").forEach((b) => { b.disabled = !n; });
  }

  click(event) {
    const button = event.target.closest("button.tag-group");
    if (button) return this.tagGroups([Number(button.dataset.group)]);
    if (this.suppressClick) { // the click that ends a rectangle drag
      this.suppressClick = false;
      event.preventDefault();
      return;
    }
    const thumb = event.target.closest(".thumb");
    if (!thumb || !(event.ctrlKey || event.metaKey || event.shiftKey)) return; // a plain click opens the image
    event.preventDefault();
    const id = Number(thumb.dataset.imageId);
    if (event.shiftKey && this.anchor !== null) {
      const ids = this.thumbs().map((t) => Number(t.dataset.imageId));
      const [a, b] = [ids.indexOf(this.anchor), ids.indexOf(id)].sort((x, y) => x - y);
      this.set(ids.slice(a, b + 1), { add: true });
    } else {
      if (this.selected.has(id)) this.selected.delete(id);
      else this.selected.add(id);
      this.draw();
    }
    this.anchor = id;
  }

  dragStart(event) {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.target.closest("button")) return;
    event.preventDefault(); // no native drag of the image or its link
    this.suppressClick = false;
    const start = { x: event.clientX, y: event.clientY };
    const keep = event.shiftKey ? new Set(this.selected) : new Set();
    let rect = null;
    const move = (e) => {
      const [x0, x1] = [start.x, e.clientX].sort((a, b) => a - b);
      const [y0, y1] = [start.y, e.clientY].sort((a, b) => a - b);
      if (!rect && x1 - x0 < DRAG_MIN_PX && y1 - y0 < DRAG_MIN_PX) return;
      if (!rect) {
        rect = document.createElement("div");
        rect.className = "select-rect";
        document.body.append(rect);
      }
      Object.assign(rect.style, { left: `${x0}px`, top: `${y0}px`, width: `${x1 - x0}px`, height: `${y1 - y0}px` });
      const inside = this.thumbs().filter((t) => {
        const r = t.getBoundingClientRect();
        return r.left < x1 && r.right > x0 && r.top < y1 && r.bottom > y0;
      });
      this.set([...keep, ...inside.map((t) => Number(t.dataset.imageId))]);
    };
    const up = () => {
      document.removeEventListener("mousemove", move);
      document.removeEventListener("mouseup", up);
      if (rect) {
        rect.remove();
        this.suppressClick = true; // the click this mouseup makes, if any; the next mousedown clears it
      }
    };
    document.addEventListener("mousemove", move);
    document.addEventListener("mouseup", up);
  }

  async act(action) {
    if (action === "undo") return this.undo();
    if (!this.selected.size) return;
    const ids = [...this.selected];
    const label = Number(this.el("select-label").value);
    const name = this.el("select-label").selectedOptions[0]?.textContent;
    const versions = Object.fromEntries(ids.map((id) => [id, Number(this.thumb(id)?.dataset.version)]));
    if (action === "add" || action === "remove") {
      const say = (r) => `${action === "add" ? "Tagged" : "Untagged"} “${name}”: ${r.changed} changed, ${r.unchanged} already so`;
      return this.send(this.urls.tags, { images: ids, label, action, versions }, say);
    }
    const decision = action; // accept | reject
    const say = (r) => `${decision === "accept" ? "Accepted" : "Rejected"} “${name}” suggestions: ${r.changed} changed, ${r.unchanged} already so`
      + (r.no_suggestion.length ? `, ${r.no_suggestion.length} without a suggestion of it` : "");
    return this.send(this.urls.suggestions, { images: ids, label, decision, versions }, say);
  }

  tagGroups(groups) {
    const ids = this.thumbs().filter((t) => groups.includes(Number(t.dataset.group))).map((t) => Number(t.dataset.imageId));
    this.set(ids);
    return this.act("add");
  }

  async undo() {
    if (!this.undoStep) return;
    const { url, token } = this.undoStep;
    this.undoStep = null;
    this.el("select-undo").disabled = true;
    await this.send(url, { undo: token }, (r) => `Undone on ${r.changed} image${r.changed === 1 ? "" : "s"}`, false);
  }

  async send(url, body, say, keepUndo = true) {
    const result = this.el("select-result");
    result.textContent = "Saving…";
    let report;
    try {
      report = await requestJson(url, { method: "POST", body });
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 409 && error.data)) {
        result.textContent = `Not saved: ${error.message}`;
        return;
      }
      report = error.data;
    }
    const versions = { ...report.versions, ...Object.fromEntries(report.conflicts.map((c) => [c.id, c.version])) };
    for (const [id, version] of Object.entries(versions)) {
      const t = this.thumb(id);
      if (t) t.dataset.version = version;
    }
    const conflicts = report.conflicts.length
      ? `; ${report.conflicts.length} edited by someone since the page was shown, left as they are (ids ${report.conflicts.map((c) => c.id).slice(0, 10).join(", ")})`
      : "";
    const boxes = report.still_present?.length ? `; ${report.still_present.length} still have a box of that label` : "";
    result.textContent = `${say(report)}${conflicts}${boxes}.`;
    if (keepUndo && report.undo && report.changed) {
      this.undoStep = { url, token: report.undo };
      this.el("select-undo").disabled = false;
    }
  }

  key(event) {
    if (event.target.closest("input, textarea, select") || event.altKey) return;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "a") {
      event.preventDefault();
      return this.set(this.thumbs().map((t) => Number(t.dataset.imageId)));
    }
    if (event.ctrlKey || event.metaKey) return;
    if (event.key === "Escape") return this.set([]);
    if (event.key === "g" || event.key === "G") {
      const groups = [...this.selected].map((id) => Number(this.thumb(id)?.dataset.group)).filter((g) => g);
      if (groups.length) this.tagGroups([...new Set(groups)]);
      return;
    }
    const map = { t: "add", d: "remove", a: "accept", r: "reject", u: "undo" };
    const action = map[event.key.toLowerCase()];
    if (!action || event.shiftKey) return;
    event.preventDefault();
    this.act(action);
  }
}

const bar = document.getElementById("select-bar");
const grid = document.getElementById("image-grid");
if (bar && grid) new GridSelection({ grid, bar });
