// Optional: pre-fill the time zone from the browser and preview matches while typing.
(function () {
  "use strict";
  var form = document.getElementById("subscribe");
  if (!form) return;
  var tz = document.getElementById("timezone");
  try {
    var local = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (local && tz.value === "UTC") {
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
})();
