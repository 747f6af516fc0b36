// The chat page: the message goes over the chat's WebSocket and the reply streams in, piece
// by piece. Without this script (or while the socket is down) the form posts as usual and
// the page comes back with the whole reply.

const form = document.getElementById("chat-form");
const log = document.getElementById("chat-log");
const textarea = document.getElementById("chat-text");
const send = document.getElementById("chat-send");
const stop = document.getElementById("chat-stop");
const status = document.getElementById("chat-status");
const errorBox = document.getElementById("chat-error");
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

let socket = null;
let streaming = null; // the reply being written: {article, body}
let retryDelay = 1000;

function errorText(code, fallback) {
  return form.dataset[`error-${code}`.replace(/-(\w)/g, (_, c) => c.toUpperCase())] || fallback;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function setBusy(busy) {
  send.disabled = busy;
  stop.hidden = !busy;
  form.setAttribute("aria-busy", String(busy));
}

function scrollToEnd() {
  log.lastElementChild?.scrollIntoView({ block: "end" });
}

// Server-rendered message HTML, with this page's CSRF token in its forms.
function insertHtml(html, replacing = null) {
  const holder = document.createElement("div");
  holder.innerHTML = html.trim();
  const article = holder.firstElementChild;
  for (const input of article.querySelectorAll("input[name=csrfmiddlewaretoken]")) {
    input.value = csrf;
  }
  if (replacing) replacing.replaceWith(article);
  else log.append(article);
  log.querySelector(".chat-empty")?.remove();
  return article;
}

// The first message names the chat: in the heading, the sidebar and the tab.
function showTitle(title) {
  if (!title) return;
  const heading = document.querySelector(".chat-main h1");
  if (heading) heading.textContent = title;
  const current = document.querySelector(".chat-side a[aria-current=page]");
  if (current) current.textContent = title;
  document.title = document.title.replace(/^[^·]*·/, `${title} ·`);
}

function startReply() {
  const article = document.createElement("article");
  article.className = "msg chat-msg role-assistant streaming";
  article.setAttribute("aria-busy", "true");
  const head = document.createElement("header");
  head.className = "msg-head";
  head.innerHTML = '<span class="role"></span>';
  head.firstChild.textContent = log.dataset.assistantLabel || "Assistant";
  const body = document.createElement("div");
  body.className = "msg-body chat-stream";
  body.dataset.stream = "";
  article.append(head, body);
  log.append(article);
  streaming = { article, body };
}

function finishReply(message) {
  if (streaming) {
    if (message) insertHtml(message.html, streaming.article);
    else streaming.article.remove();
  }
  streaming = null;
  setBusy(false);
  status.textContent = "";
  textarea.focus();
}

function onEvent(event) {
  switch (event.type) {
    case "message":
      insertHtml(event.message.html);
      showTitle(event.chat_title);
      textarea.value = "";
      startReply();
      scrollToEnd();
      break;
    case "delta":
      if (!streaming) startReply();
      streaming.body.textContent += event.text;
      scrollToEnd();
      break;
    case "done":
    case "cancelled":
      finishReply(event.message);
      scrollToEnd();
      break;
    case "error":
      showError(errorText(event.code, event.message));
      finishReply(null);
      break;
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${window.location.host}${form.dataset.socket}`);
  socket.addEventListener("open", () => {
    retryDelay = 1000;
    showError("");
  });
  socket.addEventListener("message", (event) => onEvent(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    socket = null;
    if (streaming) {
      showError(errorText("closed", ""));
      finishReply(null);
    }
    if (event.code === 4401 || event.code === 4403) return; // not allowed: the form posts
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  });
}

form.addEventListener("submit", (event) => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return; // plain POST
  event.preventDefault();
  const text = textarea.value.trim();
  if (!text || streaming) return;
  showError("");
  setBusy(true);
  socket.send(JSON.stringify({ type: "send", text }));
});

textarea.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

stop.addEventListener("click", () => {
  if (socket && streaming) socket.send(JSON.stringify({ type: "cancel" }));
});

// Votes without leaving the page: the server answers with the reply's new HTML.
log.addEventListener("submit", async (event) => {
  const voteForm = event.target.closest("[data-vote-form]");
  if (!voteForm) return;
  event.preventDefault();
  const body = new FormData(voteForm);
  body.set("vote", event.submitter.value);
  const response = await fetch(voteForm.action, {
    method: "POST",
    body,
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  const data = await response.json();
  if (!response.ok) {
    showError(data.error?.message || "");
    return;
  }
  const article = voteForm.closest("article");
  const fresh = insertHtml(data.html, article);
  fresh.querySelector(data.vote === -1 ? ".vote-down" : ".vote-up")?.focus();
});

for (const confirmForm of document.querySelectorAll("form[data-confirm]")) {
  confirmForm.addEventListener("submit", (event) => {
    if (!window.confirm(confirmForm.dataset.confirm)) event.preventDefault();
  });
}

connect();
scrollToEnd();
