// The dashboard's task counts, live: the server sends this volunteer's counts whenever
// work in their languages changes.
import { connect } from "./live.js";

const board = document.querySelector("[data-live-counts]");
if (board) {
  connect(board.dataset.socket, (event) => {
    if (event.type !== "counts") return;
    for (const [lang, counts] of Object.entries(event.counts)) {
      for (const [kind, count] of Object.entries(counts)) {
        const row = document.querySelector(`section[data-lang="${lang}"] tr[data-task-type="${kind}"]`);
        const cell = row?.querySelector("[data-count]");
        if (cell && cell.textContent !== String(count)) {
          cell.textContent = String(count);
          row.classList.add("changed");
        }
      }
    }
  });
}
