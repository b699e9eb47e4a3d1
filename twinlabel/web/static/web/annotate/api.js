// The JSON client for docs/annotate-api.md, on ../http.js (the CSRF token, the error shape); network
// failures (and 502/503/504 from a restarting server) are retried with backoff, because an
// annotator's edits must survive a flaky connection. A stale version comes back as a
// ConflictError holding the server's current state.

import { HttpError, csrfToken, errorMessage, send } from "../http.js";

const RETRY_DELAYS_MS = [250, 750, 2000];
const RETRYABLE_STATUS = new Set([502, 503, 504]);

export class ConflictError extends Error {
  constructor(message, current) {
    super(message);
    this.current = current;
  }
}

export class ApiError extends HttpError {}

export class NetworkError extends Error {}

export class Api {
  constructor({ urls, order = "sequential" }) {
    this.urls = urls;
    this.order = order;
  }

  getState(imageId) {
    return this.request("GET", this.url("annotations", imageId));
  }

  putState(imageId, version, { boxes, tags }) {
    return this.request("PUT", this.url("annotations", imageId), { version, boxes, tags });
  }

  submit(imageId, version) {
    return this.request("POST", this.url("submit", imageId), { version });
  }

  skip(imageId, version) {
    return this.request("POST", this.url("skip", imageId), { version });
  }

  // decision: "accept" or "reject"; the answer is the image's new state (a new version).
  decide(imageId, labelId, decision) {
    const url = this.url("suggestion", imageId).replace("{label}", encodeURIComponent(labelId))
      .replace("{decision}", decision);
    return this.request("POST", url, {});
  }

  acceptAll(imageId) {
    return this.request("POST", this.url("acceptAll", imageId), {});
  }

  // A suggested box: decision "accept" (with ``geometry`` {x, y, w, h} when the person changed it),
  // "reject" or "undo"; the answer is the image's new state.
  decideBox(imageId, suggestionId, decision, geometry = null) {
    const url = this.url("boxSuggestion", imageId).replace("{suggestion}", encodeURIComponent(suggestionId))
      .replace("{decision}", decision);
    return this.request("POST", url, geometry || {});
  }

  acceptAllBoxes(imageId) {
    return this.request("POST", this.url("boxAcceptAll", imageId), {});
  }

  // release: images the queue holds for us that we let go of (so others may have them now).
  async next(exclude, release = []) {
    const answer = await this.request("POST", this.urls.next, { order: this.order, exclude, release });
    return answer.image;
  }

  // A last-chance save when the page is going away: keepalive lets it outlive the page, and
  // nobody is left to read the answer.
  putOnExit(imageId, version, state) {
    send(this.url("annotations", imageId), { method: "PUT", keepalive: true, body: { version, ...state } })
      .catch(() => {});
  }

  // navigator.sendBeacon cannot set headers: the CSRF token goes in the form, as Django reads it.
  releaseOnExit(imageIds) {
    const form = new FormData();
    form.append("csrfmiddlewaretoken", csrfToken());
    form.append("images", imageIds.join(","));
    return navigator.sendBeacon(this.urls.release, form);
  }

  url(name, imageId) {
    return this.urls[name].replace("{id}", encodeURIComponent(imageId));
  }

  async request(method, url, body) {
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await send(url, { method, body });
      } catch (error) {
        if (attempt >= RETRY_DELAYS_MS.length) throw new NetworkError(`no connection to the server (${error.message})`);
        await sleep(RETRY_DELAYS_MS[attempt]);
        continue;
      }
      if (RETRYABLE_STATUS.has(response.status) && attempt < RETRY_DELAYS_MS.length) {
        await sleep(RETRY_DELAYS_MS[attempt]);
        continue;
      }
      return this.answer(response);
    }
  }

  async answer(response) {
    const data = await response.json().catch(() => null);
    if (response.ok && data !== null) return data;
    const message = errorMessage(response, data);
    if (response.status === 409) throw new ConflictError(message, data?.current);
    if (RETRYABLE_STATUS.has(response.status)) throw new NetworkError(message);
    throw new ApiError(message, response.status, data);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
