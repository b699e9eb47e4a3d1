// Bucket import on the project page: start an import or a sync of s3://bucket/prefix, poll the job
// until it ends, show its counts and the refused objects; the project's sources, each with "Sync now".

import { getJson, postJson } from "./http.js";

const config = JSON.parse(document.getElementById("bucket-config").textContent);
const form = document.getElementById("bucket-form");
const status = document.getElementById("bucket-status");
const refused = document.getElementById("bucket-refused");
const sources = document.getElementById("bucket-sources");
const POLL_MS = 1000;

function describe(job) {
  const counts = `${job.listed} listed: ${job.imported} imported, ${job.duplicates} duplicates, `
    + `${job.skipped} skipped (taken in before), ${job.ignored} not images, ${job.refused} refused`;
  if (job.status === "failed") return `The import of ${job.url} failed: ${job.error}`;
  return `${job.url} (${job.status}): ${counts}`;
}

function showRefusals(job) {
  refused.replaceChildren(...job.refusals.map((r) => {
    const li = document.createElement("li");
    li.textContent = `${r.key}: ${r.reason}`;
    return li;
  }));
}

async function follow(job) {
  while (job.status === "queued" || job.status === "running") {
    status.textContent = describe(job);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await getJson(job.poll);
  }
  status.textContent = describe(job);
  showRefusals(job);
  await listSources();
}

async function start(body) {
  try {
    await follow(await postJson(config.url, body));
  } catch (error) {
    if (error.status === 409 && error.data?.job) return follow(error.data.job);
    status.textContent = `Not started: ${error.message}`;
  }
}

async function listSources() {
  const { sources: rows } = await getJson(config.url);
  sources.replaceChildren(...rows.map((source) => {
    const li = document.createElement("li");
    const every = source.sync_minutes ? `synced every ${source.sync_minutes} min` : "synced on request";
    const last = source.last_import ? `; last: ${describe(source.last_import)}` : "";
    li.textContent = `${source.url} at ${source.endpoint_url || "AWS S3"}, ${every}${last} `;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Sync now";
    button.setAttribute("aria-label", `Sync ${source.url} now`);
    button.addEventListener("click", () => start({
      url: source.url, endpoint_url: source.endpoint_url, region: source.region, credentials: source.credentials,
    }));
    li.append(button);
    return li;
  }));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const minutes = data.get("sync_minutes");
  start({
    url: data.get("url").trim(),
    endpoint_url: data.get("endpoint_url"),
    credentials: data.get("credentials"),
    sync_minutes: minutes ? Number(minutes) : null,
  });
});

listSources().catch((error) => { status.textContent = `The bucket sources could not be listed: ${error.message}`; });
