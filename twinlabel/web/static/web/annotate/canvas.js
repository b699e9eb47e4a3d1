// The canvas view: draws the image and the boxes, and hands pointer input to the gesture
// handler (pointer.js), which turns it into store calls. It keeps no annotation state of its
// own: only how the image is shown (the viewport) and what is half-drawn under the pointer.
//
// Two stacked canvases: the image layer is redrawn only when the view moves (a 24-megapixel
// drawImage is the costly part), the overlay with boxes on every change. Both redraw on
// requestAnimationFrame, and only when marked dirty.

import { handlePoints } from "./geometry.js";
import { attributeSummary } from "./panels.js";
import { Pointer } from "./pointer.js";
import { Viewport } from "./viewport.js";

const HANDLE_PX = 7;
const BACKGROUND = "#1f2329";

export class CanvasView {
  constructor(container, store) {
    this.store = store;
    this.container = container;
    this.viewport = new Viewport();
    this.imageCanvas = layer(container, "image-layer");
    this.overlay = layer(container, "overlay-layer");
    this.bitmap = null;
    this.preview = null; // a smaller copy of a big image, drawn when zoomed out
    this.fitted = true; // refit on resize until the person zooms or pans
    this.dirty = { image: false, overlay: false };
    this.frameWaiters = [];
    this.rafId = 0;
    this.perf = { enabled: false, samples: [], pendingSince: null, handlerMs: 0 };
    this.pointer = new Pointer(this);
    this.listen();
  }

  listen() {
    new ResizeObserver(() => this.resize()).observe(this.container);
    this.watchPixelRatio();
    const redraw = () => this.invalidate("overlay");
    for (const type of ["boxes", "select", "label", "hidden", "boxSuggestions"]) this.store.addEventListener(type, redraw);
    this.store.addEventListener("image", () => this.fit());
  }

  // Moving the window to another screen or zooming the browser changes devicePixelRatio but not
  // always the CSS size, so the ResizeObserver stays silent: a media query on the current ratio
  // fires once when it changes (and is then set up again for the new one); a window resize with a
  // new ratio (some browsers and emulators send only that) refits too.
  watchPixelRatio() {
    // Kept on the view: a MediaQueryList nobody references may be collected, and its listener with it.
    this.ratioQuery = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    this.ratioQuery.addEventListener("change", () => { this.resize(); this.watchPixelRatio(); }, { once: true });
    if (!this.watchingResize) {
      this.watchingResize = true;
      window.addEventListener("resize", () => { if ((window.devicePixelRatio || 1) !== this.dpr) this.resize(); });
    }
  }

  setImage(bitmap, preview) {
    this.bitmap = bitmap;
    this.preview = preview;
  }

  resize() {
    const { width, height } = this.container.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.dpr = dpr;
    for (const canvas of [this.imageCanvas, this.overlay]) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    this.viewport.resize(width, height);
    if (this.fitted) this.fit(); else this.invalidate("image");
  }

  // ---- view commands (keys and buttons call these) ----------------------------------------------

  fit() {
    this.fitted = true;
    if (this.store.image) this.viewport.fit(this.store.image.width, this.store.image.height);
    this.invalidate("image");
  }

  zoomStep(dir) {
    const { x, y } = this.pointer.anchor();
    this.viewport.step(dir, x, y);
    this.moved();
  }

  zoomBy(factor, sx, sy) {
    this.viewport.zoomBy(factor, sx, sy);
    this.moved();
  }

  pan(dx, dy) {
    this.viewport.pan(dx, dy);
    this.moved();
  }

  moved() {
    this.fitted = false;
    this.invalidate("image");
  }

  // ---- rendering --------------------------------------------------------------------------------

  invalidate(what) {
    if (what === "image") this.dirty.image = true;
    this.dirty.overlay = true;
    if (!this.rafId) this.rafId = requestAnimationFrame(() => this.render());
  }

  // Resolves after the next frame has been drawn: "the image is on screen and takes input".
  nextFrame() {
    return new Promise((resolve) => {
      this.frameWaiters.push(resolve);
      this.invalidate("overlay");
    });
  }

  render() {
    this.rafId = 0;
    const t0 = performance.now();
    if (this.dirty.image) this.drawImageLayer();
    if (this.dirty.overlay) this.drawOverlay();
    this.dirty.image = this.dirty.overlay = false;
    if (this.perf.enabled && this.perf.pendingSince !== null) this.recordFrame(t0);
    const waiters = this.frameWaiters.splice(0);
    waiters.forEach((resolve) => resolve());
  }

  // Benchmark mode: a 1-pixel read forces the canvas to rasterise now, so that the time measured
  // includes the real drawing work and not only the recording of drawing commands.
  recordFrame(t0) {
    this.overlay.getContext("2d").getImageData(0, 0, 1, 1);
    const now = performance.now();
    this.perf.samples.push({ handler: this.perf.handlerMs, render: now - t0, latency: now - this.perf.pendingSince });
    this.perf.pendingSince = null;
    this.perf.handlerMs = 0;
  }

  context(canvas) {
    const ctx = canvas.getContext("2d");
    const dpr = canvas.width / (this.viewport.width || 1);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  drawImageLayer() {
    const ctx = this.context(this.imageCanvas);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.viewport.width, this.viewport.height);
    const image = this.store.image;
    if (!image || !this.bitmap) return;
    const { scale, ox, oy } = this.viewport;
    const w = image.width * scale, h = image.height * scale;
    const source = this.preview && w <= this.preview.width ? this.preview : this.bitmap;
    // Zoomed in, show the real pixels: annotators place edges on them.
    ctx.imageSmoothingEnabled = scale < 2;
    ctx.drawImage(source, ox, oy, w, h);
  }

