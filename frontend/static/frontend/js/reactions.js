// Reactions toggle in place; without this script each is a plain form post.
for (const form of document.querySelectorAll("form[data-react]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    const onInput = form.querySelector("input[name=on]");
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const data = await response.json();
    const emoji = form.querySelector("input[name=emoji]").value;
    const count = data.emojis[emoji] || 0;
    button.querySelector("[data-count]").textContent = count ? String(count) : "";
    button.classList.toggle("on", data.on);
    button.setAttribute("aria-pressed", String(data.on));
    onInput.value = data.on ? "0" : "1";
  });
}
