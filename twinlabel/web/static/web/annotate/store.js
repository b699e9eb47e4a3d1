// The store owns the state of the open image and emits events; views only read it and call its
// methods. Boxes are immutable objects with a client-side id (cid), replaced on every change, so
// that an undo snapshot is just a copy of the array.
//
// Events (detail in brackets):
//   image   a new image was loaded
//   boxes   box geometry or the list changed ({preview: true} while a drag is in progress)
//   tags    image tags changed
//   select  the selected box changed
//   label   the active box class changed
//   hidden  boxes were hidden or shown
//   suggestions  the model's suggestions, their focus, or the sources of tags changed
//   boxSuggestions  the detector's suggested boxes or their focus changed ({preview: true} while
//                   the ringed one is dragged)
//   boxAdjust  a drag of a suggested box ended with a new geometry ({id, rect}): accept it so
//   edit    a committed edit: the saver persists it
//   status  save status changed ({status, message})

import { clipRect, MIN_SIZE, moveRect, sameRect } from "./geometry.js";

const HISTORY_LIMIT = 500;
// Suggested boxes below their label's confident threshold are drawn (faintly) from this score on.
export const BOX_SHOWN_FROM = 0.3;
export const FLAGS = ["occluded", "truncated", "difficult"]; // on every box; labels may define more

