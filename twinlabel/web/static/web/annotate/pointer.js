// Pointer gestures on the canvas, turned into store calls. The rule, also shown in the ? overlay:
//   - a drag draws a new box with the active label, wherever it starts, also inside another box;
//   - a click (no drag) selects the smallest box under the pointer, or clears the selection;
//   - the selected box is resized by its 8 handles and moved by dragging its outline;
//   - Alt+drag inside any box moves that box; Shift+click places a box of the last drawn size;
//   - the ringed suggested box has handles and an outline too: dragging them accepts it at the new
//     geometry (recorded as adjusted); Alt+drag inside a suggested box moves it likewise;
//   - Space+drag or a middle-button drag pans; the wheel zooms about the pointer.

import { contains, handlePoints, moveRect, onEdge, rectFromPoints, resizeRect, smallestAt, clamp }
  from "./geometry.js";

const CLICK_SLOP_PX = 3; // a press that moves less than this is a click, not a drag
const GRAB_PX = 6; // how close to a handle or outline counts as on it
const CURSORS = { nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize", n: "ns-resize",
  s: "ns-resize", e: "ew-resize", w: "ew-resize" };

export class Pointer {
  constructor(view) {
    this.view = view;
    this.store = view.store;
    this.canvas = view.overlay;
    this.gesture = null; // {kind: press|draw|move|resize|pan, ...}
    this.at = null; // last pointer position over the canvas, in CSS pixels
    this.spaceHeld = false;
    this.cursor = "";
    this.listen();
  }

