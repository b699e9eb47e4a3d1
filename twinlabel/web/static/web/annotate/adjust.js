// Brightness, contrast and gamma of the shown image: a CSS filter on the image layer only (the
// browser applies it when compositing, on the GPU where there is one), so the stored image, the
// boxes and the model never see it. Remembered per user in this browser (localStorage).
//
// Brightness and contrast are CSS's own filter functions; CSS has no gamma, so an SVG
// feComponentTransfer (type "gamma") in the page does it, referenced by url(#gamma-filter).

const DEFAULTS = { brightness: 1, contrast: 1, gamma: 1 };
const STEP = 0.1;
const RANGE = [0.2, 4];

export class Adjustments {
  constructor({ canvas, gammaNode, storageKey, onChange }) {
    Object.assign(this, { canvas, gammaNode, storageKey, onChange });
    this.values = { ...DEFAULTS, ...this.read() };
    this.apply();
  }

  // dir: +1 or -1 steps of 10 %.
  step(name, dir) {
    const v = Math.round((this.values[name] + dir * STEP) * 100) / 100;
    this.values[name] = Math.min(RANGE[1], Math.max(RANGE[0], v));
    this.changed();
  }

  reset() {
    this.values = { ...DEFAULTS };
    this.changed();
  }

  get isDefault() {
    return Object.keys(DEFAULTS).every((k) => this.values[k] === DEFAULTS[k]);
  }

  filter() {
    const { brightness, contrast, gamma } = this.values;
    if (this.isDefault) return "";
    return `brightness(${brightness}) contrast(${contrast})${gamma !== 1 ? " url(#gamma-filter)" : ""}`;
  }

  changed() {
    this.apply();
    try {
      localStorage.setItem(this.storageKey, JSON.stringify(this.values));
    } catch { /* private mode or full storage: the setting lasts for this page only */ }
  }

  apply() {
    // A gamma above 1 brightens the mid-tones: the transfer function is v ** (1 / gamma).
    const exponent = String(1 / this.values.gamma);
    for (const f of this.gammaNode?.querySelectorAll("feFuncR, feFuncG, feFuncB") || []) f.setAttribute("exponent", exponent);
    this.canvas.style.filter = this.filter();
    this.onChange?.(this);
  }

  read() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey) || "{}");
      return Object.fromEntries(Object.keys(DEFAULTS).filter((k) => Number.isFinite(saved[k])).map((k) => [k, saved[k]]));
    } catch {
      return {};
    }
  }
}
