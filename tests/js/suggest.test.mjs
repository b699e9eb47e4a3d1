// The suggestion parts of the annotate page's store and keys, run with `node --test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { actionFor } from "../../twinlabel/web/static/web/annotate/keys.js";
import { Store } from "../../twinlabel/web/static/web/annotate/store.js";

const LABELS = [{ id: 1, name: "cat", color: "#ff0000", hotkey: "1" }, { id: 2, name: "dog", color: "#00ff00", hotkey: "2" },
  { id: 3, name: "bird", color: "#0000ff", hotkey: "3" }];
const IMAGE = { id: 7, width: 100, height: 80, version: 3, status: "in_progress", url: "/x", name: "x" };

function store(suggestions, tags = []) {
  const s = new Store(LABELS);
  s.load({ image: { ...IMAGE }, boxes: [], tags, suggestions });
  return s;
}

const SUGGESTED = [
  { label: 2, probability: 0.87, predicted: true, decision: null },
  { label: 1, probability: 0.62, predicted: true, decision: null },
  { label: 3, probability: 0.08, predicted: false, decision: null },
];

function key(code, { shift = false, alt = false } = {}) {
  const char = code.replace(/^Key/, "").toLowerCase();
  return { code, key: shift ? char.toUpperCase() : char, shiftKey: shift, altKey: alt, ctrlKey: false, metaKey: false };
}

test("A, R and Shift+A decide suggestions; Alt+O picks the queue order; labels keep their keys", () => {
  const ctx = { labels: LABELS, hasSelection: false };
  assert.deepEqual(actionFor(key("KeyA"), ctx), { action: "accept" });
  assert.deepEqual(actionFor(key("KeyR"), ctx), { action: "reject" });
  assert.deepEqual(actionFor(key("KeyA", { shift: true }), ctx), { action: "acceptAll" });
  assert.deepEqual(actionFor(key("KeyO", { alt: true }), ctx), { action: "order" });
  assert.equal(actionFor(key("KeyR", { shift: true }), ctx), null);
  assert.deepEqual(actionFor({ ...key("Digit2"), key: "@", shiftKey: true }, ctx), { action: "tag", label: 2 });
});

test("only predicted, undecided suggestions of untagged labels are pending; the likeliest is ringed", () => {
  const s = store(SUGGESTED, [{ label: 1, source: "human" }]);
  assert.deepEqual(s.pendingSuggestions().map((x) => x.label), [2]);
  assert.equal(s.focusedSuggestion().label, 2);
  assert.deepEqual(s.serialize().tags, [1]); // a suggestion is not a tag
  s.toggleTag(1);
  assert.deepEqual(s.pendingSuggestions().map((x) => x.label), [2, 1]);
  s.focusSuggestion(1);
  assert.equal(s.focusedSuggestion().label, 1);
  s.focusSuggestion(3); // not pending: the ring falls back to the likeliest
  assert.equal(s.focusedSuggestion().label, 2);
});

test("a decision's answer adds the accepted tag everywhere, undo included, and leaves nothing to save", () => {
  const s = store(SUGGESTED);
  s.addBox({ x: 10, y: 10, w: 20, h: 20 });
  const revision = s.revision;
  s.takeDecision({
    image: { ...IMAGE, version: 5 }, boxes: [], tags: [{ label: 2, source: "model" }],
    suggestions: [{ ...SUGGESTED[0], decision: "accepted" }, SUGGESTED[1], SUGGESTED[2]],
  }, new Set());
  assert.equal(s.image.version, 5);
  assert.equal(s.revision, revision); // the server has it already
  assert.equal(s.tagSource(2), "model");
  assert.deepEqual(s.serialize().tags, [2]);
  assert.equal(s.focusedSuggestion().label, 1);
  s.undo(); // the box goes, the accepted tag stays
  assert.deepEqual(s.serialize(), { boxes: [], tags: [2] });
});
