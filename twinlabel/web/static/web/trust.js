// The project page's precision targets (admins): the project's target and a per-label override
// (empty: the project's), and auto-accept (on/off, its stricter target, the share audited), read
// from and saved to /api/projects/<id>/suggestion-settings/.

import { requestJson } from "./http.js";

const box = document.getElementById("trust-settings");
const form = document.getElementById("trust-form");
const rows = document.getElementById("trust-labels");
const message = document.getElementById("trust-message");

function call(method, body) {
  return requestJson(box.dataset.url, { method, body });
}

function standing(label) {
  if (label.confident == null) return "no fit yet";
  if (label.confident) {
    const auto = label.auto_threshold == null ? "" : `; auto-accepted from ${Math.round(label.auto_threshold * 100)} %`;
    return `confident from ${Math.round(label.threshold * 100)} %${auto}`;
  }
  return label.near_chance ? "not confident (near chance)" : "not confident";
}

function show(settings) {
  form.elements.precision_target.value = settings.precision_target;
  form.elements.auto_accept.checked = settings.auto_accept;
  form.elements.auto_accept_target.value = settings.auto_accept_target;
  form.elements.audit_rate.value = settings.audit_rate;
  rows.replaceChildren(...settings.labels.map((label) => {
    const tr = document.createElement("tr");
    const input = Object.assign(document.createElement("input"), {
      type: "number", min: "0.5", max: "0.999", step: "0.001", name: `label-${label.label_id}`,
      value: label.override ? label.target : "", placeholder: "project's" });
    input.dataset.label = label.label_id;
    input.setAttribute("aria-label", `Precision target for ${label.label}`);
    const name = Object.assign(document.createElement("td"), { textContent: label.label });
    const field = document.createElement("td");
    field.append(input);
    tr.append(name, field, Object.assign(document.createElement("td"), { textContent: standing(label), className: "muted" }));
    return tr;
  }));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const labelTargets = {};
  for (const input of rows.querySelectorAll("input[data-label]")) {
    labelTargets[input.dataset.label] = input.value === "" ? null : Number(input.value);
  }
  try {
    const { elements } = form;
    show(await call("PATCH", {
      precision_target: Number(elements.precision_target.value), label_targets: labelTargets,
      auto_accept: elements.auto_accept.checked, auto_accept_target: Number(elements.auto_accept_target.value),
      audit_rate: Number(elements.audit_rate.value),
    }));
    message.textContent = "Saved; the probe refits with these targets.";
  } catch (error) {
    message.textContent = error.message;
  }
});

call("GET").then(show).catch((error) => { message.textContent = error.message; });