export class Store extends EventTarget {
  constructor(labels) {
    super();
    this.labels = labels;
    this.labelById = new Map(labels.map((l) => [l.id, l]));
    this.activeLabel = labels.length ? labels[0].id : null;
    this.image = null;
    this.review = null;
    this.boxes = [];
    this.tags = new Set();
    this.tagSources = new Map(); // label id -> "human" | "model", as the server last said
    this.suggestions = []; // the current probe's view of this image, likeliest first (docs/annotate-api.md)
    this.modelNote = null; // "the model is still learning: ..." when its fit is near chance
    this.suggestFocus = null; // the label A and R act on; null: the first pending one
    this.boxSuggestions = []; // the current detector's boxes for this image, best first
    this.boxFocus = null; // the suggested box A and R act on (Tab walks them); null: the tags'
    this.boxDraft = null; // {id, rect}: the ringed suggested box as a drag has it, until the server answers
    this.selected = null;
    this.hidden = false;
    this.revision = 0; // bumped on every committed edit; the saver compares it with what it sent
    this.status = "saved";
    this.message = "";
    this.nextCid = 1;
    this.undoStack = [];
    this.redoStack = [];
    this.gesture = null;
    this.lastSize = null; // {w, h} of the last box drawn: kept from image to image
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- loading -------------------------------------------------------------------------------

  load(state) {
    this.image = { ...state.image };
    this.boxes = state.boxes.map((b) => this.makeBox(b));
    this.tags = new Set(state.tags.map((t) => t.label));
    this.tagSources = sourcesOf(state.tags);
    this.suggestions = state.suggestions || [];
    this.modelNote = state.model_note || null;
    this.boxNote = state.box_note || null; // "no suggested boxes yet: ..." while the detector draws none
    this.review = state.review || null;  // a reviewer's rejection to act on
    this.suggestFocus = null;
    this.boxSuggestions = state.box_suggestions || [];
    this.boxFocus = null;
    this.boxDraft = null;
    this.selected = null;
    this.undoStack = [];
    this.redoStack = [];
    this.gesture = null;
    this.revision = 0;
    this.setStatus("saved");
    this.emit("image");
    this.emit("boxes");
    this.emit("tags");
    this.emit("suggestions");
    this.emit("boxSuggestions");
    this.emit("select");
  }

  // Nothing left to annotate.
  clear() {
    this.image = null;
    this.boxes = [];
    this.tags = new Set();
    this.tagSources = new Map();
    this.suggestions = [];
    this.modelNote = null;
    this.boxNote = null;
    this.suggestFocus = null;
    this.boxSuggestions = [];
    this.boxFocus = null;
    this.boxDraft = null;
    this.selected = null;
    this.undoStack = [];
    this.redoStack = [];
    this.setStatus("saved");
    this.emit("boxSuggestions");
    this.emit("image");
    this.emit("boxes");
    this.emit("tags");
    this.emit("suggestions");
  }

  makeBox({ label, x, y, w, h, source = "human", attributes = {} }) {
    return Object.freeze({ cid: this.nextCid++, label, x, y, w, h, source, attributes: Object.freeze({ ...attributes }) });
  }

  // What a PUT sends: the full state, in image pixels; a box's attributes only when it has any, and
  // its source when it is one of the model's boxes that a person adjusted (the server keeps a box that
  // stayed where it was by its geometry, and checks such a claim against the model's boxes it held).
  serialize() {
    return {
      boxes: this.boxes.map(({ label, x, y, w, h, attributes, source }) => ({
        label, x, y, w, h,
        ...(Object.keys(attributes).length ? { attributes } : {}),
        ...(source === "model_adjusted" ? { source } : {}),
      })),
      tags: [...this.tags].sort((a, b) => a - b),
    };
  }

  box(cid) {
    return this.boxes.find((b) => b.cid === cid) || null;
  }

  // Labels present because a box has them: the image-level label set includes them anyway.
  impliedLabels() {
    return new Set(this.boxes.map((b) => b.label));
  }

  // ---- suggestions: the model's tags, shown apart until a person accepts them -------------------

  // Suggested tags nobody has decided on, likeliest first; a label already tagged is not offered.
  pendingSuggestions() {
    return this.suggestions.filter((s) => s.predicted && !s.decision && !this.tags.has(s.label));
  }

  suggestion(label) {
    return this.suggestions.find((s) => s.label === label) || null;
  }

  // The suggestion A and R act on: the one clicked last while it is pending, else the likeliest.
  focusedSuggestion() {
    const pending = this.pendingSuggestions();
    return pending.find((s) => s.label === this.suggestFocus) || pending[0] || null;
  }

  focusSuggestion(label) {
    if (label === this.suggestFocus) return;
    this.suggestFocus = label;
    this.emit("suggestions");
  }

  tagSource(label) {
    return this.tagSources.get(label) || "human";
  }

  // A PUT's answer: which stored tags came from the model.
  setTagSources(tags) {
    this.tagSources = sourcesOf(tags);
    this.emit("suggestions");
  }

  // The server's answer to accept / reject (or their undo): a new version, maybe new tags, new
  // decisions. Tags the server added since ``tagsBefore`` (what it had before the call) join the
  // local ones. A decision is not an edit of the history (suggest.js takes it back on Ctrl+Z), and
  // undoing an earlier edit must not drop an accepted tag, so the history gets the added tags too.
  // Nothing is left to save because of it: the server has it already.
  takeDecision(state, tagsBefore, undone = []) {
    this.image.version = state.image.version;
    this.image.status = state.image.status;
    const now = new Set(state.tags.map((t) => t.label));
    const added = [...now].filter((label) => !tagsBefore.has(label));
    // An undone accept: its tag is gone on the server, so it goes here and from the history too.
    const removed = undone.filter((label) => !now.has(label));
    if (added.length || removed.length) {
      const change = (tags) => new Set([...tags, ...added].filter((label) => !removed.includes(label)));
      this.tags = change(this.tags);
      for (const stack of [this.undoStack, this.redoStack]) {
        stack.forEach((snap, i) => { stack[i] = { ...snap, tags: change(snap.tags) }; });
      }
    }
    this.tagSources = sourcesOf(state.tags);
    this.suggestions = state.suggestions || [];
    this.modelNote = state.model_note || null;
    this.emit("tags");
    this.emit("suggestions");
  }

  // ---- box suggestions: the detector's boxes, drawn dashed until a person accepts one -----------

  // Undecided ones that are confident, or that the server found worth judging ("shown": precise
  // enough on held-out images to save more time than they cost, not a copy of a better box) at BOX_SHOWN_FROM or more
  // (ranked, not pre-accepted). A row without "shown" (an older server) is judged by the floor alone.
  shownBoxSuggestions() {
    return this.boxSuggestions.filter(
      (s) => !s.decision && (s.predicted || (s.shown !== false && s.score >= BOX_SHOWN_FROM)),
    );
  }

  focusedBoxSuggestion() {
    return this.shownBoxSuggestions().find((s) => s.id === this.boxFocus) || null;
  }

  focusBoxSuggestion(id) {
    if (id === this.boxFocus) return;
    this.boxFocus = id;
    this.emit("boxSuggestions");
  }

  // A suggested box as it is drawn: at the geometry a drag gave it while that accept is on its way.
  shownRect(s) {
    return this.boxDraft?.id === s.id ? this.boxDraft.rect : s;
  }

  // Dragging a handle or the outline of the ringed suggested box: previewed here, never a box of
  // the page; the drag's end asks for an accept at the new geometry (the server stores it as
  // "model_adjusted" and records the decision as "adjusted").
  previewBoxSuggestion(id, rect) {
    this.boxDraft = { id, rect: this.clip(rect) };
    this.emit("boxSuggestions", { preview: true });
  }

  endBoxSuggestionDrag() {
    const draft = this.boxDraft;
    const s = draft && this.boxSuggestions.find((b) => b.id === draft.id);
    if (!s || sameRect(draft.rect, s) || draft.rect.w < MIN_SIZE || draft.rect.h < MIN_SIZE) {
      this.dropBoxDraft();
      return false;
    }
    this.emit("boxAdjust", { id: s.id, rect: { ...draft.rect } });
    return true;
  }

  // The accept failed (or the drag changed nothing): the suggestion is drawn where it was.
  dropBoxDraft() {
    if (!this.boxDraft) return;
    this.boxDraft = null;
    this.emit("boxSuggestions");
  }

  // Tab: the next shown suggestion, wrapping around; false when none is shown.
  cycleBoxSuggestion(step) {
    const shown = this.shownBoxSuggestions();
    if (!shown.length) return false;
    const at = shown.findIndex((s) => s.id === this.boxFocus);
    const next = at < 0 ? (step > 0 ? 0 : shown.length - 1) : (at + step + shown.length) % shown.length;
    this.focusBoxSuggestion(shown[next].id);
    return true;
  }

  // The server's answer to a decision on a suggested box: boxes it added since ``boxesBefore``
  // (what it held when the call was made) join the local ones, boxes it removed (an undone accept)
  // go, in the history too, as for accepted tags; nothing is left to save because of it. The ring
  // moves on to the next shown suggestion, so A A A walks down the list.
  takeBoxDecision(state, boxesBefore) {
    this.image.version = state.image.version;
    this.image.status = state.image.status;
    const before = new Set(boxesBefore.map(boxKey));
    const now = new Set(state.boxes.map(boxKey));
    const added = state.boxes.filter((b) => !before.has(boxKey(b))).map((b) => this.makeBox(b));
    const removed = new Set([...before].filter((key) => !now.has(key)));
    if (added.length || removed.size) {
      const change = (boxes) => [...boxes.filter((b) => !removed.has(boxKey(b))), ...added];
      this.boxes = change(this.boxes);
      for (const stack of [this.undoStack, this.redoStack]) {
        stack.forEach((snap, i) => { stack[i] = { ...snap, boxes: change(snap.boxes) }; });
      }
      this.emit("boxes");
    }
    this.boxSuggestions = state.box_suggestions || [];
    this.boxDraft = null;
    if (!this.focusedBoxSuggestion()) this.boxFocus = this.shownBoxSuggestions()[0]?.id ?? null;
    this.tagSources = sourcesOf(state.tags);
    this.emit("boxSuggestions");
  }

  // ---- edits: each one is undoable and emits "edit" --------------------------------------------

  addBox(rect, label = this.activeLabel) {
    const r = this.clip(rect);
    if (label == null || r.w < MIN_SIZE || r.h < MIN_SIZE) return null;
    const box = this.makeBox({ label, ...r });
    this.commit(() => { this.boxes = [...this.boxes, box]; });
    this.lastSize = { w: r.w, h: r.h };
    this.select(box.cid);
    return box.cid;
  }

  // "Repeat the last box size": a box as large as the last one drawn, centred on an image point.
  stampBox(cx, cy) {
    if (!this.lastSize) return null;
    const { w, h } = this.lastSize;
    return this.addBox({ x: cx - w / 2, y: cy - h / 2, w, h });
  }

  // Boxes of another image (the previous one, for sequences of similar frames), clipped to this
  // one, in one undo step. Attributes this project's labels no longer define are left out.
  pasteBoxes(boxes) {
    const added = [];
    for (const b of boxes) {
      const r = this.clip(b);
      if (!this.labelById.has(b.label) || r.w < MIN_SIZE || r.h < MIN_SIZE) continue;
      added.push(this.makeBox({ label: b.label, ...r, attributes: this.attributesFor(b.label, b.attributes || {}) }));
    }
    if (added.length) this.commit(() => { this.boxes = [...this.boxes, ...added]; });
    return added.length;
  }

  // name: occluded / truncated / difficult or one the box's label defines; false, "" or null unset it.
  setAttribute(cid, name, value) {
    const box = this.box(cid);
    if (!box || (box.attributes[name] ?? null) === (value === false || value === "" ? null : value)) return;
    const attributes = { ...box.attributes };
    if (value === false || value === "" || value == null) delete attributes[name]; else attributes[name] = value;
    this.commit(() => this.replace(cid, { attributes: Object.freeze(attributes) }));
  }

  toggleFlag(cid, name) {
    const box = this.box(cid);
    if (box) this.setAttribute(cid, name, !box.attributes[name]);
  }

  // The attributes a box may keep under ``label``: the three flags, and what that label defines.
  attributesFor(label, attributes) {
    const defined = new Set([...FLAGS, ...(this.labelById.get(label)?.attributes || []).map((a) => a.name)]);
    return Object.fromEntries(Object.entries(attributes).filter(([name]) => defined.has(name)));
  }

  deleteBox(cid) {
    if (!this.box(cid)) return;
    this.commit(() => { this.boxes = this.boxes.filter((b) => b.cid !== cid); });
    if (this.selected === cid) this.select(null);
  }

  relabel(cid, label) {
    const box = this.box(cid);
    if (!box || box.label === label) return;
    this.commit(() => this.replace(cid, {
      label, attributes: Object.freeze(this.attributesFor(label, box.attributes)), ...adjusted(box),
    }));
  }

  nudge(cid, dx, dy) {
    const box = this.box(cid);
    if (!box) return;
    const r = moveRect(box, dx, dy, this.image.width, this.image.height);
    if (!sameRect(r, box)) this.commit(() => this.replace(cid, { ...r, ...adjusted(box) }));
  }

  toggleTag(label) {
    this.commit(() => {
      const tags = new Set(this.tags);
      if (tags.has(label)) tags.delete(label); else tags.add(label);
      this.tags = tags;
    });
  }

  // A drag (move or resize) changes a box many times a second but is one edit: the snapshot is
  // taken when it starts and pushed only if the box really changed when it ends.
  beginGesture(cid) {
    this.gesture = { cid, before: this.snapshot(), start: this.box(cid) };
  }

  previewBox(cid, rect) {
    const box = this.box(cid);
    this.replace(cid, { ...this.clip(rect), ...(box ? adjusted(box) : {}) });
    this.emit("boxes", { preview: true });
  }

  endGesture() {
    const g = this.gesture;
    this.gesture = null;
    if (!g) return;
    const now = this.box(g.cid);
    if (now && g.start && !sameRect(now, g.start)) {
      this.pushHistory(g.before);
      this.changed();
    } else {
      if (now && g.start) this.replace(g.cid, { source: g.start.source });  // a drag that moved nothing adjusted nothing
      this.emit("boxes");
    }
  }

  // ---- undo / redo ----------------------------------------------------------------------------

  undo() {
    this.travel(this.undoStack, this.redoStack);
  }

  redo() {
    this.travel(this.redoStack, this.undoStack);
  }

  travel(from, to) {
    if (!from.length) return;
    to.push(this.snapshot());
    this.restore(from.pop());
    this.changed();
  }

  // ---- view state (not undoable, not saved) ---------------------------------------------------

  select(cid) {
    if (cid === this.selected) return;
    this.selected = cid;
    this.emit("select");
  }

  // Tab through the boxes in list order, wrapping around.
  selectNext(step) {
    const n = this.boxes.length;
    if (!n) return;
    const at = this.boxes.findIndex((b) => b.cid === this.selected);
    const next = at < 0 ? (step > 0 ? 0 : n - 1) : (at + step + n) % n;
    this.select(this.boxes[next].cid);
  }

  setActiveLabel(label) {
    if (!this.labelById.has(label) || label === this.activeLabel) return;
    this.activeLabel = label;
    this.emit("label");
  }

  toggleHidden() {
    this.hidden = !this.hidden;
    this.emit("hidden");
  }

  setStatus(status, message = "") {
    if (status === this.status && message === this.message) return;
    this.status = status;
    this.message = message;
    this.emit("status", { status, message });
  }

  // ---- internals ------------------------------------------------------------------------------

  commit(mutate) {
    this.pushHistory(this.snapshot());
    mutate();
    this.changed();
  }

  pushHistory(snapshot) {
    this.undoStack.push(snapshot);
    if (this.undoStack.length > HISTORY_LIMIT) this.undoStack.shift();
    this.redoStack = [];
  }

  changed() {
    this.revision++;
    if (this.selected !== null && !this.box(this.selected)) this.select(null);
    this.emit("boxes");
    this.emit("tags");
    this.emit("edit");
  }

  snapshot() {
    return { boxes: this.boxes, tags: this.tags };
  }

  restore({ boxes, tags }) {
    this.boxes = boxes;
    this.tags = tags;
  }

  replace(cid, changes) {
    this.boxes = this.boxes.map((b) => (b.cid === cid ? Object.freeze({ ...b, ...changes }) : b));
  }

  clip(rect) {
    return clipRect(rect, this.image.width, this.image.height);
  }
}

// One of the model's boxes (accepted as suggested, or adjusted) that a person moves, resizes or
// relabels stays the model's, adjusted: "model_adjusted", not "human".
function adjusted(box) {
  return box.source === "model" || box.source === "model_adjusted" ? { source: "model_adjusted" } : {};
}

// A box as the server and this page both know it: its label and geometry (ids differ).
function boxKey(b) {
  return [b.label, b.x, b.y, b.w, b.h].map((v) => Number(v).toFixed(3)).join(",");
}

function sourcesOf(tags) {
  return new Map(tags.map((t) => [t.label, t.source || "human"]));
}
