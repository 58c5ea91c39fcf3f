// Optional: pre-fill the time zone from the browser, preview matches while typing, and add
// a related term as a line of its own when it is pressed.
(function () {
  "use strict";
  var form = document.getElementById("subscribe") || document.getElementById("preferences");
  if (!form) return;
  var tz = document.getElementById("timezone");
  try {
    var local = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && local && tz.value === "UTC" && form.id === "subscribe") {
      for (var i = 0; i < tz.options.length; i++) {
        if (tz.options[i].value === local) { tz.value = local; break; }
      }
    }
  } catch (e) { /* keep the server's default */ }
  var box = document.getElementById("interests");
  var card = document.getElementById("preview");
  var timer = null;
  function refresh() {
    var body = new URLSearchParams();
    body.set("interests", box.value);
    body.set("form", form.id);
    fetch("/preview", { method: "POST", body: body, credentials: "omit" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || !box.value.trim()) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("preview-result");
        var old = document.getElementById("preview-result");
        if (fresh && old) { old.replaceWith(fresh); card.hidden = false; }
      })
      .catch(function () {});
  }
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 700);
  });
  // A related term pressed: one more line in the box, and a fresh preview.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.suggest") : null;
    if (!button) return;
    event.preventDefault();
    var lines = box.value.split("\n").filter(function (l) { return l.trim(); });
    var known = lines.map(function (l) { return l.trim().toLowerCase(); });
    if (known.indexOf(button.value.toLowerCase()) < 0) lines.push(button.value);
    box.value = lines.join("\n");
    button.disabled = true;
    refresh();
  });
})();
