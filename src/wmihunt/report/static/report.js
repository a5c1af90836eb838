/* wmihunt report: client-side filters. Runs under the page's CSP (allowed by its hash).
   It reads data-* attributes and sets the `hidden` property and textContent only:
   it never builds HTML from data. */
(function () {
  "use strict";
  var findings = Array.prototype.slice.call(document.querySelectorAll("details.finding"));
  var selects = {
    host: document.getElementById("f-host"),
    detection: document.getElementById("f-detection"),
    type: document.getElementById("f-type")
  };
  var count = document.getElementById("f-count");
  var state = { host: "", detection: "", type: "" };

  function matches(el) {
    return (!state.host || el.dataset.host === state.host) &&
      (!state.detection || el.dataset.detection === state.detection) &&
      (!state.type || el.dataset.type === state.type);
  }

  function apply() {
    var shown = 0;
    findings.forEach(function (el) {
      var ok = matches(el);
      el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    Object.keys(selects).forEach(function (key) {
      if (selects[key] && selects[key].value !== state[key]) { selects[key].value = state[key]; }
    });
    document.querySelectorAll("[data-filter-host]").forEach(function (el) {
      var on = state.host !== "" && el.getAttribute("data-filter-host") === state.host;
      el.classList.toggle("active", on);
      if (el.tagName === "BUTTON") { el.setAttribute("aria-pressed", on ? "true" : "false"); }
    });
    if (count) {
      count.textContent = shown + " of " + findings.length + " findings shown";
    }
    document.body.setAttribute("data-filtered", state.host || state.detection || state.type ? "yes" : "no");
  }

  Object.keys(selects).forEach(function (key) {
    if (!selects[key]) { return; }
    selects[key].addEventListener("change", function () {
      state[key] = selects[key].value;
      apply();
    });
  });

  document.addEventListener("click", function (ev) {
    var target = ev.target instanceof Element ? ev.target : null;
    if (!target) { return; }
    var hostEl = target.closest("[data-filter-host]");
    var detEl = target.closest("[data-filter-detection]");
    if (hostEl) {
      ev.preventDefault();
      var host = hostEl.getAttribute("data-filter-host");
      state.host = state.host === host ? "" : host;
    } else if (detEl) {
      ev.preventDefault();
      var det = detEl.getAttribute("data-filter-detection");
      state.detection = state.detection === det ? "" : det;
    } else {
      return;
    }
    apply();
    var list = document.getElementById("findings");
    if (list && list.getBoundingClientRect().top > window.innerHeight) {
      list.scrollIntoView();
    }
  });

  var clear = document.getElementById("f-clear");
  if (clear) {
    clear.addEventListener("click", function () {
      state.host = ""; state.detection = ""; state.type = "";
      apply();
    });
  }

  function openFromHash() {
    var id = window.location.hash.slice(1);
    if (!id) { return; }
    var el = document.getElementById(id);
    if (el && el.tagName === "DETAILS") {
      if (el.hidden) { state.host = ""; state.detection = ""; state.type = ""; apply(); }
      el.open = true;
      el.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openFromHash);

  document.body.setAttribute("data-js", "ready");
  apply();
  openFromHash();
}());
