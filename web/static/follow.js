// The authority cabinet's pages that follow something moving (an upload
// being read or sent, alerts being delivered). Without script they reload
// themselves (<meta http-equiv="refresh"> in <noscript>); with it, this
// script updates the page in place instead, every data-follow seconds: no
// reload that would throw a screen reader back to the top, the focused
// element keeps its focus, and it stops once the page follows nothing more.
(function () {
  "use strict";
  function seconds(doc) {
    var tag = doc.querySelector("script[data-follow]");
    return tag ? parseInt(tag.getAttribute("data-follow"), 10) || 0 : 0;
  }
  function later(s) { if (s > 0) { setTimeout(tick, s * 1000); } }
  function tick() {
    fetch(location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.querySelector("main");
        var main = document.querySelector("main");
        if (!next || !main) { return; }
        var focused = document.activeElement && document.activeElement.id;
        main.innerHTML = next.innerHTML;
        document.title = doc.title;
        if (focused && document.getElementById(focused)) {
          document.getElementById(focused).focus();
        }
        later(seconds(doc));
      })
      .catch(function () { later(seconds(document)); });
  }
  later(seconds(document));
})();
