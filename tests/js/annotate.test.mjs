// Pure parts of the annotate page (store, geometry, viewport, keys), run with `node --test`:
// milliseconds, no browser. The browser tests cover the same behaviour end to end.

import assert from "node:assert/strict";
import { test } from "node:test";

import { clipRect, moveRect, resizeRect, smallestAt } from "../../annotator/static/annotator/annotate/geometry.js";
import { actionFor } from "../../annotator/static/annotator/annotate/keys.js";
import { Store } from "../../annotator/static/annotator/annotate/store.js";
import { Viewport } from "../../annotator/static/annotator/annotate/viewport.js";

const LABELS = [{ id: 1, name: "cat", color: "#ff0000", hotkey: "1" }, { id: 2, name: "dog", color: "#00ff00", hotkey: "2" }];

function store() {
  const s = new Store(LABELS);
  s.load({ image: { id: 7, width: 100, height: 80, version: 3, status: "in_progress", url: "/x", name: "x" },
    boxes: [], tags: [] });
  return s;
}

test("a box is clipped to the image and slips below the minimum size are refused", () => {
  const s = store();
  s.addBox({ x: -5, y: 10, w: 50, h: 100 });
  assert.equal(s.addBox({ x: 1, y: 1, w: 2, h: 30 }), null);
  assert.deepEqual(s.serialize(), { boxes: [{ label: 1, x: 0, y: 10, w: 45, h: 70 }], tags: [] });
});

test("every edit is undone and redone, a drag being one edit", () => {
  const s = store();
  const cid = s.addBox({ x: 10, y: 10, w: 20, h: 20 });
  s.nudge(cid, 10, 0);
  s.relabel(cid, 2);
  s.toggleTag(1);
  s.beginGesture(cid);
  s.previewBox(cid, { x: 40, y: 40, w: 20, h: 20 });
  s.previewBox(cid, { x: 50, y: 50, w: 20, h: 20 });
  s.endGesture();
  const states = [];
  for (let i = 0; i < 5; i++) { states.push(JSON.stringify(s.serialize())); s.undo(); }
  assert.deepEqual(s.serialize(), { boxes: [], tags: [] });
  for (let i = 0; i < 5; i++) s.redo();
  assert.equal(JSON.stringify(s.serialize()), states[0]);
  assert.equal(s.revision, 15);
});

test("tags are separate from the labels that boxes imply", () => {
  const s = store();
  s.addBox({ x: 10, y: 10, w: 20, h: 20 }, 2);
  s.toggleTag(1);
  assert.deepEqual(s.serialize().tags, [1]);
  assert.deepEqual([...s.impliedLabels()], [2]);
});

test("geometry: moves stay inside, resizes keep the minimum, the smallest box wins", () => {
  assert.deepEqual(moveRect({ x: 90, y: 0, w: 20, h: 10 }, 50, -5, 100, 80), { x: 80, y: 0, w: 20, h: 10 });
  assert.deepEqual(resizeRect({ x: 10, y: 10, w: 20, h: 20 }, "se", -30, -30, 100, 100), { x: 10, y: 10, w: 4, h: 4 });
  assert.deepEqual(clipRect({ x: 90, y: 70, w: 20, h: 20 }, 100, 80), { x: 90, y: 70, w: 10, h: 10 });
  const outer = { x: 0, y: 0, w: 50, h: 50 }, inner = { x: 10, y: 10, w: 5, h: 5 };
  assert.equal(smallestAt([inner, outer], 12, 12), inner);
});

test("viewport: + steps to exact levels and zoom keeps the point under the pointer", () => {
  const v = new Viewport();
  v.resize(1000, 800);
  v.fit(1600, 1200);
  assert.deepEqual([v.scale, v.ox, v.oy], [0.625, 0, 25]);
  const before = v.toImage(100, 100);
  v.step(1, 100, 100);
  v.step(1, 100, 100);
  v.step(1, 100, 100);
  v.step(1, 100, 100);
  assert.equal(v.scale, 2);
  assert.deepEqual(v.toImage(100, 100), before);
});

test("keys: plain label key picks the class, Shift+key toggles the tag, arrows nudge only a selection", () => {
  const key = (k, code, extra = {}) => ({ key: k, code, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...extra });
  const ctx = { labels: LABELS, hasSelection: false };
  assert.deepEqual(actionFor(key("2", "Digit2"), ctx), { action: "label", label: 2 });
  assert.deepEqual(actionFor(key("@", "Digit2", { shiftKey: true }), ctx), { action: "tag", label: 2 });
  assert.deepEqual(actionFor(key("Z", "KeyZ", { ctrlKey: true, shiftKey: true }), ctx), { action: "redo" });
  assert.deepEqual(actionFor(key("ArrowLeft", "ArrowLeft"), ctx), { action: "back" });
  assert.deepEqual(actionFor(key("ArrowLeft", "ArrowLeft", { shiftKey: true }), { ...ctx, hasSelection: true }),
    { action: "nudge", dx: -10, dy: 0 });
  assert.deepEqual(actionFor(key("?", "Slash", { shiftKey: true }), ctx), { action: "help" });
});
