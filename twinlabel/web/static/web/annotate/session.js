import { ConflictError } from "./api.js";

// Moving between images: submit, skip, back and forward through this session's history, and
// the next image from the queue. The next image (its state and its decoded bitmap) is fetched
// while the person works on this one, so that moving on costs one frame.

const PREFETCH_FRESH_MS = 5 * 60 * 1000; // the server's soft lock lasts 10 minutes
const EXCLUDE_MAX = 200;

export class Session {
  constructor({ store, api, saver, images, view, panels }) {
    Object.assign(this, { store, api, saver, images, view, panels });
    this.history = []; // image ids opened in this page, in order
    this.index = -1;
    this.upcoming = null; // {at, promise: Promise<state|null>}
    this.released = new Set(); // images the queue held for us that we let go of (an order change)
    this.settled = Promise.resolve(); // until a dropped prefetch has answered
    this.busy = false;
    this.held = null; // the prefetched image's id, once the server has handed it to us
  }

  // The page is going away (pagehide): the prefetched image nobody will open is let go at once,
  // not after the 10-minute hold. sendBeacon outlives the page; the token travels in the form.
  releaseOnExit() {
    const ids = [...this.released, ...(this.held ? [this.held] : [])];
    if (ids.length) this.api.releaseOnExit(ids);
  }

  async start(state) {
    if (state) await this.open(state, this.history.length);
    else await this.forward();
  }

  // One move at a time: a second Enter while the first is still on its way is ignored.
  async run(move) {
    if (this.busy) return false;
    this.busy = true;
    try {
      await move();
      return true;
    } catch (error) {
      // A stale version on submit or skip is a conflict like a stale save: show the banner.
      if (error instanceof ConflictError) this.saver.failed(error);
      else this.store.setStatus("error", error.message);
      return false;
    } finally {
      this.busy = false;
    }
  }

  submit() {
    return this.run(async () => {
      if (!this.store.image) return;
      await this.saver.flush();
      const state = await this.api.submit(this.store.image.id, this.store.image.version);
      this.store.image.version = state.image.version;
      await this.forward();
    });
  }

  skip() {
    return this.run(async () => {
      if (!this.store.image) return;
      await this.saver.flush();
      await this.api.skip(this.store.image.id, this.store.image.version);
      await this.forward();
    });
  }

  back() {
    return this.run(async () => {
      if (this.index > 0) await this.openFromHistory(this.index - 1);
    });
  }

  next() {
    return this.run(() => this.forward());
  }

  async forward() {
    if (this.index < this.history.length - 1) return this.openFromHistory(this.index + 1);
    if (this.store.image) await this.saver.flush();
    const state = await this.takeUpcoming();
    if (state) return this.open(state, this.history.length);
    this.store.clear();
    this.panels.showDone(true, this.api.order);
  }

  async openFromHistory(index) {
    await this.saver.flush();
    await this.open(await this.api.getState(this.history[index]), index);
  }

  async open(state, index) {
    if (state.image.id === this.held) this.held = null;
    const { bitmap, preview } = await this.images.load(state.image.url);
    this.panels.showDone(false);
    this.view.setImage(bitmap, preview);
    this.store.load(state);
    if (index === this.history.length) this.history.push(state.image.id);
    this.index = index;
    const url = new URL(window.location.href);
    url.searchParams.set("image", state.image.id);
    window.history.replaceState(null, "", url);
    await this.view.nextFrame();
    this.prefetch();
  }

  prefetch() {
    if (this.upcoming && Date.now() - this.upcoming.at < PREFETCH_FRESH_MS) return;
    const release = [...this.released];
    const promise = this.api.next(this.exclude(), release).then(async (state) => {
      release.forEach((id) => this.released.delete(id));
      if (state) this.held = state.image.id; // held for us until opened: released if the page closes
      if (state) await this.images.load(state.image.url);
      return state;
    });
    promise.catch(() => {}); // a failed prefetch is retried when the next image is needed
    this.upcoming = { at: Date.now(), promise };
  }

  // A new queue order applies from the next image on. The image prefetched in the old order is
  // held for us by the server, and the queue hands a person their held images first: the next
  // request releases it, so the new order does not start with it and others may have it.
  setOrder(order) {
    if (order === this.api.order) return;
    this.api.order = order;
    const dropped = this.upcoming;
    this.upcoming = null;
    this.settled = (dropped ? dropped.promise : Promise.resolve(null))
      .then((state) => { if (state) this.released.add(state.image.id); }, () => {})
      .then(() => { if (this.store.image && !this.upcoming) this.prefetch(); });
    return this.settled;
  }

  async takeUpcoming() {
    await this.settled;
    const upcoming = this.upcoming;
    this.upcoming = null;
    if (upcoming && Date.now() - upcoming.at < PREFETCH_FRESH_MS) {
      try {
        const state = await upcoming.promise;
        if (state) return state; // else the queue was empty then: ask again, it may not be now
      } catch {
        // the prefetch failed: ask again
      }
    }
    const release = [...this.released];
    const state = await this.api.next(this.exclude(), release);
    release.forEach((id) => this.released.delete(id));
    return state;
  }

  // V: the boxes of the image opened before this one (for sequences of similar frames), read
  // fresh from the server, added to this image's in one undo step.
  async copyPrevious() {
    if (!this.store.image) return;
    const previousId = this.index > 0 ? this.history[this.index - 1] : null;
    if (previousId === null) {
      this.store.setStatus(this.store.status, "No previous image in this session to copy boxes from.");
      return;
    }
    const imageId = this.store.image.id;
    const state = await this.api.getState(previousId).catch(() => null);
    if (!state || this.store.image?.id !== imageId) return; // failed, or moved on meanwhile
    const n = this.store.pasteBoxes(state.boxes);
    this.store.setStatus(this.store.status, `Copied ${n} box${n === 1 ? "" : "es"} from ${state.image.name}.`);
  }

  // Images this session has seen: the queue would hand back the ones we hold ourselves.
  exclude() {
    const ids = new Set([...this.history].slice(-EXCLUDE_MAX));
    if (this.store.image) ids.add(this.store.image.id);
    return [...ids];
  }
}
