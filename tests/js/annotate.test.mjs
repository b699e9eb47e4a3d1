// Pure parts of the annotate page (store, geometry, viewport, keys), run with `node --test`:
// milliseconds, no browser. The browser tests cover the same behaviour end to end.

import assert from "node:assert/strict";
import { test } from "node:test";

import { clipRect, moveRect, resizeRect, smallestAt } from "../../twinlabel/web/static/web/annotate/geometry.js";
import { actionFor } from "../../twinlabel/web/static/web/annotate/keys.js";
import { Store } from "../../twinlabel/web/static/web/annotate/store.js";
import { Viewport } from "../../twinlabel/web/static/web/annotate/viewport.js";

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
  assert.deepEqual(actionFor(key("m", "KeyM"), ctx), { action: "moreLike" }); // more like this (issue 17)
});

// ---- issue 19: attributes, copy previous, repeat size, keys -----------------------------------

const CAR = [{ id: 1, name: "car", color: "#ff0000", hotkey: "1",
  attributes: [{ name: "colour", type: "choice", choices: ["red", "blue"] }] },
{ id: 2, name: "dog", color: "#00ff00", hotkey: "2", attributes: [] }];

function carStore() {
  const s = new Store(CAR);
  s.load({ image: { id: 7, width: 100, height: 80, version: 3, status: "in_progress", url: "/x", name: "x" },
    boxes: [{ label: 1, x: 1, y: 1, w: 10, h: 10, attributes: { occluded: true } }], tags: [] });
  return s;
}

test("attributes toggle as undoable edits, are sent only when set, and a relabel keeps what the new label allows", () => {
  const s = carStore();
  const cid = s.boxes[0].cid;
  s.toggleFlag(cid, "difficult");
  s.setAttribute(cid, "colour", "red");
  assert.deepEqual(s.serialize().boxes[0].attributes, { occluded: true, difficult: true, colour: "red" });
  s.toggleFlag(cid, "occluded");
  s.undo();
  assert.equal(s.box(cid).attributes.occluded, true);
  s.relabel(cid, 2);
  assert.deepEqual(s.box(cid).attributes, { occluded: true, difficult: true });
  s.setAttribute(cid, "occluded", false);
  s.setAttribute(cid, "difficult", false);
  assert.deepEqual(s.serialize().boxes[0], { label: 2, x: 1, y: 1, w: 10, h: 10 });
});

test("boxes of another image paste in one undo step, clipped, and W repeats the last drawn size", () => {
  const s = carStore();
  assert.equal(s.stampBox(50, 40), null); // nothing drawn yet
  const n = s.pasteBoxes([{ label: 1, x: 90, y: 70, w: 40, h: 40, attributes: { colour: "blue", gone: "x" } },
    { label: 99, x: 0, y: 0, w: 5, h: 5 }]);
  assert.equal(n, 1);
  assert.deepEqual(s.serialize().boxes[1], { label: 1, x: 90, y: 70, w: 10, h: 10, attributes: { colour: "blue" } });
  s.undo();
  assert.equal(s.boxes.length, 1);
  s.addBox({ x: 10, y: 10, w: 20, h: 12 });
  s.stampBox(50, 40);
  assert.deepEqual(s.serialize().boxes.at(-1), { label: 1, x: 40, y: 34, w: 20, h: 12 });
});

test("the new keys: flags only with a selection, adjustments with Shift to lower, paste, stamp, reset", () => {
  const key = (k, extra = {}) => ({ key: k, code: `Key${k.toUpperCase()}`, ...extra });
  const ctx = { labels: CAR, hasSelection: true };
  assert.deepEqual(actionFor(key("o"), ctx), { action: "flag", name: "occluded" });
  assert.equal(actionFor(key("d"), { ...ctx, hasSelection: false }), null);
  assert.deepEqual(actionFor(key("B", { shiftKey: true }), ctx), { action: "adjust", name: "brightness", dir: -1 });
  assert.deepEqual(actionFor(key("g"), ctx), { action: "adjust", name: "gamma", dir: 1 });
  assert.deepEqual(actionFor(key("v"), ctx), { action: "copyPrevious" });
  assert.deepEqual(actionFor(key("w"), ctx), { action: "stamp" });
  assert.deepEqual(actionFor(key("x"), ctx), { action: "resetAdjust" });
});
