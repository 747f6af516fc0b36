// Sortable ranking: drag by pointer (mouse, pen or finger), move with the arrow buttons,
// or focus a reply and press Alt+ArrowUp/ArrowDown. The place selects stay the source of
// truth the form submits, so the page also works without this script.

for (const list of document.querySelectorAll("[data-rank-list]")) {
  const items = () => [...list.querySelectorAll(":scope > li")];
  list.classList.add("sortable");

  function sync() {
    items().forEach((item, index) => {
      item.querySelector("[data-position]").value = String(index + 1);
      item.querySelector("[data-place]").textContent = String(index + 1);
    });
  }

  function move(item, delta) {
    const all = items();
    const index = all.indexOf(item);
    const target = index + delta;
    if (target < 0 || target >= all.length) return;
    if (delta < 0) list.insertBefore(item, all[target]);
    else list.insertBefore(item, all[target].nextSibling);
    sync();
    item.focus();
  }

  for (const item of items()) {
    for (const button of item.querySelectorAll("[data-move]")) {
      button.addEventListener("click", () => move(item, button.dataset.move === "up" ? -1 : 1));
    }
    item.addEventListener("keydown", (event) => {
      if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
        event.preventDefault();
        move(item, event.key === "ArrowUp" ? -1 : 1);
      }
    });
    // A place chosen in a select moves the reply there.
    item.querySelector("[data-position]").addEventListener("change", (event) => {
      const all = items();
      const to = Number(event.target.value) - 1;
      const from = all.indexOf(item);
      move(item, to - from);
    });

    const handle = item.querySelector(".handle");
    // Moving the item in the DOM would drop a pointer capture, so the drag listens on the
    // document until the pointer is released.
    handle.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      item.classList.add("dragging");
      const onMove = (e) => {
        const over = items().find((other) => {
          if (other === item) return false;
          const box = other.getBoundingClientRect();
          return e.clientY > box.top && e.clientY < box.bottom;
        });
        if (!over) return;
        const box = over.getBoundingClientRect();
        const after = e.clientY > box.top + box.height / 2;
        list.insertBefore(item, after ? over.nextSibling : over);
        sync();
      };
      const onUp = () => {
        item.classList.remove("dragging");
        document.removeEventListener("pointermove", onMove);
        document.removeEventListener("pointerup", onUp);
        document.removeEventListener("pointercancel", onUp);
        item.focus();
      };
      document.addEventListener("pointermove", onMove);
      document.addEventListener("pointerup", onUp);
      document.addEventListener("pointercancel", onUp);
    });
  }
  sync();
}

// Long replies are shown folded, with a button to read them whole.
for (const body of document.querySelectorAll("[data-clamp]")) {
  const button = body.parentElement.querySelector("[data-expand]");
  const limit = 12 * parseFloat(getComputedStyle(body).fontSize);
  if (body.scrollHeight <= limit * 1.2) continue; // short enough to show whole
  body.classList.add("clamped");
  button.hidden = false;
  const label = button.textContent;
  button.addEventListener("click", () => {
    const open = body.classList.toggle("clamped") === false;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? button.dataset.less || "−" : label;
  });
}

// "All replies are unacceptable" makes the order meaningless: grey it out.
const notRankable = document.querySelector("#not-rankable");
if (notRankable) {
  const list = document.querySelector("[data-rank-list]");
  notRankable.addEventListener("change", () => list.classList.toggle("disabled", notRankable.checked));
}
