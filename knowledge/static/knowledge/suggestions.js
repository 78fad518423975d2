// Article suggestions beside the reply box: the knowledge base's best matches for the
// case's latest customer message; one click puts the article's link in the reply.
(function () {
  "use strict";
  const box = document.getElementById("kb-suggestions");
  if (!box) return;
  const list = box.querySelector(".kb-suggestion-list");
  const empty = box.querySelector("[data-kb-empty]");
  let lastLoad = 0;

  function insert(text) {
    const area = document.getElementById("reply-body");
    if (!area) return;
    const start = area.selectionStart ?? area.value.length;
    const end = area.selectionEnd ?? area.value.length;
    const before = area.value.slice(0, start);
    const spacer = before && !/\s$/.test(before) ? " " : "";
    area.value = before + spacer + text + area.value.slice(end);
    const caret = (before + spacer + text).length;
    area.focus();
    area.setSelectionRange(caret, caret);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function render(answer) {
    list.replaceChildren();
    for (const item of answer.results) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = item.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = item.title;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "kb-insert";
      button.textContent = box.dataset.insertLabel;
      button.setAttribute("aria-label", box.dataset.insertLabel + ": " + item.title);
      button.addEventListener("click", () => insert(item.title + ": " + item.url));
      li.append(link, " ", button);
      list.appendChild(li);
    }
    empty.hidden = answer.results.length > 0;
    box.hidden = false;
  }

  function load() {
    lastLoad = Date.now();
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((answer) => answer && render(answer))
      .catch(() => {});
  }

  load();
  // A new customer message may change the question: look again when the agent comes back to write.
  const area = document.getElementById("reply-body");
  if (area) area.addEventListener("focus", () => Date.now() - lastLoad > 10000 && load());
})();
