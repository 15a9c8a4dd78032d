// The confirmation's live clock: the server renders the time in the service's
// zone (its UTC offset in data-offset-min), this keeps it ticking each second
// in that zone (the page works without it; the moving bar is CSS).
(function () {
  "use strict";
  var el = document.getElementById("clock");
  if (!el) { return; }
  var offsetMin = parseInt(el.getAttribute("data-offset-min") || "0", 10);
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var d = new Date(Date.now() + offsetMin * 60000);
    el.textContent = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  tick();
  setInterval(tick, 1000);
})();
