// Accepting and rejecting the model's suggested tags. A decision is a write to the image like a
// save: pending edits are saved first, autosave waits while the decision is on its way (it bumps
// the image's version), and the answer (the new version, the accepted tags, the decisions) is
// taken into the store without touching local edits. Deciding is not an undo step.

export class Suggester {
  constructor({ store, api, saver, session }) {
    Object.assign(this, { store, api, saver, session });
  }

  // label: the suggestion whose button was clicked; none for the keys, which act on the ringed one.
  decide(decision, label) {
    const target = label ?? this.store.focusedSuggestion()?.label;
    if (target == null) return Promise.resolve(false);
    return this.write((image) => this.api.decide(image.id, target, decision));
  }

  acceptAll() {
    if (!this.store.pendingSuggestions().length) return Promise.resolve(false);
    return this.write((image) => this.api.acceptAll(image.id));
  }

  // One move or decision at a time (session.run): a decision never races a submit.
  write(call) {
    return this.session.run(async () => {
      const image = this.store.image;
      if (!image) return;
      await this.saver.exclusive(async (tagsBefore) => {
        const state = await call(image);
        if (this.store.image === image) this.store.takeDecision(state, tagsBefore);
      });
    });
  }
}
