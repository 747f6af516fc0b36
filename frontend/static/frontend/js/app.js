// Behaviour shared by every page: the theme toggle and self-submitting selects.

function currentTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

for (const button of document.querySelectorAll("[data-theme-toggle]")) {
  const show = () => button.setAttribute("aria-pressed", String(currentTheme() === "dark"));
  show();
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem("chorus-theme", next);
    } catch (e) {
      /* not remembered, still switched */
    }
    show();
  });
}

for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

// Any form with a [data-submit] button: one submission at a time.
for (const form of document.querySelectorAll("form")) {
  form.addEventListener("submit", () => {
    window.setTimeout(() => {
      for (const b of form.querySelectorAll("[data-submit]")) b.disabled = true;
    }, 0);
  });
}

// A successful submission lands on the dashboard with ?done=<task id>: forget its draft.
const done = new URLSearchParams(window.location.search).get("done");
if (done) {
  try {
    localStorage.removeItem(`chorus-draft:${done}`);
  } catch (e) {
    /* nothing was kept */
  }
}
