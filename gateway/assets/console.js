// The console's one script, served by the gateway (no inline script: the
// Content-Security-Policy forbids it). Every page works without it; it
// adds two things:
// - an officer whose session has gone idle is taken back to the login page
//   instead of leaving personal data on an unattended screen (the server
//   enforces the limit either way);
// - a campaign's and a comparison run's pages follow their progress live
//   over server-sent events;
// - a print button prints the page (Ctrl+P does the same without it);
// - a consent scan's SHA-256 is computed in the browser.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  var idle = Number(document.body.getAttribute("data-idle-seconds") || 0);
  if (idle) {
    var last = Date.now();
    var touch = function () { last = Date.now(); };
    ["keydown", "mousedown", "touchstart"].forEach(function (e) {
      document.addEventListener(e, touch, { passive: true });
    });
    setInterval(function () {
      if (Date.now() - last > idle * 1000) { window.location.assign("/login?reason=idle"); }
    }, 10000);
  }

  // A scan's SHA-256, computed here as soon as it is chosen, for the officer to compare with the
  // paper; the hub computes it again from the uploaded scan.
  Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-digest-into]"), function (input) {
    input.addEventListener("change", function () {
      var target = document.getElementById(input.getAttribute("data-digest-into"));
      var file = input.files && input.files[0];
      if (!file || !target || !window.crypto || !window.crypto.subtle) { return; }
      file.arrayBuffer().then(function (bytes) {
        return window.crypto.subtle.digest("SHA-256", bytes);
      }).then(function (digest) {
        target.value = Array.prototype.map.call(new Uint8Array(digest), function (b) {
          return ("0" + b.toString(16)).slice(-2);
        }).join("");
      });
    });
  });

  var set = function (id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(text); }
  };
  var fill = function (id, rows) {
    var body = document.getElementById(id);
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      row.forEach(function (cell) {
        var td = document.createElement("td");
        td.textContent = String(cell);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  };
  // Work the gateway holds (a campaign, a comparison run): each event is
  // its progress; the stream ends with the work.
  var follow = function (el, update) {
    if (!el || !window.EventSource) { return; }
    var updates = 0;
    var events = new EventSource(el.getAttribute("data-events"));
    events.onmessage = function (message) {
      var p = JSON.parse(message.data);
      updates += 1;
      el.setAttribute("data-updates", String(updates));
      update(p);
      if (p.error) {
        var error = el.querySelector("[role=alert]");
        error.textContent = p.error;
        error.hidden = false;
      }
      if (p.finished) { events.close(); }
    };
  };

  follow(document.getElementById("campaign"), function (p) {
    set("camp-percent", p.percent + "%");
    document.getElementById("camp-bar").value = p.percent;
    set("camp-done", p.done);
    set("camp-failed", p.failed);
    set("camp-remaining", p.remaining);
    set("camp-findings", p.findings);
    fill("dept-rows", p.departments);
    if (p.finished) { set("camp-status", "已结束"); }
  });

  follow(document.getElementById("run"), function (p) {
    set("run-phase", p.phase);
    set("run-percent", p.percent + "%");
    document.getElementById("run-bar").value = p.percent;
    set("run-done", p.done);
    set("run-total", p.total);
    fill("list-rows", p.lists);
  });
})();
