// Decoded images, kept as ImageBitmaps: decoding happens once, off the main thread, before the
// image is shown, so that opening a prefetched image costs one drawImage. A few are kept for
// going back and forth; big ones also get a smaller copy for drawing when zoomed out.

import { send } from "../http.js";

const KEEP = 4;
const PREVIEW_SIDE = 2048;

export class ImageCache {
  constructor() {
    this.entries = new Map(); // url -> Promise<{bitmap, preview}>
  }

  load(url) {
    if (this.entries.has(url)) {
      const entry = this.entries.get(url);
      this.entries.delete(url); // re-insert: the Map's order is our least-recently-used order
      this.entries.set(url, entry);
      return entry;
    }
    const entry = decode(url);
    entry.catch(() => this.entries.delete(url));
    this.entries.set(url, entry);
    this.evict();
    return entry;
  }

  evict() {
    while (this.entries.size > KEEP) {
      const [url, entry] = this.entries.entries().next().value;
      this.entries.delete(url);
      entry.then(({ bitmap, preview }) => { bitmap.close(); preview?.close(); }, () => {});
    }
  }
}

async function decode(url) {
  const response = await send(url, { accept: "image/*" });
  if (!response.ok) throw new Error(`the image could not be loaded (${response.status})`);
  const bitmap = await createImageBitmap(await response.blob());
  const side = Math.max(bitmap.width, bitmap.height);
  if (side <= PREVIEW_SIDE * 1.5) return { bitmap, preview: null };
  const k = PREVIEW_SIDE / side;
  const preview = await createImageBitmap(bitmap, {
    resizeWidth: Math.round(bitmap.width * k), resizeHeight: Math.round(bitmap.height * k), resizeQuality: "medium",
  });
  return { bitmap, preview };
}
