// A WebSocket that reconnects (with growing pauses) when the connection drops.
export function connect(path, onMessage, onState = () => {}) {
  let delay = 1000;
  let socket = null;
  function open() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      onState("open");
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      onState("closed");
      if (event.code === 4401 || event.code === 4403) return; // not allowed: stop trying
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  open();
  return () => socket && socket.close();
}
