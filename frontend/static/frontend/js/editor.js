// The writing form: live preview rendered (and sanitised) by the server, a character
// counter, Ctrl/Cmd+Enter to go on, and a draft kept in this browser so that a reload,
// a crash or a lost connection never loses a long answer.

const form = document.querySelector("form[data-editor]");

function csrfToken() {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

if (form) {
  const key = form.dataset.draftKey;
  const textarea = form.querySelector("textarea[name=text]");
  const counter = form.querySelector("[data-counter]");
  const status = form.querySelector("[data-draft-status]");
  const preview = form.querySelector("[data-preview]");
  const limit = textarea ? Number(textarea.getAttribute("maxlength")) : 0;

  const store = {
    get() {
      try { return localStorage.getItem(key); } catch (e) { return null; }
    },
    set(value) {
      try {
        if (value) localStorage.setItem(key, value);
        else localStorage.removeItem(key);
        return true;
      } catch (e) { return false; }
    },
  };

  let timer = null;
  let lastPreview = null;
  async function refreshPreview() {
    const text = textarea.value;
    if (text === lastPreview) return;
    lastPreview = text;
    const body = new URLSearchParams({ text });
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
        body,
        credentials: "same-origin",
      });
      if (response.ok && textarea.value === text) preview.innerHTML = await response.text();
    } catch (e) {
      /* offline: the draft is still kept, the preview waits */
    }
  }

  function changed() {
    const length = textarea.value.length;
    counter.textContent = `${length} / ${limit}`;
    counter.classList.toggle("over", length > limit * 0.95);
    if (store.set(textarea.value)) status.textContent = status.dataset.saved;
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 300);
  }

  if (textarea) {
    const draft = store.get();
    if (draft && !textarea.value.trim()) {
      textarea.value = draft;
      status.textContent = status.dataset.restored;
    }
    textarea.addEventListener("input", changed);
    counter.textContent = `${textarea.value.length} / ${limit}`;
    if (textarea.value) refreshPreview();
  } else {
    // The review step: keep the draft as it is, in case the submission fails.
    const hidden = form.querySelector("input[name=text]");
    if (hidden) store.set(hidden.value);
  }

  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      const primary = form.querySelector("button.primary");
      form.requestSubmit(primary);
    }
  });
}