  drawOverlay() {
    const ctx = this.context(this.overlay);
    ctx.clearRect(0, 0, this.viewport.width, this.viewport.height);
    if (!this.store.image) return;
    if (!this.store.hidden) {
      this.drawBoxes(ctx);
      this.drawBoxSuggestions(ctx);
    }
    const ghost = this.pointer.ghost();
    if (ghost) this.drawGhost(ctx, ghost);
    const guide = this.pointer.guide();
    if (guide) this.drawGuides(ctx, guide);
  }

  drawBoxes(ctx) {
    const byColor = new Map();
    for (const box of this.store.boxes) {
      const color = this.store.labelById.get(box.label)?.color || "#ffffff";
      if (!byColor.has(color)) byColor.set(color, []);
      byColor.get(color).push(box);
    }
    ctx.lineWidth = 2;
    // One path per colour: 500 boxes cost a handful of stroke calls, not 500.
    for (const [color, boxes] of byColor) {
      ctx.strokeStyle = color;
      ctx.beginPath();
      for (const box of boxes) ctx.rect(...this.screenRect(box));
      ctx.stroke();
    }
    if (this.store.boxes.length <= 150) this.drawNames(ctx, this.store.boxes);
    const selected = this.store.box(this.store.selected);
    if (selected) this.drawSelected(ctx, selected);
  }

  // The detector's boxes: dashed in the label's colour with its name and score under the box (bold
  // dashes: confident; fine: ranked only), the ringed one thick and tinted, with the handles a drag
  // adjusts it by (drawn where the drag has it until the accept's answer comes).
  drawBoxSuggestions(ctx) {
    const shown = this.store.shownBoxSuggestions();
    if (!shown.length) return;
    const focus = this.store.focusedBoxSuggestion();
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "top";
    for (const s of shown) {
      const label = this.store.labelById.get(s.label);
      const color = label?.color || "#ffffff";
      const [x, y, w, h] = this.screenRect(this.store.shownRect(s));
      ctx.globalAlpha = s.predicted || s === focus ? 1 : 0.7;
      ctx.setLineDash(s.predicted ? [8, 4] : [3, 5]);
      ctx.lineWidth = s === focus ? 3 : 2;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);
      if (s === focus) {
        ctx.fillStyle = color + "26";
        ctx.fillRect(x, y, w, h);
        this.drawHandles(ctx, this.store.shownRect(s));
      }
      const text = `${label?.name ?? "?"} ${Math.round(s.score * 100)}%${s === focus ? " · A / R" : ""}`;
      const width = ctx.measureText(text).width + 6;
      ctx.fillStyle = "rgba(17, 17, 17, 0.8)";
      ctx.fillRect(x - 1, y + h + 1, width, 16);
      ctx.fillStyle = "#ffffff";
      ctx.fillText(text, x + 2, y + h + 3);
    }
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }

  drawNames(ctx, boxes) {
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    for (const box of boxes) {
      const label = this.store.labelById.get(box.label);
      if (!label) continue;
      const [x, y] = this.screenRect(box);
      // The name, never the colour alone, says the class; the attributes follow it in words.
      const flags = attributeSummary(box.attributes);
      const text = flags ? `${label.name} · ${flags}` : label.name;
      const width = ctx.measureText(text).width + 6;
      ctx.fillStyle = label.color;
      ctx.fillRect(x - 1, y - 16, width, 16);
      ctx.fillStyle = "#ffffff";
      ctx.fillText(text, x + 2, y - 2);
    }
  }

  drawSelected(ctx, box) {
    const color = this.store.labelById.get(box.label)?.color || "#ffffff";
    const [x, y, w, h] = this.screenRect(box);
    ctx.fillStyle = color + "33";
    ctx.fillRect(x, y, w, h);
    ctx.lineWidth = 3;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    this.drawHandles(ctx, box);
  }

  drawHandles(ctx, box) {
    const dash = ctx.getLineDash();
    ctx.setLineDash([]);
    ctx.lineWidth = 1;
    ctx.fillStyle = "#ffffff";
    ctx.strokeStyle = "#111111";
    for (const [hx, hy] of Object.values(handlePoints(box))) {
      const p = this.viewport.toScreen(hx, hy);
      ctx.fillRect(p.x - HANDLE_PX / 2, p.y - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX);
      ctx.strokeRect(p.x - HANDLE_PX / 2, p.y - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX);
    }
    ctx.setLineDash(dash);
  }

  drawGhost(ctx, rect) {
    const color = this.store.labelById.get(this.store.activeLabel)?.color || "#ffffff";
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = color;
    ctx.strokeRect(...this.screenRect(rect));
    ctx.setLineDash([]);
  }

  // Crosshair guides across the whole image, to line a new box's edge up with the object.
  drawGuides(ctx, { x, y }) {
    const { width, height } = this.store.image;
    const a = this.viewport.toScreen(0, 0), b = this.viewport.toScreen(width, height);
    const p = this.viewport.toScreen(x, y);
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.75)";
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(a.x, p.y + 0.5);
    ctx.lineTo(b.x, p.y + 0.5);
    ctx.moveTo(p.x + 0.5, a.y);
    ctx.lineTo(p.x + 0.5, b.y);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  screenRect(r) {
    const { scale, ox, oy } = this.viewport;
    return [r.x * scale + ox, r.y * scale + oy, r.w * scale, r.h * scale];
  }
}

function layer(container, className) {
  const canvas = document.createElement("canvas");
  canvas.className = className;
  container.append(canvas);
  return canvas;
}
