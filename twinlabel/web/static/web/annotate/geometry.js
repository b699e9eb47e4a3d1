// Pure geometry on rectangles {x, y, w, h} in image pixels. No DOM, no state: the store and
// the canvas view both lean on these, and they are easy to reason about in isolation.

export const MIN_SIZE = 4; // image pixels: smaller boxes are almost always slips of the mouse

// The 8 resize handles, named by compass point; each says which edges it moves.
export const HANDLES = {
  nw: { left: true, top: true }, n: { top: true }, ne: { right: true, top: true },
  e: { right: true }, se: { right: true, bottom: true }, s: { bottom: true },
  sw: { left: true, bottom: true }, w: { left: true },
};

export function rectFromPoints(a, b) {
  return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
}

// Clip to the image; the result may have zero size, which callers treat as "no box".
export function clipRect(r, width, height) {
  const x0 = clamp(r.x, 0, width), y0 = clamp(r.y, 0, height);
  const x1 = clamp(r.x + r.w, 0, width), y1 = clamp(r.y + r.h, 0, height);
  return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

// Move keeping the size: a moved box slides along the image border instead of shrinking.
export function moveRect(r, dx, dy, width, height) {
  return { x: clamp(r.x + dx, 0, Math.max(0, width - r.w)), y: clamp(r.y + dy, 0, Math.max(0, height - r.h)),
    w: r.w, h: r.h };
}

// Drag the edges named by the handle by (dx, dy), keep the opposite edges fixed, never go below
// the minimum size nor outside the image.
export function resizeRect(r, handle, dx, dy, width, height, min = MIN_SIZE) {
  const edges = HANDLES[handle];
  let x0 = r.x, y0 = r.y, x1 = r.x + r.w, y1 = r.y + r.h;
  if (edges.left) x0 = clamp(x0 + dx, 0, x1 - min);
  if (edges.right) x1 = clamp(x1 + dx, x0 + min, width);
  if (edges.top) y0 = clamp(y0 + dy, 0, y1 - min);
  if (edges.bottom) y1 = clamp(y1 + dy, y0 + min, height);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

export function handlePoints(r) {
  const cx = r.x + r.w / 2, cy = r.y + r.h / 2, x1 = r.x + r.w, y1 = r.y + r.h;
  return { nw: [r.x, r.y], n: [cx, r.y], ne: [x1, r.y], e: [x1, cy], se: [x1, y1], s: [cx, y1],
    sw: [r.x, y1], w: [r.x, cy] };
}

export function contains(r, x, y, slack = 0) {
  return x >= r.x - slack && x <= r.x + r.w + slack && y >= r.y - slack && y <= r.y + r.h + slack;
}

// True when (x, y) lies within `tol` of the rectangle's outline (inside or outside it).
export function onEdge(r, x, y, tol) {
  if (!contains(r, x, y, tol)) return false;
  return x - r.x <= tol || r.x + r.w - x <= tol || y - r.y <= tol || r.y + r.h - y <= tol;
}

// The smallest box under the point: with nested boxes the inner one is the likelier target.
export function smallestAt(boxes, x, y) {
  let best = null;
  for (const box of boxes) {
    if (contains(box, x, y) && (!best || box.w * box.h < best.w * best.h)) best = box;
  }
  return best;
}

export function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

export function sameRect(a, b) {
  return a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h;
}
