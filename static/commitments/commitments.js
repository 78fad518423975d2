/* Commitments in the case page: "Mark as commitment" on each message, the pinned
 * boxes kept current, and open commitments first in an incoming call's screen pop.
 *
 * Self-contained beside static/inbox/inbox.js: it listens on its own agent socket
 * (the server decides what reaches it, as for the inbox) and renders nothing itself:
 * the boxes are server fragments (?place=case|sidebar|pop), so the visibility rule
 * is applied once, on the server. Texts come translated in the dialog's data-*.
 */
(function () {
  "use strict";

  const dialog = document.getElementById("commitment-dialog");
  const casePage = document.querySelector("[data-case-page]");
  const customerId = casePage ? Number(casePage.dataset.customerId) : null;
  const threadId = casePage ? Number(casePage.dataset.threadId) : null;

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function post(url, data) {
    const response = await fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    try {
      return await response.json();
    } catch (e) {
      return { ok: false, error: (dialog && dialog.dataset.error) || "HTTP " + response.status };
    }
  }

  async function fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.text();
  }

  function showError(text) {
    const notices = document.getElementById("notices");
    if (!notices) return;
    const box = document.createElement("div");
    box.className = "notice notice-error";
    box.textContent = text;
    notices.appendChild(box);
    setTimeout(() => box.remove(), 8000);
  }

  // Pinned boxes ----------------------------------------------------------------
  async function refreshBoxes() {
    for (const box of document.querySelectorAll("[data-commitments-box]")) {
      try {
        const html = await fetchText(box.dataset.url);
        box.innerHTML = html;
        box.hidden = !html.trim();
      } catch (e) {
        /* the next change or a reload catches up */
      }
    }
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("[data-commitment-close]")) return;
    e.preventDefault();
    const data = new FormData(form);
    if (e.submitter && e.submitter.name) data.set(e.submitter.name, e.submitter.value);
    form.querySelectorAll("button").forEach((b) => (b.disabled = true));
    const answer = await post(form.getAttribute("action"), data); // form.action is the "action" buttons
    if (!answer.ok) {
      form.querySelectorAll("button").forEach((b) => (b.disabled = false));
      showError(answer.error);
    }
    refreshBoxes();
  });

  // "Mark as commitment" on each message of the timeline ------------------------
  const timeline = document.getElementById("timeline");

  function messageText(li) {
    const bubble = li.querySelector(".bubble");
    if (!bubble) return "";
    // The words themselves, in order of preference: a text, an email's body, a call's note.
    const part = [":scope > .text", ":scope > .email-html", ".call .text", ".call .transcript"]
      .map((selector) => bubble.querySelector(selector))
      .find(Boolean);
    return part ? (part.textContent || "").trim().slice(0, 1000) : "";
  }

  function addButtons(root) {
    if (!dialog) return;
    root.querySelectorAll("li.msg[data-message]:not(.system)").forEach((li) => {
      const head = li.querySelector(".msg-head");
      if (!head || head.querySelector("[data-commitment-mark]")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "commitment-mark linkish";
      button.dataset.commitmentMark = li.dataset.message;
      button.textContent = "📌 " + dialog.dataset.markLabel;
      head.appendChild(button);
    });
  }

  let markingId = null;
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-commitment-mark]");
    if (button && dialog) {
      markingId = button.dataset.commitmentMark;
      const li = document.getElementById("m-" + markingId);
      dialog.querySelector("#commitment-text").value = li ? messageText(li) : "";
      dialog.querySelector("#commitment-due").value = "";
      dialog.querySelector("#commitment-error").hidden = true;
      dialog.showModal();
      dialog.querySelector("#commitment-text").focus();
      return;
    }
    if (e.target.closest("[data-commitment-cancel]") && dialog) dialog.close();
  });

  if (dialog) {
    dialog.querySelector("#commitment-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target;
      const url = dialog.dataset.markUrl.replace(/\/0\/$/, "/" + markingId + "/");
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      const answer = await post(url, new FormData(form));
      submit.disabled = false;
      if (!answer.ok) {
        const error = dialog.querySelector("#commitment-error");
        error.textContent = answer.error;
        error.hidden = false;
        return; // the dialog keeps what was typed
      }
      dialog.close();
      refreshBoxes();
    });
  }

  if (timeline) {
    addButtons(timeline);
    new MutationObserver(() => addButtons(timeline)).observe(timeline, { childList: true });
  }

  // Live: a change on this customer, and the screen pop of a ringing call ------
  async function callPop(data) {
    const customer = data.customer && typeof data.customer === "object" ? data.customer.id : data.customer;
    if (!customer) return;
    let html = "";
    try {
      html = await fetchText("/commitments/customer/" + Number(customer) + "/pinned/?place=pop");
    } catch (e) {
      return;
    }
    if (!html.trim()) return;
    const notices = document.getElementById("notices");
    if (!notices) return;
    const box = document.createElement("div");
    box.className = "notice commitments-pop";
    box.innerHTML = html; // a server fragment: customer text is escaped there
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.addEventListener("click", () => box.remove());
    box.appendChild(close);
    // First: before the inbox's own call notice and anything else showing.
    notices.insertBefore(box, notices.firstChild);
    setTimeout(() => box.remove(), 60000);
  }

  function connect(retryMs) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(scheme + "://" + location.host + "/ws/agent/");
    socket.addEventListener("open", () => {
      document.body.dataset.commitmentsLive = "1";
      retryMs = 1000;
    });
    socket.addEventListener("message", (event) => {
      let payload;
      try {
        payload = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      const data = payload.data || {};
      if (payload.event === "call.incoming") callPop(data);
      else if (payload.event === "commitment.changed" && casePage) {
        if (Number((data.commitment || {}).customer_id) === customerId) refreshBoxes();
      } else if (payload.event === "customer.merged" && casePage) {
        refreshBoxes();
      } else if (payload.event === "message.created" && casePage && Number((data.message || {}).thread) === threadId) {
        // A commitment written elsewhere arrives with its event line.
        if ((data.message || {}).kind === "system") refreshBoxes();
      }
    });
    socket.addEventListener("close", (event) => {
      document.body.dataset.commitmentsLive = "";
      if (event.code === 4403) return;
      setTimeout(() => connect(Math.min(retryMs * 2, 15000)), retryMs);
    });
  }

  if (document.body.dataset.userId) connect(1000);
})();
