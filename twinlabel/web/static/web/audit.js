// The audit page's keys: Y confirms the auto-accepted tag, N rejects it (the buttons submit the form).
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, textarea, select")) return;
  const verdict = { y: "confirmed", n: "rejected" }[event.key.toLowerCase()];
  const button = verdict && document.querySelector(`#audit-app button[name="verdict"][value="${verdict}"]`);
  if (button) {
    event.preventDefault();
    button.click();
  }
});
