// The console's one script, served by the gateway (no inline script: the
// Content-Security-Policy forbids it). It takes an officer whose session
// has gone idle back to the login page instead of leaving personal data on
// an unattended screen; the server enforces the limit either way.
(function () {
  "use strict";
  var idle = Number(document.body.getAttribute("data-idle-seconds") || 0);
  if (!idle) { return; }
  var last = Date.now();
  function touch() { last = Date.now(); }
  ["keydown", "mousedown", "touchstart"].forEach(function (e) {
    document.addEventListener(e, touch, { passive: true });
  });
  setInterval(function () {
    if (Date.now() - last > idle * 1000) { window.location.assign("/login?reason=idle"); }
  }, 10000);
})();
