// The article form's live preview: the body is rendered by the server (the same
// sanitizer as the help center), a moment after typing stops.
(function () {
  "use strict";
  function start() {
    const body = document.getElementById("id_body");
    const preview = document.getElementById("kb-preview");
    if (!body || !preview) return;
    const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
    let timer = null;
    function render() {
      const data = new FormData();
      data.append("body", body.value);
      fetch(preview.dataset.url, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": csrf ? csrf.value : "" },
        credentials: "same-origin",
      })
        .then((r) => (r.ok ? r.json() : null))
        .then((answer) => {
          if (answer) preview.innerHTML = answer.html; // sanitized by the server
        });
    }
    body.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(render, 300);
    });
    render();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
