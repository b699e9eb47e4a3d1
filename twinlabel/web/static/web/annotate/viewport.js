// The mapping between image pixels and the canvas's CSS pixels: screen = image * scale + offset.
// Kept apart from drawing so that the arithmetic the tests rely on lives in one small place.

// + and - step through these, so that "zoom 2" is exactly 2 and a level can be returned to.
const LEVELS = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32];
const MIN_SCALE = 1 / 64;
const MAX_SCALE = 64;

export class Viewport {
  constructor() {
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.width = 0; // canvas size in CSS pixels
    this.height = 0;
  }

  resize(width, height) {
    this.width = width;
    this.height = height;
  }

  // The whole image, centred, as large as fits.
  fit(imageWidth, imageHeight) {
    if (!this.width || !this.height) return;
    this.scale = Math.min(this.width / imageWidth, this.height / imageHeight);
    this.ox = (this.width - imageWidth * this.scale) / 2;
    this.oy = (this.height - imageHeight * this.scale) / 2;
  }

  // Zoom keeping the image point under (sx, sy) where it is.
  zoomTo(scale, sx, sy) {
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    const p = this.toImage(sx, sy);
    this.scale = s;
    this.ox = sx - p.x * s;
    this.oy = sy - p.y * s;
  }

  zoomBy(factor, sx, sy) {
    this.zoomTo(this.scale * factor, sx, sy);
  }

  // The next preset level above (dir = 1) or below (dir = -1) the current scale.
  step(dir, sx, sy) {
    const eps = 1e-9;
    const next = dir > 0 ? LEVELS.find((l) => l > this.scale + eps) : [...LEVELS].reverse().find((l) => l < this.scale - eps);
    this.zoomTo(next ?? this.scale, sx, sy);
  }

  pan(dx, dy) {
    this.ox += dx;
    this.oy += dy;
  }

  toImage(sx, sy) {
    return { x: (sx - this.ox) / this.scale, y: (sy - this.oy) / this.scale };
  }

  toScreen(x, y) {
    return { x: x * this.scale + this.ox, y: y * this.scale + this.oy };
  }
}
