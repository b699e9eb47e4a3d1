// The annotate page: reads the server's data (json_script), builds the store, the views, the
// saver and the session, and routes every key and button to one action table.

import { Adjustments } from "./adjust.js";
import { Api } from "./api.js";
import { CanvasView } from "./canvas.js";
import { ImageCache } from "./images.js";
import { actionFor, isTyping } from "./keys.js";
import { Panels } from "./panels.js";
import { Saver } from "./saver.js";
import { Session } from "./session.js";
import { Store } from "./store.js";
import { Suggester } from "./suggest.js";

function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

function start() {
  const config = readJson("annotate-config");
  const initial = readJson("annotate-initial");
  const root = document.getElementById("annotate-app");

  const store = new Store(config.labels);
  const api = new Api({ urls: config.urls, order: config.order });
  const view = new CanvasView(root.querySelector("#stage"), store);
  const app = { store, view, timings: [], conflict: null };
  const panels = new Panels(root, store, (action, args) => act(app, action, args));
  const saver = new Saver(store, api, { onConflict: (current) => showConflict(app, current) });
  const session = new Session({ store, api, saver, view, panels, images: new ImageCache() });
  Object.assign(app, { api, panels, saver, session, suggester: new Suggester({ store, api, saver, session }) });
  panels.buildOrder(api.order);
  app.adjust = new Adjustments({ canvas: view.imageCanvas, gammaNode: document.getElementById("gamma-filter"),
    storageKey: `twinlabel:adjust:${config.user}`, onChange: (a) => panels.showAdjust(a) });

  listenKeys(app);
  guardUnsaved(app);
  // A read-only handle for tests and benchmarks; nothing in the page reads it.
  window.twinlabel = { store, view, timings: app.timings, session: app.session, adjust: app.adjust };
  openFirst(app, initial).then(() => root.classList.add("ready"));
}

// The image named in the address (a reload) wins over the one the server chose.
async function openFirst(app, initial) {
  const wanted = Number(new URL(window.location.href).searchParams.get("image")) || null;
  let state = initial;
  if (wanted && initial?.image?.id !== wanted) {
    state = await app.api.getState(wanted).catch(() => initial);
  }
  await app.session.run(() => app.session.start(state));
}

// ---- actions: the keyboard and the buttons both end here ------------------------------------------

function act(app, action, args = {}) {
  const { store, view, session, panels, suggester } = app;
  // While the conflict banner is up, nothing may edit or move on until the person chooses.
  if (app.conflict && !["reloadTheirs", "keepMine", "setOrder"].includes(action)) return;
  const selected = store.selected;
  const actions = {
    submit: () => session.submit(),
    skip: () => session.skip(),
    back: () => session.back(),
    forward: () => session.next(),
    fit: () => view.fit(),
    zoomIn: () => view.zoomStep(1),
    zoomOut: () => view.zoomStep(-1),
    hide: () => store.toggleHidden(),
    undo: () => store.undo(),
    undoDecision: () => suggester.undoLatest(),
    redo: () => store.redo(),
    delete: () => selected !== null && store.deleteBox(selected),
    nudge: () => selected !== null && store.nudge(selected, args.dx, args.dy),
    label: () => { store.setActiveLabel(args.label); if (selected !== null) store.relabel(selected, args.label); },
    tag: () => store.image && store.toggleTag(args.label),
    accept: () => suggester.decide("accept", args.label),
    reject: () => suggester.decide("reject", args.label),
    acceptAll: () => suggester.acceptAll(),
    focusSuggestion: () => store.focusSuggestion(args.label),
    order: () => panels.focusOrder(),
    moreLike: () => store.image && window.open(app.api.urls.similarGrid.replace("{id}", store.image.id), "_blank"),
    setOrder: () => setOrder(app, args.order),
    select: () => store.select(args.cid),
    cycle: () => store.cycleBoxSuggestion(args.step) || store.selectNext(args.step),
    escape: () => (panels.helpOpen ? panels.toggleHelp(false) : store.select(null)),
    help: () => panels.toggleHelp(),
    flag: () => selected !== null && store.toggleFlag(selected, args.name),
    setAttribute: () => selected !== null && store.setAttribute(selected, args.name, args.value),
    copyPrevious: () => session.copyPrevious(),
    stamp: () => stampAtPointer(app),
    adjust: () => app.adjust.step(args.name, args.dir),
    resetAdjust: () => app.adjust.reset(),
    reloadTheirs: () => resolveConflict(app, "theirs"),
    keepMine: () => resolveConflict(app, "mine"),
  };
  actions[action]?.();
}

