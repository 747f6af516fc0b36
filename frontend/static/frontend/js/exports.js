// The exports page, live: each pending or running export's progress bar follows its JSON
// from the API; when one finishes (or fails) the page reloads to show its new actions.
// Without JavaScript a <noscript> meta refresh reloads the page instead.
const POLL_MS = 2000;

async function follow(row) {
  const progress = row.querySelector("progress");
  const percent = row.querySelector("[data-percent]");
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let data;
    try {
      const response = await fetch(row.dataset.poll, { headers: { Accept: "application/json" } });
      if (!response.ok) continue;
      data = await response.json();
    } catch {
      continue; // offline for a moment: try again on the next tick
    }
    if (progress) progress.value = data.progress;
    if (percent) percent.textContent = `${Math.round(data.progress * 100)} %`;
    if (data.status !== row.dataset.status && (data.status === "done" || data.status === "failed")) {
      window.location.reload();
      return;
    }
    row.dataset.status = data.status;
  }
}

for (const row of document.querySelectorAll("[data-poll]")) follow(row);
