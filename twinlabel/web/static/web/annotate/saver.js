// Autosave: every committed edit is sent (the full state, with the version it was based on)
// about half a second after the last one. One save is in flight at a time; edits made
// meanwhile are sent right after it. A network failure is retried with growing delays for as
// long as it takes, so that no edit is lost; a stale version (409) stops saving and hands the
// server's state to onConflict, because overwriting it would lose someone else's work.

import { ConflictError, NetworkError } from "./api.js";

const DEBOUNCE_MS = 500;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];

export class Saver {
  constructor(store, api, { onConflict }) {
    this.store = store;
    this.api = api;
    this.onConflict = onConflict;
    this.timer = 0;
    this.inFlight = null;
    this.savedRevision = 0;
    this.failures = 0;
    this.paused = false; // during a conflict, until the person chooses
    this.held = false; // while another write to this image (accept / reject) is on its way
    store.addEventListener("edit", () => this.schedule(DEBOUNCE_MS));
    store.addEventListener("image", () => this.reset());
  }

  reset() {
    clearTimeout(this.timer);
    this.savedRevision = this.store.revision;
    this.failures = 0;
    this.paused = false;
  }

  get dirty() {
    return this.store.image !== null && this.savedRevision !== this.store.revision;
  }

  schedule(delay) {
    if (this.paused) return;
    clearTimeout(this.timer);
    if (!this.inFlight && this.store.status !== "error") this.store.setStatus("dirty");
    this.timer = setTimeout(() => this.save().catch(() => {}), delay);
  }

  // Save now if anything is unsaved; resolves once the server has everything, rejects if not.
  async flush() {
    clearTimeout(this.timer);
    while (this.inFlight || this.dirty) {
      if (this.held) throw new Error("Another change to this image is still on its way; try again.");
      if (this.paused) throw new Error("This image changed elsewhere; choose which version to keep first.");
      await (this.inFlight || this.save());
    }
  }

  save() {
    if (this.inFlight) return this.inFlight;
    if (!this.dirty || this.paused || this.held) return Promise.resolve();
    this.inFlight = this.send().finally(() => { this.inFlight = null; });
    return this.inFlight;
  }

  // Runs write(tagsOnServer) once everything is saved, with autosave held back until it is done:
  // the write bumps the image's version, so a PUT sent meanwhile would come back as a conflict.
  // Edits made meanwhile are saved right after, on the new version.
  async exclusive(write) {
    await this.flush();
    this.held = true;
    try {
      return await write(new Set(this.store.tags));
    } finally {
      this.held = false;
      if (this.dirty) this.schedule(0);
    }
  }

  async send() {
    const { store } = this;
    const revision = store.revision;
    const image = store.image;
    store.setStatus("saving");
    try {
      const state = await this.api.putState(image.id, image.version, store.serialize());
      if (store.image !== image) return; // a different image is open by now
      image.version = state.image.version;
      image.status = state.image.status;
      store.setTagSources(state.tags);
      this.savedRevision = revision;
      this.failures = 0;
      if (this.dirty) this.schedule(0); else store.setStatus("saved");
    } catch (error) {
      if (store.image === image) this.failed(error);
      throw error;
    }
  }

  failed(error) {
    if (error instanceof ConflictError) {
      this.paused = true;
      this.store.setStatus("conflict", error.message);
      this.onConflict(error.current);
    } else if (error instanceof NetworkError || error.status >= 500) {
      const delay = RETRY_MS[Math.min(this.failures++, RETRY_MS.length - 1)];
      this.store.setStatus("error", `Not saved: ${error.message.replace(/\.$/, "")}. Retrying in ${Math.round(delay / 1000)} s.`);
      this.schedule(delay);
    } else {
      this.store.setStatus("error", `Not saved: ${error.message}`);
    }
  }

  // The person chose to keep their own edits: base the next save on the server's version.
  overwrite(version) {
    this.paused = false;
    this.store.image.version = version;
    this.savedRevision = -1; // force a save even if nothing changed since
    this.schedule(0);
  }

  // Last chance when the page goes away with unsaved edits.
  saveOnExit() {
    if (this.dirty && !this.paused) this.api.putOnExit(this.store.image.id, this.store.image.version, this.store.serialize());
  }
}
