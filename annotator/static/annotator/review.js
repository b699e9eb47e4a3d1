// The review page: accept, or reject with a comment, then go on to the next submission.
// Keys: A accepts; R focuses the comment; Ctrl+Enter in the comment rejects.

const config = JSON.parse(document.getElementById("review-config").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const message = document.getElementById("review-message");
const comment = document.getElementById("review-comment");
let busy = false;

async function decide(decision) {
  if (busy || !config.image) return;
  if (decision === "reject" && !comment.value.trim()) {
    message.textContent = "Write what to fix before rejecting.";
    comment.focus();
    return;
  }
  busy = true;
  message.textContent = "";
  try {
    const response = await fetch(config.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ decision, version: config.version, comment: comment.value }),
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.assign(config.next);
      return;
    }
    const body = await response.json().catch(() => ({}));
    message.textContent = body.error || `The server answered ${response.status}.`;
  } catch (error) {
    message.textContent = `Could not reach the server (${error.message}); try again.`;
  }
  busy = false;
}

document.addEventListener("click", (e) => {
  const action = e.target.closest("[data-action]")?.dataset.action;
  if (action === "accept" || action === "reject") decide(action);
});

document.addEventListener("keydown", (e) => {
  if (e.target === comment) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); decide("reject"); }
    if (e.key === "Escape") comment.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "a" || e.key === "A") { e.preventDefault(); decide("accept"); }
  if (e.key === "r" || e.key === "R") { e.preventDefault(); comment.focus(); }
});
