// Every shortcut in one table: the keyboard handler reads it to act, the ? overlay to list it.
// Label hotkeys come from the project: the plain key picks the box class (and relabels the
// selected box), Shift+key toggles the label as an image tag. They can never be one of the keys
// below (annotator/services.py RESERVED_HOTKEYS); in a project made before a key was reserved, the
// label's hotkey wins.

export const SHORTCUTS = [
  { keys: ["Enter"], what: "Submit this image and open the next", action: "submit" },
  { keys: ["S"], what: "Skip this image", action: "skip" },
  { keys: ["A"], what: "Accept the ringed suggested tag: it becomes a tag marked “model” "
      + "(U takes it back; Ctrl+Z does not); with a suggested box ringed, that box becomes a box marked “model”",
    action: "accept" },
  { keys: ["R"], what: "Reject the ringed suggested tag: the label is recorded as absent; with a suggested box "
      + "ringed, that box is recorded as wrong", action: "reject" },
  { keys: ["⇧A"], what: "Accept every confident suggested tag and box of this image", action: "acceptAll" },
  { keys: ["click dashed box"], what: "Ring that suggested box, for A and R" },
  { keys: ["drag ringed box"], what: "Drag a handle or the outline of the ringed suggested box (Alt+drag: any "
      + "suggested box) to accept it adjusted: a box marked “model, adjusted” (U takes it back)" },
  { keys: ["click suggestion"], what: "Ring that suggested tag, for A and R (else the likeliest is ringed)" },
  { keys: ["M"], what: "More like this: the images most like this one, in a new tab", action: "moreLike" },
  { keys: ["Alt+O"], what: "Choose the queue order: which image comes next", action: "order" },
  { keys: ["←", "→"], what: "Previous / next image of this session (when no box is selected)" },
  { keys: ["F"], what: "Fit the image to the screen", action: "fit" },
  { keys: ["+", "−"], what: "Zoom in / out about the pointer (the wheel too)" },
  { keys: ["Space+drag"], what: "Pan (a middle-button drag too)" },
  { keys: ["drag"], what: "Draw a box with the active class, also inside another box" },
  { keys: ["click"], what: "Select the smallest box under the pointer" },
  { keys: ["drag outline", "Alt+drag"], what: "Move the selected box; Alt+drag moves any box" },
  { keys: ["drag handle"], what: "Resize the selected box by one of its 8 handles" },
  { keys: ["↑↓←→", "Shift+↑↓←→"], what: "Nudge the selected box by 1 px / 10 px" },
  { keys: ["Tab", "Shift+Tab"], what: "Ring the next / previous suggested box; with none shown, select the "
      + "next / previous box of the list" },
  { keys: ["Del", "Backspace"], what: "Delete the selected box", action: "delete" },
  { keys: ["O", "T", "D"], what: "Mark the selected box occluded / truncated / difficult (again: unmark)" },
  { keys: ["V"], what: "Copy the boxes of the previous image of this session into this one (one undo step)",
    action: "copyPrevious" },
  { keys: ["W", "Shift+click"], what: "A box of the last drawn size, centred on the pointer", action: "stamp" },
  { keys: ["B", "⇧B"], what: "Brighter / darker (the shown image only; remembered)" },
  { keys: ["C", "⇧C"], what: "More / less contrast" },
  { keys: ["G", "⇧G"], what: "Gamma up (lighter mid-tones) / down" },
  { keys: ["X"], what: "Reset brightness, contrast and gamma", action: "resetAdjust" },
  { keys: ["Esc"], what: "Clear the selection, close this overlay", action: "escape" },
  { keys: ["H"], what: "Hide / show the boxes", action: "hide" },
  { keys: ["Ctrl+Z"], what: "Undo an edit", action: "undo" },
  { keys: ["U"], what: "Take back the latest accept / reject of a suggestion on this image", action: "undoDecision" },
  { keys: ["Ctrl+Shift+Z", "Ctrl+Y"], what: "Redo", action: "redo" },
  { keys: ["?"], what: "Show / hide this list", action: "help" },
];

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

// The character a key stands for regardless of Shift: Shift+1 is "!" in e.key, "Digit1" in e.code.
function baseChar(e) {
  const m = /^(?:Key|Digit|Numpad)([A-Z0-9])$/.exec(e.code);
  return m ? m[1].toLowerCase() : e.key.toLowerCase();
}

// Translate a keydown into {action, ...}, or null when the key means nothing here.
export function actionFor(e, { labels, hasSelection }) {
  const ctrl = e.ctrlKey || e.metaKey;
  const char = baseChar(e);
  if (ctrl) {
    if (char === "z") return { action: e.shiftKey ? "redo" : "undo" };
    if (char === "y") return { action: "redo" };
    return null;
  }
  if (e.altKey) return char === "o" && !e.shiftKey ? { action: "order" } : null;
  if (e.key in ARROWS) return arrowAction(e, hasSelection);
  if (e.key === "Tab") return { action: "cycle", step: e.shiftKey ? -1 : 1 };
  const named = { Enter: "submit", Delete: "delete", Backspace: "delete", Escape: "escape", "?": "help",
    "+": "zoomIn", "=": "zoomIn", "-": "zoomOut", " ": "space" }[e.key];
  if (named) return { action: named };
  const label = labels.find((l) => l.hotkey && l.hotkey.toLowerCase() === char);
  if (label) return { action: e.shiftKey ? "tag" : "label", label: label.id };
  if (char in ADJUST) return { action: "adjust", name: ADJUST[char], dir: e.shiftKey ? -1 : 1 };
  if (e.shiftKey) return char === "a" ? { action: "acceptAll" } : null;
  if (char in FLAG_KEYS) return hasSelection ? { action: "flag", name: FLAG_KEYS[char] } : null;
  return { a: { action: "accept" }, r: { action: "reject" }, f: { action: "fit" }, h: { action: "hide" },
    m: { action: "moreLike" }, s: { action: "skip" }, u: { action: "undoDecision" }, v: { action: "copyPrevious" }, w: { action: "stamp" }, x: { action: "resetAdjust" } }[char]
    || null;
}

const FLAG_KEYS = { o: "occluded", t: "truncated", d: "difficult" };
const ADJUST = { b: "brightness", c: "contrast", g: "gamma" };

function arrowAction(e, hasSelection) {
  const [dx, dy] = ARROWS[e.key];
  if (hasSelection) {
    const step = e.shiftKey ? 10 : 1;
    return { action: "nudge", dx: dx * step, dy: dy * step };
  }
  if (e.key === "ArrowLeft") return { action: "back" };
  if (e.key === "ArrowRight") return { action: "forward" };
  return null;
}

// Keys typed into a form field belong to the field.
export function isTyping(e) {
  const t = e.target;
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}

// How a label's keys are written on its buttons.
export function classKey(label) {
  return label.hotkey ? label.hotkey.toUpperCase() : "";
}

export function tagKey(label) {
  return label.hotkey ? `⇧${label.hotkey.toUpperCase()}` : "";
}