  listen() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.down(e));
    c.addEventListener("pointermove", (e) => this.move(e));
    c.addEventListener("pointerup", (e) => this.up(e));
    c.addEventListener("pointercancel", () => this.cancel());
    c.addEventListener("pointerleave", () => { this.at = null; this.view.invalidate("overlay"); });
    c.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    c.addEventListener("auxclick", (e) => e.preventDefault());
    c.addEventListener("contextmenu", (e) => e.preventDefault());
  }

  // Where keyboard zoom centres: the pointer when it is over the canvas, else the middle.
  anchor() {
    return this.at || { x: this.view.viewport.width / 2, y: this.view.viewport.height / 2 };
  }

  setSpace(held) {
    this.spaceHeld = held;
    this.updateCursor(null);
  }

  // The half-drawn box, for the view to show.
  ghost() {
    return this.gesture?.kind === "draw" ? this.gesture.rect : null;
  }

  // The image point for crosshair guides, while the pointer is free to draw.
  guide() {
    if (!this.at || this.spaceHeld || !this.store.image) return null;
    const kind = this.gesture?.kind;
    if (kind && kind !== "draw" && kind !== "press") return null;
    const p = this.imagePoint(this.at);
    const { width, height } = this.store.image;
    return contains({ x: 0, y: 0, w: width, h: height }, p.x, p.y) ? p : null;
  }

  // ---- events ---------------------------------------------------------------------------------

  down(e) {
    if (!this.store.image || this.gesture) return;
    const at = this.local(e);
    this.at = at;
    if (e.button === 1 || (e.button === 0 && this.spaceHeld)) {
      this.start(e, { kind: "pan", last: at });
    } else if (e.button === 0) {
      this.start(e, { ...this.pressAt(at, e.altKey), shift: e.shiftKey });
    }
  }

  // Decide what a left press means; see the rule at the top of this file.
  pressAt(at, alt) {
    const p = this.imagePoint(at);
    const tol = GRAB_PX / this.view.viewport.scale;
    const selected = this.store.box(this.store.selected);
    const handle = selected && this.handleAt(selected, at);
    if (handle) return this.editGesture("resize", selected, p, handle);
    if (alt) {
      const box = smallestAt(this.store.boxes, p.x, p.y);
      if (box) return this.editGesture("move", box, p);
    }
    if (selected && onEdge(selected, p.x, p.y, tol)) return this.editGesture("move", selected, p);
    const suggested = this.suggestionGesture(at, p, alt, tol);
    if (suggested) return suggested;
    return { kind: "press", from: at, origin: this.clampToImage(p) };
  }

  // A press on the ringed suggested box's handle or outline, or Alt inside a shown one (no drawn box
  // under the pointer): a drag of the suggestion, which its end turns into an adjusted accept.
  suggestionGesture(at, p, alt, tol) {
    const store = this.store;
    const ringed = store.focusedBoxSuggestion();
    if (ringed) {
      const rect = store.shownRect(ringed);
      const handle = this.handleAt(rect, at);
      if (handle) return { kind: "suggestResize", id: ringed.id, origin: p, startRect: rect, handle };
      if (onEdge(rect, p.x, p.y, tol)) return { kind: "suggestMove", id: ringed.id, origin: p, startRect: rect };
    }
    if (!alt || smallestAt(store.boxes, p.x, p.y)) return null;
    const under = smallestAt(store.shownBoxSuggestions().map((s) => ({ ...store.shownRect(s), id: s.id })), p.x, p.y);
    if (!under) return null;
    store.focusBoxSuggestion(under.id);
    return { kind: "suggestMove", id: under.id, origin: p, startRect: { x: under.x, y: under.y, w: under.w, h: under.h } };
  }

  editGesture(kind, box, p, handle = null) {
    this.store.select(box.cid);
    this.store.beginGesture(box.cid);
    return { kind, cid: box.cid, origin: p, startRect: box, handle };
  }

  move(e) {
    const t0 = performance.now();
    const at = this.local(e);
    this.at = at;
    const g = this.gesture;
    if (!g) {
      this.updateCursor(at);
    } else if (g.kind === "pan") {
      this.view.pan(at.x - g.last.x, at.y - g.last.y);
      g.last = at;
    } else if (g.kind === "press" && Math.hypot(at.x - g.from.x, at.y - g.from.y) >= CLICK_SLOP_PX) {
      this.gesture = { kind: "draw", origin: g.origin, rect: this.drawRect(g.origin, at) };
    } else if (g.kind === "draw") {
      g.rect = this.drawRect(g.origin, at);
    } else if (g.kind === "move" || g.kind === "resize") {
      this.edit(g, this.imagePoint(at));
      this.measure(e, t0);
    } else if (g.kind === "suggestMove" || g.kind === "suggestResize") {
      this.store.previewBoxSuggestion(g.id, this.editedRect(g, this.imagePoint(at)));
    }
    this.view.invalidate("overlay");
  }

  edit(g, p) {
    this.store.previewBox(g.cid, this.editedRect(g, p));
  }

  editedRect(g, p) {
    const { width, height } = this.store.image;
    const dx = p.x - g.origin.x, dy = p.y - g.origin.y;
    return g.handle ? resizeRect(g.startRect, g.handle, dx, dy, width, height)
      : moveRect(g.startRect, dx, dy, width, height);
  }

  up(e) {
    const g = this.gesture;
    if (!g) return;
    this.gesture = null;
    this.canvas.releasePointerCapture?.(e.pointerId);
    if (g.kind === "press" && g.shift && this.store.lastSize) this.store.stampBox(g.origin.x, g.origin.y);
    else if (g.kind === "press") this.click(g.origin);
    else if (g.kind === "draw") this.finishDraw(g.rect);
    else if (g.kind === "move" || g.kind === "resize") this.store.endGesture();
    else if (g.kind === "suggestMove" || g.kind === "suggestResize") this.store.endBoxSuggestionDrag();
    this.updateCursor(this.local(e));
    this.view.invalidate("overlay");
  }

  cancel() {
    if (this.gesture?.kind === "move" || this.gesture?.kind === "resize") this.store.endGesture();
    if (this.gesture?.kind === "suggestMove" || this.gesture?.kind === "suggestResize") this.store.dropBoxDraft();
    this.gesture = null;
    this.view.invalidate("overlay");
  }

  wheel(e) {
    e.preventDefault();
    if (!this.store.image) return;
    const at = this.local(e);
    const pixels = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1);
    this.view.zoomBy(Math.exp(-pixels * 0.0015), at.x, at.y);
  }

  // ---- helpers --------------------------------------------------------------------------------

  start(e, gesture) {
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.gesture = gesture;
  }

  click(p) {
    const box = smallestAt(this.store.boxes, p.x, p.y);
    this.store.select(box ? box.cid : null);
    // A click on a suggested box (and on no drawn box) rings it for A and R.
    const suggested = box ? null : smallestAt(this.store.shownBoxSuggestions(), p.x, p.y);
    if (suggested) this.store.focusBoxSuggestion(suggested.id);
  }

  finishDraw(rect) {
    if (this.store.activeLabel == null) {
      this.store.setStatus(this.store.status, "Add a label to the project before drawing boxes.");
      return;
    }
    this.store.addBox(rect);
  }

  drawRect(origin, at) {
    return rectFromPoints(origin, this.clampToImage(this.imagePoint(at)));
  }

  handleAt(box, at) {
    for (const [name, [x, y]] of Object.entries(handlePoints(box))) {
      const s = this.view.viewport.toScreen(x, y);
      if (Math.abs(s.x - at.x) <= GRAB_PX && Math.abs(s.y - at.y) <= GRAB_PX) return name;
    }
    return null;
  }

  // Cursor feedback tells which gesture a press would start; the style is written only when it
  // changes, because each write costs a style recalculation.
  updateCursor(at) {
    let cursor = "crosshair";
    if (this.spaceHeld) cursor = "grab";
    else if (at && this.store.image) {
      const selected = this.store.box(this.store.selected);
      const handle = selected && this.handleAt(selected, at);
      const p = this.imagePoint(at);
      const tol = GRAB_PX / this.view.viewport.scale;
      const ringed = !handle && this.store.focusedBoxSuggestion();
      const rect = ringed && this.store.shownRect(ringed);
      const ringedHandle = rect && !(selected && onEdge(selected, p.x, p.y, tol)) && this.handleAt(rect, at);
      if (handle || ringedHandle) cursor = CURSORS[handle || ringedHandle];
      else if (selected && onEdge(selected, p.x, p.y, tol)) cursor = "move";
      else if (rect && onEdge(rect, p.x, p.y, tol)) cursor = "move";
    }
    if (cursor !== this.cursor) {
      this.cursor = cursor;
      this.canvas.style.cursor = cursor;
    }
  }

  measure(e, t0) {
    const perf = this.view.perf;
    if (!perf.enabled) return;
    perf.handlerMs += performance.now() - t0;
    if (perf.pendingSince === null) perf.pendingSince = e.timeStamp;
  }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  imagePoint(at) {
    return this.view.viewport.toImage(at.x, at.y);
  }

  clampToImage(p) {
    const { width, height } = this.store.image;
    return { x: clamp(p.x, 0, width), y: clamp(p.y, 0, height) };
  }
}
