// Browser upload: drag and drop or the file picker, sent in batches to the import service.
// Each batch reports imported / duplicate / rejected files; new thumbnails join the grid.

import { HttpError, errorMessage, send } from "./http.js";

const config = JSON.parse(document.getElementById("upload-config").textContent);
const zone = document.getElementById("dropzone");
const input = document.getElementById("file-input");
const progress = document.getElementById("upload-progress");
const summary = document.getElementById("upload-summary");
const rejectedList = document.getElementById("upload-rejected");
const grid = document.getElementById("recent-grid");

const totals = { imported: 0, duplicates: 0, rejected: 0, sameName: 0 };

async function uploadBatch(files) {
  const body = new FormData();
  for (const file of files) body.append("files", file, file.name);
  const response = await send(config.url, { method: "POST", body });
  // A batch of only rejected files answers 400 with its report (no "error"): shown, not thrown.
  const report = await response.json().catch(() => null);
  if (report === null || report.error) throw new HttpError(errorMessage(response, report), response.status, report);
  return report;
}

function showThumb(item) {
  document.getElementById("no-images")?.remove();
  const figure = document.createElement("figure");
  figure.className = "thumb";
  figure.dataset.imageId = item.id;
  const img = document.createElement("img");
  img.src = config.thumbUrl.replace("{id}", item.id);
  img.alt = item.name;
  img.width = 128;
  img.height = 128;
  const caption = document.createElement("figcaption");
  caption.textContent = item.name;
  figure.append(img, caption);
  grid.prepend(figure);
}

function showReport(report) {
  totals.imported += report.imported.length;
  totals.duplicates += report.duplicates.length;
  totals.rejected += report.rejected.length;
  totals.sameName += (report.same_name || []).length;
  report.imported.forEach(showThumb);
  for (const bad of report.rejected) {
    const li = document.createElement("li");
    li.textContent = `${bad.name}: ${bad.reason}`;
    rejectedList.append(li);
  }
  summary.textContent = `${totals.imported} imported, ${totals.duplicates} duplicates skipped, ${totals.rejected} rejected`
    + (totals.sameName ? `; ${totals.sameName} share a file name with another image (an annotation import `
      + "by file name cannot tell them apart; Twinlabel's COCO and JSON exports match by content)" : "");
}

async function uploadAll(fileList) {
  const files = Array.from(fileList);
  if (!files.length) return;
  progress.hidden = false;
  progress.max = files.length;
  progress.value = 0;
  rejectedList.replaceChildren();
  for (let start = 0; start < files.length; start += config.batch) {
    const batch = files.slice(start, start + config.batch);
    const limit = (f) => (f.name.toLowerCase().endsWith(".zip") ? config.maxZipBytes : config.maxBytes);
    const tooBig = batch.filter((f) => f.size > limit(f));
    const ok = batch.filter((f) => f.size <= limit(f));
    const report = { imported: [], duplicates: [], rejected: tooBig.map((f) => ({
      name: f.name, reason: `the file is ${(f.size / 1e6).toFixed(1)} MB; the limit is ${(limit(f) / 1e6).toFixed(1)} MB`,
    })) };
    if (ok.length) {
      try {
        const answer = await uploadBatch(ok);
        report.imported = answer.imported;
        report.duplicates = answer.duplicates;
        report.rejected.push(...answer.rejected);
        report.same_name = answer.same_name || [];
      } catch (error) {
        report.rejected.push(...ok.map((f) => ({ name: f.name, reason: `upload failed: ${error.message}` })));
      }
    }
    showReport(report);
    progress.value = start + batch.length;
  }
}

input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  uploadAll(event.dataTransfer.files);
});
zone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
});
zone.dataset.ready = "1"; // listeners are attached: tests (and impatient people) can drop now
