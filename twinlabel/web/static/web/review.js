// The review page: accept, or reject with a comment, or skip, then go on to the next submission.
// Keys: A accepts; S skips; R focuses the comment; Ctrl+Enter in the comment rejects.
// A reviewer may fix boxes before accepting (select with a click or the Tab key, arrows move, Alt+arrows
// resize, a label's key relabels, Del deletes): the accept then carries the fixed boxes, saved with
// the verdict in one write and recorded as a reviewer edit.

import { requestJson } from "./http.js";

const config = JSON.parse(document.getElementById("review-config").textContent);
const message = document.getElementById("review-message");
const comment = document.getElementById("review-comment");
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
const labels = new Map((config.labels || []).map((l) => [l.id, l]));
let boxes = (config.boxes || []).map((b) => ({ ...b }));
let selected = null;
let edited = false;
let busy = false;

async function post(body) {
  try {
    await requestJson(config.url, { method: "POST", body });
    return true;
  } catch (error) {
    message.textContent = error.message;
    return false;
  }
}

async function decide(decision) {
  if (busy || !config.image) return;
  if (decision === "reject" && !comment.value.trim()) {
    message.textContent = "Write what to fix before rejecting.";
    comment.focus();
    return;
  }
  busy = true;
  message.textContent = "";
  const body = { decision, version: config.version, comment: comment.value };
  if (decision === "accept" && edited) body.boxes = boxes;
  let next = config.next;
  if (decision === "skip") next += `${next.includes("?") ? "&" : "?"}skipped=${[...config.skipped, config.image].slice(-200).join(",")}`;
  try {
    if (await post(body)) {
      window.location.assign(next);
      return;
    }
  } catch (error) {
    message.textContent = `Could not reach the server (${error.message}); try again.`;
  }
  busy = false;
}

// ---- fixing boxes ----------------------------------------------------------------------------------

function select(index) {
  selected = index === null || !boxes.length ? null : (index + boxes.length) % boxes.length;
  draw();
}

function change(update) {
  if (selected === null) return;
  const [width, height] = config.size;
  const b = boxes[selected];
  const next = { ...b, ...update(b) };
  next.w = Math.max(1, Math.min(next.w, width - next.x));
  next.h = Math.max(1, Math.min(next.h, height - next.y));
  next.x = Math.max(0, Math.min(next.x, width - next.w));
  next.y = Math.max(0, Math.min(next.y, height - next.h));
  boxes[selected] = next;
  edited = true;
  draw();
}

function remove() {
  if (selected === null) return;
  boxes.splice(selected, 1);
  edited = true;
  selected = boxes.length ? Math.min(selected, boxes.length - 1) : null;
  draw();
}

// The figure's boxes and the list are redrawn from ``boxes`` once the reviewer has touched them.
function draw() {
  const [width, height] = config.size;
  const figure = document.querySelector(".review-figure");
  figure.querySelectorAll(".review-box").forEach((el) => el.remove());
  const list = document.getElementById("review-boxes");
  const hadFocus = list.contains(document.activeElement);
  list.replaceChildren();
  boxes.forEach((b, i) => {
    const label = labels.get(b.label) || { name: "?", color: "#999" };
    const div = document.createElement("div");
    div.className = `review-box${i === selected ? " selected" : ""}`;
    Object.assign(div.style, { left: `${100 * b.x / width}%`, top: `${100 * b.y / height}%`, width: `${100 * b.w / width}%`,
      height: `${100 * b.h / height}%`, borderColor: label.color });
    const name = Object.assign(document.createElement("span"), { textContent: label.name });
    name.style.background = label.color;
    div.append(name);
    figure.append(div);
    const button = Object.assign(document.createElement("button"), { type: "button", className: "link" });
    button.dataset.box = String(i);
    button.classList.toggle("selected", i === selected);
    const swatch = Object.assign(document.createElement("span"), { className: "swatch" });
    swatch.style.background = label.color;
    const where = Object.assign(document.createElement("span"), { className: "muted",
      textContent: `${Math.round(b.w)}×${Math.round(b.h)} at ${Math.round(b.x)},${Math.round(b.y)}` });
    button.append(swatch, label.name, " ", where);
    const li = document.createElement("li");
    li.append(button);
    list.append(li);
  });
  // The list was rebuilt: the keyboard stays on the selected box.
  if (hadFocus && selected !== null) list.querySelector(`[data-box="${selected}"]`)?.focus();
  document.getElementById("review-box-count").textContent = String(boxes.length);
  document.getElementById("review-edited").hidden = !edited;
}

// ---- input -----------------------------------------------------------------------------------------

document.addEventListener("click", (e) => {
  const target = e.target.closest("[data-action], [data-box]");
  if (!target) return;
  if (target.dataset.box !== undefined) select(Number(target.dataset.box));
  const action = target.dataset.action;
  if (action === "accept" || action === "reject" || action === "skip") decide(action);
});

// Tab moves the focus through the page as usual; a box's button taking the focus selects the box.
document.addEventListener("focusin", (e) => {
  const button = e.target.closest?.("[data-box]");
  if (button && Number(button.dataset.box) !== selected) select(Number(button.dataset.box));
});

function boxKey(e) {
  if (selected === null) return false;
  if (e.key in ARROWS) {
    const [dx, dy] = ARROWS[e.key].map((v) => v * (e.shiftKey ? 10 : 1));
    change((b) => (e.altKey ? { w: b.w + dx, h: b.h + dy } : { x: b.x + dx, y: b.y + dy }));
    return true;
  }
  if (e.key === "Delete" || e.key === "Backspace") { remove(); return true; }
  if (e.key === "Escape") { select(null); return true; }
  const label = [...labels.values()].find((l) => l.hotkey && l.hotkey === e.key.toLowerCase());
  if (label) { change(() => ({ label: label.id })); return true; }
  return false;
}

document.addEventListener("keydown", (e) => {
  if (e.target === comment) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); decide("reject"); }
    if (e.key === "Escape") comment.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || !config.image) return;
  if (boxKey(e)) { e.preventDefault(); return; }
  if (e.altKey) return;
  const key = e.key.toLowerCase();
  if (key === "a") { e.preventDefault(); decide("accept"); }
  if (key === "s") { e.preventDefault(); decide("skip"); }
  if (key === "r") { e.preventDefault(); comment.focus(); }
});
