// The one HTTP helper of every page script: the CSRF token on every request (Django reads it from
// X-CSRFToken), JSON in and out, and the API's one error shape — {"error": "<what to fix>"}, plus
// "fields" for a form's errors and "current" on a 409 (twinlabel/web/api/errors.py) — turned into an
// HttpError whose message is the server's sentence.

export class HttpError extends Error {
  constructor(message, status, data = null) {
    super(message);
    this.status = status; // 0: no answer (no connection)
    this.data = data; // the answer's JSON, when it had one: {error, fields?, current?}
  }
}

// The token the base template puts in <meta name="csrf-token">; read when sent, not at import.
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

// A FormData body goes as multipart (the browser sets its boundary); anything else as JSON.
export function send(url, { method = "GET", body, keepalive = false, accept = "application/json" } = {}) {
  const form = body instanceof FormData;
  const headers = { "X-CSRFToken": csrfToken(), Accept: accept };
  if (!form && body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(url, {
    method, keepalive, credentials: "same-origin", headers,
    body: form || body === undefined ? body : JSON.stringify(body),
  });
}

export function errorMessage(response, data) {
  return data?.error || `the server answered ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
}

// The answer's JSON ({} for a 2xx without a body); an HttpError with the server's sentence otherwise.
export async function readJson(response) {
  const data = await response.json().catch(() => null);
  if (response.ok) return data ?? {};
  throw new HttpError(errorMessage(response, data), response.status, data);
}

export async function requestJson(url, options) {
  return readJson(await send(url, options));
}

export const getJson = (url) => requestJson(url);
export const postJson = (url, body = {}) => requestJson(url, { method: "POST", body });
