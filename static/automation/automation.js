/* Automation parts of the inbox: away toggle and presence heartbeat, macro buttons on the
   case page, bulk selection and actions on the case list. Own file: the inbox's inbox.js
   stays untouched; this one only reads the markup it renders (li.case-row[data-case]). */
(function () {
  "use strict";
  if (window.__automationLoaded) return; // included by more than one partial
  window.__automationLoaded = true;

  function csrf(root) {
    const input = (root || document).querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function post(url, data, root) {
    const body = new FormData();
    for (const [key, value] of data) body.append(key, value);
    const response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(root), "X-Requested-With": "fetch" },
    });
    let json = {};
    try {
      json = await response.json();
    } catch (e) {
      json = { ok: false, error: response.statusText };
    }
    return json;
  }

  function show(el, text) {
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  const holder = document.querySelector("[data-automation-tools]");
  if (!holder) return;
  fetch(holder.dataset.url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
    .then((r) => (r.ok ? r.text() : ""))
    .then((html) => {
      holder.innerHTML = html;
      init();
    });

  function init() {
    // Away toggle and heartbeat -------------------------------------------------------
    const away = document.querySelector("[data-away]");
    if (away) {
      const box = away.querySelector("input[name=away]");
      box.addEventListener("change", () => post(away.action, [["away", box.checked ? "1" : "0"]], away));
      // The socket says "online"; this keeps it believed while the page stays open.
      const beat = () => {
        if (document.visibilityState === "visible") post(away.dataset.heartbeatUrl, [], away);
      };
      setInterval(beat, 30000);
    }

    // Macros on the case page -----------------------------------------------------------
    const macros = document.querySelector(".automation-macros");
    if (macros) {
      const result = macros.querySelector(".macro-result");
      macros.addEventListener("click", async (e) => {
        const button = e.target.closest("button[data-macro]");
        if (!button) return;
        button.disabled = true;
        const json = await post(macros.dataset.macroUrl, [["macro", button.dataset.macro]], macros);
        button.disabled = false;
        show(result, json.ok ? json.done.join(" · ") : json.error);
      });
    }

    // Bulk selection on the case list ---------------------------------------------------
    const form = document.querySelector("[data-bulk]");
    const list = document.getElementById("case-list");
    if (form && list) {
      const chosen = new Set();
      const count = form.querySelector("[data-bulk-count]");
      const confirmLine = form.querySelector("[data-bulk-confirm]");
      const errorLine = form.querySelector("[data-bulk-error]");
      const doneLine = form.querySelector("[data-bulk-done]");
      let confirming = false;

      function refresh() {
        const n = chosen.size;
        form.hidden = n === 0 && doneLine.hidden;
        count.textContent = n === 1 ? count.dataset.one : count.dataset.many.replace("%s", n);
        confirming = false;
        show(confirmLine, "");
      }

      function decorate() {
        for (const row of list.querySelectorAll("li.case-row")) {
          if (row.querySelector(".bulk-pick")) continue;
          const id = row.dataset.case;
          const box = document.createElement("input");
          box.type = "checkbox";
          box.className = "bulk-pick";
          box.value = id;
          box.checked = chosen.has(id);
          box.setAttribute("aria-label", "#" + id);
          row.prepend(box);
        }
      }

      list.addEventListener("click", (e) => {
        if (e.target.classList && e.target.classList.contains("bulk-pick")) e.stopPropagation();
      });
      list.addEventListener("change", (e) => {
        const box = e.target;
        if (!box.classList || !box.classList.contains("bulk-pick")) return;
        if (box.checked) chosen.add(box.value);
        else chosen.delete(box.value);
        show(doneLine, "");
        refresh();
      });
      // The inbox re-renders its rows on every live update: mark the new ones again.
      new MutationObserver(decorate).observe(list, { childList: true, subtree: true });
      decorate();

      form.querySelector("[data-bulk-clear]").addEventListener("click", () => {
        chosen.clear();
        for (const box of list.querySelectorAll(".bulk-pick")) box.checked = false;
        show(doneLine, "");
        refresh();
      });

      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        show(errorLine, "");
        const choice = form.querySelector("[data-bulk-choice]").value;
        if (!choice || !chosen.size) return;
        if (!confirming) {
          // Undo-free: say so, and ask once more.
          show(confirmLine, confirmLine.dataset.text.replace("%s", chosen.size));
          confirming = true;
          return;
        }
        const split = choice.indexOf(":");
        const data = [["action", choice.slice(0, split)], ["value", choice.slice(split + 1)]];
        for (const id of chosen) data.push(["case", id]);
        const json = await post(form.action, data, form);
        if (!json.ok) {
          show(errorLine, json.error);
          confirming = false;
          show(confirmLine, "");
          return;
        }
        chosen.clear();
        for (const box of list.querySelectorAll(".bulk-pick")) box.checked = false;
        show(doneLine, doneLine.dataset.text.replace("%s", json.count));
        refresh();
      });
      refresh();
    }
  }
})();
