// The self-service terminal: the PIN keyed on the screen or on a hardware
// PIN pad (which types digits and Enter into the focused field), and the
// idle timer.
(function () {
  "use strict";
  var pin = document.getElementById("pin");
  if (pin) {
    // a hardware pad types into the field: keep the digits only, at most six
    pin.addEventListener("input", function () {
      var digits = pin.value.replace(/[^0-9]/g, "").slice(0, 6);
      if (digits !== pin.value) { pin.value = digits; }
    });
    pin.focus();
  }
  document.querySelectorAll(".keypad button[data-key]").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      var key = b.getAttribute("data-key");
      if (key === "ok") { return; }
      ev.preventDefault();
      if (key === "clear") { pin.value = ""; }
      else if (pin.value.length < 6) { pin.value += key; }
      // the field keeps the focus, so that the hardware pad's digits and
      // Enter still go to it after a touch on the screen
      pin.focus();
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