function listenKeys(app) {
  document.addEventListener("keydown", (e) => {
    if (isTyping(e)) return;
    const found = keyAction(app, e);
    if (!found) return;
    e.preventDefault(); // no page scrolling, no focused-button clicks
    if (found.action === "space") app.view.pointer.setSpace(true);
    else if (!e.repeat || ["nudge", "zoomIn", "zoomOut", "undo", "redo", "adjust"].includes(found.action)) {
      if (found.action === "submit") timeSubmit(app, e.timeStamp);
      else act(app, found.action, found);
    }
  });
  document.addEventListener("keyup", (e) => { if (e.key === " ") app.view.pointer.setSpace(false); });
  window.addEventListener("blur", () => app.view.pointer.setSpace(false));
}

// While the conflict banner or the ? overlay is up, only their own keys act.
function keyAction(app, e) {
  if (app.conflict) {
    const key = e.key.toLowerCase();
    if (key === "r") return { action: "reloadTheirs" };
    if (key === "k") return { action: "keepMine" };
    return null;
  }
  const found = actionFor(e, { labels: app.store.labels, hasSelection: app.store.selected !== null });
  if (app.panels.helpOpen && found && !["help", "escape"].includes(found.action)) return null;
  return found;
}

// The benchmark's figure: from the Enter keydown to the next image drawn and taking input.
async function timeSubmit(app, pressedAt) {
  const from = app.store.image?.id;
  const moved = await app.session.submit();
  if (moved && app.store.image && app.store.image.id !== from) {
    app.timings.push({ image: app.store.image.id, ms: performance.now() - pressedAt });
  }
}

// W: a box of the last drawn size under the pointer (the middle of the view when it is elsewhere).
function stampAtPointer(app) {
  const { view, store } = app;
  if (!store.image) return;
  if (!store.lastSize) {
    store.setStatus(store.status, "Draw a box first: W repeats the size of the last one drawn.");
    return;
  }
  const at = view.pointer.anchor();
  const p = view.viewport.toImage(at.x, at.y);
  store.stampBox(p.x, p.y);
}

// The order applies to the next image; the address keeps it for a reload. With nothing left in
// the old order, the new one may have an image: ask at once.
function setOrder(app, order) {
  app.session.setOrder(order);
  const url = new URL(window.location.href);
  if (order === "sequential") url.searchParams.delete("order"); else url.searchParams.set("order", order);
  window.history.replaceState(null, "", url);
  if (!app.store.image) app.session.next();
}

// ---- conflicts and leaving ------------------------------------------------------------------------

function showConflict(app, current) {
  app.conflict = current;
  app.panels.showConflict(true);
}

function resolveConflict(app, keep) {
  const current = app.conflict;
  if (!current) return;
  app.conflict = null;
  app.panels.showConflict(false);
  if (keep === "theirs") app.store.load(current);
  else app.saver.overwrite(current.image.version);
}

function guardUnsaved(app) {
  window.addEventListener("beforeunload", (e) => {
    if (!app.saver.dirty && !app.saver.inFlight) return;
    e.preventDefault();
    e.returnValue = ""; // the browser shows its own "leave this page?" question
  });
  // Sent only once the page is really going: after a cancelled "leave?" the saver carries on.
  window.addEventListener("pagehide", () => {
    app.saver.saveOnExit();
    app.session.releaseOnExit();
  });
}

start();
