// Swagger UI at /api/docs/: names for the few controls it draws without one (axe: button-name, label).
// Swagger UI re-renders as operations open, so the names are added whenever its DOM changes.

const root = document.getElementById("swagger-ui");

function nameControls() {
  for (const button of root.querySelectorAll("button.close-modal:not([aria-label])")) {
    button.setAttribute("aria-label", "Close");
  }
  for (const field of root.querySelectorAll("textarea:not([aria-label]), input:not([aria-label]), select:not([aria-label])")) {
    if (field.labels && field.labels.length) continue;
    const param = field.closest("tr[data-param-name]")?.dataset.paramName;
    const named = param || (field.classList.contains("body-param__text") ? "Request body" : field.placeholder || field.name);
    field.setAttribute("aria-label", named || "Value");
  }
}

new MutationObserver(nameControls).observe(root, { childList: true, subtree: true });
nameControls();
