// The report queue, live: a new report puts its message's card at the top.
import { connect } from "./live.js";

const queue = document.querySelector("[data-report-queue]");
if (queue) {
  const status = document.querySelector("[data-live-status]");
  connect(queue.dataset.socket, (event) => {
    if (!event.html) return;
    const holder = document.createElement("div");
    holder.innerHTML = event.html; // rendered by the server from the page's own template
    const card = holder.firstElementChild;
    // The server renders the card outside a request, without this page's CSRF token.
    for (const input of card.querySelectorAll('input[name="csrfmiddlewaretoken"]')) {
      input.value = queue.dataset.csrf;
    }
    queue.querySelector(`[data-message="${event.message_id}"]`)?.remove();
    queue.querySelector("[data-empty]")?.remove();
    card.classList.add("arrived");
    queue.prepend(card);
    for (const badge of document.querySelectorAll("[data-open-reports]")) {
      badge.textContent = String(event.open_reports);
    }
  }, (state) => {
    if (status) status.dataset.state = state;
  });
}
