// The console's one script, served by the gateway (no inline script: the
// Content-Security-Policy forbids it). Every page works without it; it
// adds two things:
// - an officer whose session has gone idle is taken back to the login page
//   instead of leaving personal data on an unattended screen (the server
//   enforces the limit either way);
// - a campaign's page follows its progress live over server-sent events.
(function () {
  "use strict";
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

  var campaign = document.getElementById("campaign");
  if (campaign && window.EventSource) {
    var set = function (id, text) {
      var el = document.getElementById(id);
      if (el) { el.textContent = String(text); }
    };
    var rows = document.getElementById("dept-rows");
    var updates = 0;
    var events = new EventSource(campaign.getAttribute("data-events"));
    events.onmessage = function (message) {
      var p = JSON.parse(message.data);
      updates += 1;
      campaign.setAttribute("data-updates", String(updates));
      set("camp-percent", p.percent + "%");
      document.getElementById("camp-bar").value = p.percent;
      set("camp-done", p.done);
      set("camp-failed", p.failed);
      set("camp-remaining", p.remaining);
      set("camp-findings", p.findings);
      while (rows.firstChild) { rows.removeChild(rows.firstChild); }
      p.departments.forEach(function (d) {
        var tr = document.createElement("tr");
        d.forEach(function (cell) {
          var td = document.createElement("td");
          td.textContent = String(cell);
          tr.appendChild(td);
        });
        rows.appendChild(tr);
      });
      if (p.error) {
        set("camp-error", p.error);
        document.getElementById("camp-error").hidden = false;
      }
      if (p.finished) {
        set("camp-status", "已结束");
        events.close();
      }
    };
  }
})();
