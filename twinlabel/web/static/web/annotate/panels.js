// The panels around the canvas: box classes, image tags with the model's suggestions, the box
// list, the save status, the image name, the queue order and the ? overlay. They draw the store's
// state and turn clicks into the same actions the keyboard triggers; none holds state of its own.

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
    s.addEventListener("suggestions", () => this.showTags());
    s.addEventListener("boxSuggestions", () => this.showBoxSuggestions());
    s.addEventListener("boxes", (e) => { if (!e.detail.preview) { this.showBoxes(); this.showAttributes(); } });
    s.addEventListener("select", () => { this.showSelection(); this.showAttributes(); });
    s.addEventListener("status", () => this.showStatus());
    s.addEventListener("hidden", () => this.el("hide-state").textContent = s.hidden ? "Show" : "Hide");
    s.addEventListener("image", () => this.showImage());
    this.root.addEventListener("click", (e) => this.clicked(e));
    this.el("box-attributes").addEventListener("change", (e) => this.attributeChanged(e));
    // Buttons must not keep the focus: Space and Enter are shortcuts, not button presses.
    this.root.addEventListener("mousedown", (e) => { if (e.target.closest("button")) e.preventDefault(); });
  }

  clicked(e) {
    const button = e.target.closest("[data-action]");
    if (!button || !this.root.contains(button)) return;
    const { action, label, suggestion, cid } = button.dataset;
    this.act(action, { label: Number(label || suggestion) || undefined, cid: cid && Number(cid) });
  }

  // A box attribute edited in the panel: the same store call as its key. A checkbox hands the
  // keyboard back at once (its keys are the page's); a text field keeps it until Enter or a click away.
  attributeChanged(e) {
    const input = e.target.closest("[data-attribute]");
    if (!input) return;
    const value = input.type === "checkbox" ? input.checked : input.value;
    if (input.type === "checkbox" || input.tagName === "SELECT") input.blur();
    this.act("setAttribute", { name: input.dataset.attribute, value });
  }

  // The selected box's attributes: the three flags, and the fields its label defines (rebuilt
  // when the selection or the box changes, never during a drag).
  showAttributes() {
    const section = this.el("box-attributes");
    const box = this.store.box(this.store.selected);
    section.hidden = !box;
    if (!box) return;
    const label = this.store.labelById.get(box.label);
    section.querySelector(".which").textContent = label?.name || "?";
    for (const input of section.querySelectorAll(".flags input")) input.checked = !!box.attributes[input.dataset.attribute];
    const own = section.querySelector(".own");
    const key = `${box.cid}:${box.label}`;
    if (own.dataset.key !== key) {
      own.dataset.key = key;
      own.replaceChildren(...(label?.attributes || []).map(attributeField));
    }
    for (const input of own.querySelectorAll("[data-attribute]")) {
      const value = box.attributes[input.dataset.attribute];
      if (input.type === "checkbox") input.checked = !!value;
      else if (document.activeElement !== input) input.value = value ?? "";
    }
  }

  showAdjust(adjust) {
    const state = this.el("adjust-state");
    state.hidden = adjust.isDefault;
    const { brightness, contrast, gamma } = adjust.values;
    state.querySelector(".values").textContent =
      `brightness ${Math.round(brightness * 100)}% · contrast ${Math.round(contrast * 100)}% · gamma ${gamma.toFixed(1)}`;
  }

  buildLabelButtons() {
    const classes = this.el("class-list"), tags = this.el("tag-list");
    for (const label of this.store.labels) {
      classes.append(labelButton(label, "label", classKey(label), "aria-pressed"));
      tags.append(tagRow(label));
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

  // The queue order select: sequential, random, most uncertain first, diverse first (cold start),
  // uncertain and diverse, or suggested as one label.
  buildOrder(order) {
    const select = this.el("queue-order");
    const options = [["sequential", "in order"], ["random", "at random"], ["uncertain", "most uncertain first"],
      ["diverse", "diverse first"], ["hybrid", "uncertain and diverse"], ["rare", "rare labels first"],
      ...this.store.labels.map((l) => [`label:${l.id}`, `suggested as “${l.name}”`])];
    if (!options.some(([value]) => value === order)) options.push([order, order]); // a label since removed
    for (const [value, text] of options) select.add(new Option(text, value, false, value === order));
    // A chosen order hands the keyboard back at once: keys typed into a select belong to it.
    select.addEventListener("change", () => { select.blur(); this.act("setOrder", { order: select.value }); });
  }

  focusOrder() {
    const select = this.el("queue-order");
    select.focus();
    try { select.showPicker(); } catch { /* not every browser opens it from a key */ }
  }

  orderText(order) {
    return [...this.el("queue-order").options].find((o) => o.value === order)?.text || order;
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

  showDone(done, order = "sequential") {
    this.el("done-why").textContent = ["sequential", "random"].includes(order)
      ? "Every image is labeled, skipped or held by someone else."
      : `No image is left in the order “${this.orderText(order)}”: the model suggests none, or all are taken. `
        + "Choose another order above.";
    this.el("done").hidden = !done;
    this.root.classList.toggle("is-done", done);
  }

  showImage() {
    const image = this.store.image;
    this.el("image-name").textContent = image ? image.name : "";
    this.el("image-status").textContent = image ? image.status.replace("_", " ") : "";
    const review = this.store.review;
    const note = this.el("review-note");
    note.hidden = !review;
    // textContent, never HTML: the comment is whatever a reviewer typed.
    note.querySelector(".who").textContent = review ? review.reviewer : "";
    note.querySelector(".comment").textContent = review ? review.comment : "";
  }

  showActiveLabel() {
    for (const b of this.el("class-list").querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.label) === this.store.activeLabel));
    }
  }

  // Each label's tag switch says whether it is a tag (marked when the model's), implied by a box,
  // suggested (dashed, with the probability; A / R act on the ringed one) or rejected.
  // How many suggested boxes are drawn, and the keys that act on them.
  showBoxSuggestions() {
    const n = this.store.shownBoxSuggestions().length;
    const hint = this.el("box-suggest-hint");
    hint.hidden = n === 0;
    hint.querySelector(".n").textContent = String(n);
    const note = this.el("box-note");
    note.hidden = !this.store.boxNote || n > 0;
    note.textContent = this.store.boxNote || "";
  }

  showTags() {
    const store = this.store;
    const implied = store.impliedLabels();
    const pending = new Set(store.pendingSuggestions().map((x) => x.label));
    const focused = store.focusedSuggestion()?.label;
    for (const row of this.el("tag-list").querySelectorAll(".tag-row")) {
      const id = Number(row.dataset.row);
      const b = row.querySelector("[data-label]");
      const tagged = store.tags.has(id);
      const suggestion = store.suggestion(id);
      const fromModel = tagged && store.tagSource(id) === "model";
      const state = tagged ? "tagged" : pending.has(id) ? "suggested" : implied.has(id) ? "implied"
        : suggestion?.decision === "rejected" ? "rejected" : "none";
      b.setAttribute("aria-checked", String(tagged || implied.has(id)));
      b.dataset.action = state === "suggested" ? "focusSuggestion" : "tag";
      b.classList.toggle("implied", state === "implied");
      b.classList.toggle("suggested", state === "suggested");
      b.classList.toggle("rejected", state === "rejected");
      b.classList.toggle("from-model", fromModel);
      row.classList.toggle("focused", id === focused);
      row.querySelector(".suggest-actions").hidden = state !== "suggested";
      const note = b.querySelector(".note");
      // While the model abstains, its numbers would look more certain than they are: none are shown.
      note.textContent = store.modelNote && state === "none" ? "" : tagNote(state, suggestion, fromModel);
      note.classList.toggle("faint", state === "none" || (state === "tagged" && !fromModel));
      b.title = state === "suggested"
        ? `Suggested by the model (${percent(suggestion.probability)}): click to ring it for A / R`
        : `Toggle the image tag “${store.labelById.get(id).name}”`;
    }
    const acceptAll = this.el("accept-all");
    acceptAll.hidden = pending.size === 0;
    acceptAll.querySelector(".n").textContent = String(pending.size);
    this.el("suggest-hint").hidden = pending.size === 0;
    const modelNote = this.el("model-note");
    modelNote.hidden = !store.modelNote;
    modelNote.textContent = store.modelNote || "";
  }

  // Rebuilt after each committed edit, never during a drag; one HTML string, parsed once, keeps
  // that cheap with hundreds of boxes.
  showBoxes() {
    const html = this.store.boxes.map((box) => {
      const label = this.store.labelById.get(box.label);
      const where = `${Math.round(box.w)}×${Math.round(box.h)} at ${Math.round(box.x)},${Math.round(box.y)}`;
      const flags = attributeSummary(box.attributes);
      return `<li><button type="button" data-action="select" data-cid="${box.cid}">`
        + `<span class="swatch" style="background:${label?.color || "#999"}"></span>`
        + `<span class="name">${escapeHtml(label?.name || "?")}</span> <span class="muted">${where}</span>`
        + (flags ? ` <span class="flags">${escapeHtml(flags)}</span>` : "") + "</button></li>";
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

// One row of the tag list: the tag switch, and Accept / Reject for when it is a suggested tag.
// The two buttons carry data-suggestion, not data-label: the switch is the row's one label control.
function tagRow(label) {
  const row = document.createElement("div");
  row.className = "tag-row";
  row.dataset.row = label.id;
  const actions = document.createElement("span");
  actions.className = "suggest-actions";
  actions.hidden = true;
  for (const [action, text, key, title] of [["accept", "Accept", "A", "Accept: make it a tag"],
    ["reject", "Reject", "R", "Reject: record the label as absent"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = action;
    button.dataset.action = action;
    button.dataset.suggestion = label.id;
    button.title = `${title} (the key acts on the ringed suggestion)`;
    button.append(text, " ", kbd(key));
    actions.append(button);
  }
  row.append(labelButton(label, "tag", tagKey(label), "aria-checked", "switch"), actions);
  return row;
}

function tagNote(state, suggestion, fromModel) {
  const p = suggestion ? percent(suggestion.probability) : "";
  if (state === "suggested") return p;
  if (state === "rejected") return `rejected · ${p}`;
  if (state === "implied") return "implied by a box";
  if (fromModel) return "model";
  return p; // the model's probability, shown faintly, also for labels it does not suggest
}

function percent(probability) {
  const p = Math.round(probability * 100);
  return p === 0 && probability > 0 ? "<1%" : `${p}%`;
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

// "occluded, colour=red": what a box carries, in words (the list and the canvas show it).
export function attributeSummary(attributes) {
  return Object.entries(attributes || {}).map(([k, v]) => (v === true ? k : `${k}=${v}`)).join(", ");
}

// One field of a label-defined attribute: a checkbox, a choice (select) or a text.
function attributeField(spec) {
  const row = document.createElement("label");
  let input;
  if (spec.type === "checkbox") {
    input = document.createElement("input");
    input.type = "checkbox";
  } else if (spec.type === "choice") {
    input = document.createElement("select");
    input.add(new Option("—", ""));
    for (const choice of spec.choices) input.add(new Option(choice, choice));
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.maxLength = 200;
    input.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === "Escape") input.blur(); });
  }
  input.dataset.attribute = spec.name;
  if (spec.type === "checkbox") row.append(input, ` ${spec.name}`);
  else row.append(`${spec.name} `, input);
  return row;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function kbd(text) {
  const k = document.createElement("kbd");
  k.textContent = text;
  return k;
}
