// The self-service terminal: on-screen PIN keypad and the idle timer.
(function () {
  "use strict";
  var pin = document.getElementById("pin");
  document.querySelectorAll(".keypad button[data-key]").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      var key = b.getAttribute("data-key");
      if (key === "ok") { return; }
      ev.preventDefault();
      if (key === "clear") { pin.value = ""; }
      else if (pin.value.length < 6) { pin.value += key; }
    });
  });
  var meta = document.querySelector('meta[name="kiosk-idle"]');
  if (!meta) { return; }
  var idle = parseInt(meta.getAttribute("content"), 10) * 1000;
  var timer;
  function reset() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var form = document.getElementById("logoutform");
      if (form) { form.submit(); } else { window.location.href = "/kiosk/"; }
    }, idle);
  }
  ["touchstart", "mousedown", "keydown", "click"].forEach(function (name) {
    document.addEventListener(name, reset, { passive: true });
  });
  reset();
})();
