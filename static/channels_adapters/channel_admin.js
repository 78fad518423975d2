// The channel form lists every kind's credential fields; show only the selected kind's.
(function () {
  "use strict";
  function update() {
    var kind = document.getElementById("id_kind");
    if (!kind) return;
    document.querySelectorAll("[data-channel-kinds]").forEach(function (input) {
      var row = input.closest(".form-row") || input.parentElement;
      var used = input.getAttribute("data-channel-kinds").split(" ").indexOf(kind.value) !== -1;
      row.style.display = used ? "" : "none";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.getElementById("id_kind");
    if (kind) kind.addEventListener("change", update);
    update();
  });
})();
