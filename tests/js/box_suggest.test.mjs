// The box-suggestion parts of the annotate page's store, run with `node --test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Store } from "../../twinlabel/web/static/web/annotate/store.js";

const LABELS = [{ id: 1, name: "cat", color: "#ff0000", hotkey: "1" }, { id: 2, name: "dog", color: "#00ff00", hotkey: "2" }];
const IMAGE = { id: 7, width: 100, height: 80, version: 3, status: "in_progress", url: "/x", name: "x" };
const SUGGESTED = [
  { id: 11, label: 1, x: 10, y: 10, w: 20, h: 20, score: 0.9, predicted: true, decision: null },
  { id: 12, label: 2, x: 50, y: 30, w: 10, h: 10, score: 0.6, predicted: false, decision: null },
  { id: 13, label: 2, x: 70, y: 5, w: 10, h: 10, score: 0.1, predicted: false, decision: null },
  { id: 14, label: 1, x: 0, y: 0, w: 5, h: 5, score: 0.95, predicted: true, decision: "rejected" },
];

function store(boxes = []) {
  const s = new Store(LABELS);
  s.load({ image: { ...IMAGE }, boxes, tags: [], suggestions: [], box_suggestions: SUGGESTED });
  return s;
}

test("undecided confident ones and ranked ones from 0.3 are shown; Tab walks them and wraps", () => {
  const s = store();
  assert.deepEqual(s.shownBoxSuggestions().map((b) => b.id), [11, 12]);
  assert.equal(s.focusedBoxSuggestion(), null); // nothing ringed until Tab or a click
  assert.equal(s.cycleBoxSuggestion(1), true);
  assert.equal(s.focusedBoxSuggestion().id, 11);
  s.cycleBoxSuggestion(1);
  assert.equal(s.focusedBoxSuggestion().id, 12);
  s.cycleBoxSuggestion(1);
  assert.equal(s.focusedBoxSuggestion().id, 11);
  s.cycleBoxSuggestion(-1);
  assert.equal(s.focusedBoxSuggestion().id, 12);
  assert.deepEqual(s.serialize().boxes, []); // a suggestion is not a box
});

test("a box the server did not find worth judging is not shown unless confident", () => {
  const s = new Store(LABELS);
  const notWorth = [{ ...SUGGESTED[0], shown: false }, { ...SUGGESTED[1], shown: false }, { ...SUGGESTED[1], id: 15, shown: true }];
  s.load({ image: { ...IMAGE }, boxes: [], tags: [], suggestions: [], box_suggestions: notWorth });
  assert.deepEqual(s.shownBoxSuggestions().map((b) => b.id), [11, 15]);
});

test("with none shown, Tab is not taken", () => {
  const s = new Store(LABELS);
  s.load({ image: { ...IMAGE }, boxes: [], tags: [], suggestions: [], box_suggestions: [SUGGESTED[2]] });
  assert.equal(s.cycleBoxSuggestion(1), false);
});

test("an accept's answer adds the box everywhere, undo included, moves the ring on, and leaves nothing to save", () => {
  const s = store([{ label: 2, x: 1, y: 1, w: 3, h: 3, source: "human" }]);
  s.cycleBoxSuggestion(1);
  const before = s.boxes;
  s.addBox({ x: 60, y: 60, w: 10, h: 10 }); // drawn while the accept was on its way
  const revision = s.revision;
  s.takeBoxDecision({
    image: { ...IMAGE, version: 5 },
    boxes: [{ label: 2, x: 1, y: 1, w: 3, h: 3, source: "human" }, { label: 1, x: 10, y: 10, w: 20, h: 20, source: "model" }],
    tags: [],
    box_suggestions: [{ ...SUGGESTED[0], decision: "accepted" }, ...SUGGESTED.slice(1)],
  }, before);
  assert.equal(s.image.version, 5);
  assert.deepEqual(s.boxes.map((b) => [b.label, b.x, b.source]), [[2, 1, "human"], [1, 60, "human"], [1, 10, "model"]]);
  assert.equal(s.revision, revision);
  assert.equal(s.focusedBoxSuggestion().id, 12);
  s.undo(); // the drawn box goes; the accepted one stays
  assert.deepEqual(s.boxes.map((b) => [b.label, b.x]), [[2, 1], [1, 10]]);
});

test("an undone accept's answer takes the box away", () => {
  const s = store([{ label: 1, x: 10, y: 10, w: 20, h: 20, source: "model" }]);
  const before = s.boxes;
  s.takeBoxDecision({ image: { ...IMAGE, version: 6 }, boxes: [], tags: [], box_suggestions: SUGGESTED }, before);
  assert.deepEqual(s.boxes, []);
});

test("a drag of a suggested box is a preview, never a box; its end asks for an adjusted accept", () => {
  const s = store();
  s.cycleBoxSuggestion(1);
  const asked = [];
  s.addEventListener("boxAdjust", (e) => asked.push(e.detail));
  s.previewBoxSuggestion(11, { x: 12, y: 10, w: 30, h: 20 });
  assert.deepEqual(s.shownRect(s.focusedBoxSuggestion()), { x: 12, y: 10, w: 30, h: 20 });
  assert.deepEqual(s.serialize().boxes, []);
  assert.equal(s.revision, 0); // nothing to save: the accept is the server's write
  assert.equal(s.endBoxSuggestionDrag(), true);
  assert.deepEqual(asked, [{ id: 11, rect: { x: 12, y: 10, w: 30, h: 20 } }]);
  // The answer: the box is added, the draft goes, the suggestion is drawn no more.
  s.takeBoxDecision({
    image: { ...IMAGE, version: 4 },
    boxes: [{ label: 1, x: 12, y: 10, w: 30, h: 20, source: "model_adjusted" }],
    tags: [],
    box_suggestions: [{ ...SUGGESTED[0], decision: "adjusted" }, ...SUGGESTED.slice(1)],
  }, []);
  assert.equal(s.boxDraft, null);
  assert.deepEqual(s.boxes.map((b) => [b.x, b.w, b.source]), [[12, 30, "model_adjusted"]]);
  assert.deepEqual(s.shownBoxSuggestions().map((b) => b.id), [12]);
});

test("a drag that ends where it started, or too small, asks for nothing and is drawn as suggested", () => {
  const s = store();
  const asked = [];
  s.addEventListener("boxAdjust", (e) => asked.push(e.detail));
  s.previewBoxSuggestion(11, { x: 10, y: 10, w: 20, h: 20 });
  assert.equal(s.endBoxSuggestionDrag(), false);
  s.previewBoxSuggestion(11, { x: 10, y: 10, w: 2, h: 20 });
  assert.equal(s.endBoxSuggestionDrag(), false);
  assert.deepEqual(asked, []);
  assert.equal(s.boxDraft, null);
  assert.deepEqual(s.shownRect(SUGGESTED[0]), SUGGESTED[0]);
});
