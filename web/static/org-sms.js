// The cabinet's SMS preview, live (issue 23): as the organization types the
// address or the SMS name, ask the server for the confirmation the visitor
// will read and its segment count (the one rule, in Rust: no second copy
// here). Without this script the form's «Показать SMS» button does the same.
(function () {
  "use strict";
  var box = document.getElementById("sms-preview");
  var address = document.getElementById("address");
  var label = document.getElementById("sms_label");
  if (!box || !address || !label) { return; }
  var text = document.getElementById("sms-preview-text");
  var count = document.getElementById("sms-preview-segments");
  var refused = document.getElementById("sms-preview-refused");
  var timer = null;
  var asked = 0;
  function update() {
    var mine = ++asked;
    var url = "/org/sms-preview?address=" + encodeURIComponent(address.value) +
      "&label=" + encodeURIComponent(label.value);
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        // An older answer arriving late must not overwrite a newer one.
        if (!p || mine !== asked) { return; }
        text.textContent = p.text;
        count.textContent = String(p.segments);
        count.setAttribute("data-segments", String(p.segments));
        refused.textContent = p.refused || "";
        box.classList.toggle("over", p.segments > 1 || !!p.refused);
      })
      .catch(function () {});
  }
  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(update, 120);
  }
  address.addEventListener("input", later);
  label.addEventListener("input", later);
})();
