// The panels around the canvas: box classes, image tags, the box list, the save status, the
// image name and the ? overlay. They draw the store's state and turn clicks into the same
// actions the keyboard triggers; none of them holds state of its own.

import { classKey, SHORTCUTS, tagKey } from "./keys.js";

const STATUS_TEXT = {
  saved: "All changes saved", dirty: "Unsaved changes…", saving: "Saving…", error: "Not saved",
  conflict: "Changed elsewhere: not saved",
};

export class Panels {
  constructor(root, store, act) {
    this.root = root;
    this.store = store;
    this.act = act; // (action, args) => void, the same entry point as the keyboard
    this.el = (id) => root.querySelector(`#${id}`);
    this.buildLabelButtons();
    this.buildHelp();
    this.showStatus();
    this.listen();
  }

  listen() {
    const s = this.store;
    s.addEventListener("label", () => this.showActiveLabel());
    s.addEventListener("tags", () => this.showTags());
    s.addEventListener("boxes", (e) => { if (!e.detail.preview) this.showBoxes(); });
    s.addEventListener("select", () => this.showSelection());
    s.addEventListener("status", () => this.showStatus());
    s.addEventListener("hidden", () => this.el("hide-state").textContent = s.hidden ? "Show" : "Hide");
    s.addEventListener("image", () => this.showImage());
    this.root.addEventListener("click", (e) => this.clicked(e));
    // Buttons must not keep the focus: Space and Enter are shortcuts, not button presses.
    this.root.addEventListener("mousedown", (e) => { if (e.target.closest("button")) e.preventDefault(); });
  }

  clicked(e) {
    const button = e.target.closest("[data-action]");
    if (!button || !this.root.contains(button)) return;
    const { action, label, cid } = button.dataset;
    this.act(action, { label: label && Number(label), cid: cid && Number(cid) });
  }

  buildLabelButtons() {
    const classes = this.el("class-list"), tags = this.el("tag-list");
    for (const label of this.store.labels) {
      classes.append(labelButton(label, "label", classKey(label), "aria-pressed"));
      tags.append(labelButton(label, "tag", tagKey(label), "aria-checked", "switch"));
    }
    if (!this.store.labels.length) classes.textContent = "This project has no labels yet.";
    this.showActiveLabel();
  }

  buildHelp() {
    const rows = SHORTCUTS.map((s) => [s.keys, s.what]);
    for (const label of this.store.labels.filter((l) => l.hotkey)) {
      rows.push([[classKey(label)], `Box class “${label.name}” (relabels the selected box)`]);
      rows.push([[tagKey(label)], `Toggle the image tag “${label.name}”`]);
    }
    const table = this.el("help-list");
    for (const [keys, what] of rows) {
      const tr = table.insertRow();
      const cell = tr.insertCell();
      keys.forEach((k, i) => { if (i) cell.append(" or "); cell.append(kbd(k)); });
      tr.insertCell().textContent = what;
    }
  }

  toggleHelp(show = this.el("help").hidden) {
    this.el("help").hidden = !show;
  }

  get helpOpen() {
    return !this.el("help").hidden;
  }

  showConflict(show) {
    this.el("conflict-banner").hidden = !show;
    this.root.classList.toggle("in-conflict", show);
  }

  showDone(done) {
    this.el("done").hidden = !done;
    this.root.classList.toggle("is-done", done);
  }

  showImage() {
    const image = this.store.image;
    this.el("image-name").textContent = image ? image.name : "";
    this.el("image-status").textContent = image ? image.status.replace("_", " ") : "";
  }

  showActiveLabel() {
    for (const b of this.el("class-list").querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.label) === this.store.activeLabel));
    }
  }

  showTags() {
    const implied = this.store.impliedLabels();
    for (const b of this.el("tag-list").querySelectorAll("button")) {
      const id = Number(b.dataset.label);
      const tagged = this.store.tags.has(id);
      b.setAttribute("aria-checked", String(tagged || implied.has(id)));
      b.classList.toggle("implied", implied.has(id) && !tagged);
      b.querySelector(".note").textContent = implied.has(id) && !tagged ? "implied by a box" : "";
    }
  }

  // Rebuilt after each committed edit, never during a drag; one HTML string, parsed once, keeps
  // that cheap with hundreds of boxes.
  showBoxes() {
    const html = this.store.boxes.map((box) => {
      const label = this.store.labelById.get(box.label);
      const where = `${Math.round(box.w)}×${Math.round(box.h)} at ${Math.round(box.x)},${Math.round(box.y)}`;
      return `<li><button type="button" data-action="select" data-cid="${box.cid}">`
        + `<span class="swatch" style="background:${label?.color || "#999"}"></span>`
        + `<span class="name">${escapeHtml(label?.name || "?")}</span> <span class="muted">${where}</span></button></li>`;
    });
    this.el("box-list").innerHTML = html.join("");
    this.el("box-count").textContent = String(this.store.boxes.length);
    this.showSelection();
  }

  showSelection() {
    for (const b of this.el("box-list").querySelectorAll("button")) {
      const on = Number(b.dataset.cid) === this.store.selected;
      b.classList.toggle("selected", on);
      if (on) b.scrollIntoView({ block: "nearest" });
    }
  }

  showStatus() {
    const { status, message } = this.store;
    const line = this.el("save-status");
    line.dataset.status = status;
    line.textContent = message || STATUS_TEXT[status] || status;
  }
}

function labelButton(label, action, key, stateAttr, role) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.action = action;
  button.dataset.label = label.id;
  button.setAttribute(stateAttr, "false");
  if (role) button.setAttribute("role", role);
  button.title = action === "tag" ? `Toggle the image tag “${label.name}”` : `Draw “${label.name}” boxes`;
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = label.color;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label.name;
  const note = document.createElement("span");
  note.className = "note";
  button.append(swatch, name, note);
  if (key) button.append(kbd(key));
  return button;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function kbd(text) {
  const k = document.createElement("kbd");
  k.textContent = text;
  return k;
}
