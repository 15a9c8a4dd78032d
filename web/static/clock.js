// The confirmation's live clock: the server renders the time, this keeps it
// ticking each second (the page works without it; the moving bar is CSS).
(function () {
  "use strict";
  var el = document.getElementById("clock");
  if (!el) { return; }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var d = new Date();
    el.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  tick();
  setInterval(tick, 1000);
})();
