// Loaded in <head> so a saved light/dark choice applies before the first paint.
(function () {
  try {
    var saved = localStorage.getItem("chorus-theme");
    if (saved === "light" || saved === "dark") {
      document.documentElement.dataset.theme = saved;
    }
  } catch (e) {
    /* storage blocked: follow the system */
  }
})();
