// Accepting and rejecting the model's suggested tags. A decision is a write to the image like a
// save: pending edits are saved first, autosave waits while the decision is on its way (it bumps
// the image's version), and the answer (the new version, the accepted tags, the decisions) is
// taken into the store without touching local edits.
//
// Suggested boxes work the same way: A / R act on the ringed box (Tab walks them) while one is
// ringed, else on the ringed tag; the accepted box comes back from the server (source "model").
// A drag of the ringed box's handle or outline accepts it at the new geometry (the store's
// "boxAdjust"): the server keeps that box as "model_adjusted" and the decision as "adjusted".
//
// U takes the latest decision on this image back (Ctrl+Z stays for edits, so undoing edits never
// drops an accepted tag). The server drops the decision (it no longer counts towards the
// suggestions' precision) and the tag an accept added; edits made since stay.

export class Suggester {
  constructor({ store, api, saver, session }) {
    Object.assign(this, { store, api, saver, session });
    this.decided = []; // [{image, labels}], newest last: what U takes back
    store.addEventListener("image", () => { this.decided = []; });
    store.addEventListener("boxAdjust", (e) => this.adjustBox(e.detail.id, e.detail.rect));
  }

  // Nothing else may move on meanwhile (session.run); a refused accept puts the suggestion back.
  async adjustBox(id, rect) {
    const image = this.store.image;
    const done = await this.decideBox("accept", id, rect).catch(() => false);
    if (done !== false || this.store.image !== image) return;
    this.store.dropBoxDraft();
    if (this.decided.at(-1)?.boxes?.[0] === id) this.decided.pop(); // nothing for U to take back
  }

  // label: the suggestion whose button was clicked; none for the keys, which act on the ringed one
  // (a ringed suggested box first).
  decide(decision, label) {
    const box = label == null ? this.store.focusedBoxSuggestion() : null;
    if (box) return this.decideBox(decision, box.id);
    const target = label ?? this.store.focusedSuggestion()?.label;
    if (target == null) return Promise.resolve(false);
    this.remember([target]);
    return this.write((image) => this.api.decide(image.id, target, decision));
  }

  decideBox(decision, id, geometry = null) {
    this.decided.push({ image: this.store.image?.id, boxes: [id] });
    return this.writeBoxes((image) => this.api.decideBox(image.id, id, decision, geometry));
  }

  // The confident suggested tags, then the confident suggested boxes.
  async acceptAll() {
    const pending = this.store.pendingSuggestions().map((s) => s.label);
    const boxes = this.store.shownBoxSuggestions().filter((s) => s.predicted).map((s) => s.id);
    if (!pending.length && !boxes.length) return false;
    if (pending.length) {
      this.remember(pending);
      await this.write((image) => this.api.acceptAll(image.id));
    }
    if (boxes.length) {
      this.decided.push({ image: this.store.image?.id, boxes });
      await this.writeBoxes((image) => this.api.acceptAllBoxes(image.id));
    }
    return true;
  }

  remember(labels) {
    this.decided.push({ image: this.store.image?.id, labels });
  }

  undoLatest() {
    const last = this.decided.at(-1);
    if (!last || last.image !== this.store.image?.id) {
      this.store.setStatus(this.store.status, "No accept or reject of a suggestion on this image to take back.");
      return false;
    }
    this.decided.pop();
    if (last.boxes) {
      this.writeBoxes(async (image) => {
        let state = null;
        for (const id of last.boxes) state = await this.api.decideBox(image.id, id, "undo");
        return state;
      });
      return true;
    }
    this.write(async (image) => {
      let state = null;
      for (const label of last.labels) state = await this.api.decide(image.id, label, "undo");
      return state;
    }, last.labels);
    return true;
  }

  // As write, for a decision on suggested boxes: what the server holds when the call is made is the
  // page's boxes (exclusive saves them first), so its answer shows which boxes the decision added.
  writeBoxes(call) {
    return this.session.run(async () => {
      const image = this.store.image;
      if (!image) return;
      await this.saver.exclusive(async () => {
        const before = this.store.boxes;
        const state = await call(image);
        if (this.store.image === image) this.store.takeBoxDecision(state, before);
      });
    });
  }

  // One move or decision at a time (session.run): a decision never races a submit.
  // ``undone``: labels whose decision is being taken back (their model tags go).
  write(call, undone = []) {
    return this.session.run(async () => {
      const image = this.store.image;
      if (!image) return;
      await this.saver.exclusive(async (tagsBefore) => {
        const state = await call(image);
        if (this.store.image === image) this.store.takeDecision(state, tagsBefore, undone);
      });
    });
  }
}
