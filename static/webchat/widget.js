/* Web chat panel: runs inside the iframe on the helpdesk's origin.
 *
 * docs/webchat.md is the contract with the server. Every text the visitor
 * reads comes from the server already translated (#widget-strings), and every
 * piece of visitor or agent text reaches the page through textContent or a
 * checked href, never innerHTML.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("widget-config").textContent);
  const S = JSON.parse(document.getElementById("widget-strings").textContent);
  const STORAGE_KEY = "helpdesk-widget:" + config.key;
  const READ_KEY = STORAGE_KEY + ":read";
  const TYPING_EVERY_MS = 3000;
  const TYPING_IDLE_MS = 5000;
  const WS_ACK_MS = 8000;
  const LOADER_WAIT_MS = 500;
  const inFrame = window.parent !== window;

  const $ = (id) => document.getElementById(id);
  const el = {
    body: document.body,
    greeting: $("greeting"),
    availability: $("availability"),
    availabilityText: $("availability-text"),
    caseNumber: $("case-number"),
    close: $("close"),
    banner: $("banner"),
    bannerText: $("banner-text"),
    bannerClose: $("banner-close"),
    connection: $("connection"),
    scroller: $("scroller"),
    offline: $("offline-notice"),
    empty: $("empty"),
    list: $("messages"),
    typing: $("typing"),
    typingText: $("typing-text"),
    prechat: $("prechat"),
    prechatIntro: $("prechat-intro"),
    prechatFields: $("prechat-fields"),
    prechatSubmit: $("prechat-submit"),
    composer: $("composer"),
    text: $("text"),
    send: $("send"),
    counter: $("counter"),
    attach: $("attach"),
    file: $("file")
  };

  function t(key, params) {
    let text = S[key] || key;
    if (params) {
      text = text.replace(/%\((\w+)\)s/g, (m, name) => (name in params ? String(params[name]) : m));
    }
    return text;
  }

  // localStorage can be refused to third-party frames (privacy settings): the
  // chat still works for this page view, it just forgets on reload.
  const memory = {};
  const store = {
    get(key) {
      try {
        return window.localStorage.getItem(key);
      } catch (err) {
        return memory[key] || null;
      }
    },
    set(key, value) {
      memory[key] = value;
      try {
        window.localStorage.setItem(key, value);
      } catch (err) {
        /* kept in memory only */
      }
    },
    remove(key) {
      delete memory[key];
      try {
        window.localStorage.removeItem(key);
      } catch (err) {
        /* nothing stored */
      }
    }
  };

  const state = {
    token: store.get(STORAGE_KEY),
    visitor: null,
    case: null,
    availability: null,
    host: { user: null, hash: null, page: "", title: "" },
    open: !inFrame,
    messages: new Map(), // id -> message
    pending: new Map(), // client_id -> {text, file, node, via, timer}
    lastId: 0,
    seenUpTo: 0,
    readUpTo: Number(store.get(READ_KEY) || 0),
    started: false,
    blocked: false
  };

  // Talking to the loader -----------------------------------------------------------

  function toLoader(message) {
    // Never "*": the unread count and open state are for the page that embeds us.
    if (inFrame && config.origin) window.parent.postMessage(message, config.origin);
  }

  let loaderGreeted = null;
  const loaderFirst = new Promise((resolve) => {
    loaderGreeted = resolve;
  });

  window.addEventListener("message", (event) => {
    if (!inFrame || event.source !== window.parent || event.origin !== config.origin) return;
    const data = event.data;
    if (!data || typeof data !== "object") return;
    switch (data.type) {
      case "helpdesk:init": {
        state.host.page = String(data.page || "");
        state.host.title = String(data.title || "");
        state.host.user = data.user || null;
        state.host.hash = data.hash || null;
        if (data.open) setOpen(true);
        loaderGreeted();
        // Later than the wait for it: the session started without this user.
        if (sessionRun && identity() !== sentIdentity) startSession();
        break;
      }
      case "helpdesk:user":
        if (state.host.user && !data.user) {
          // Signed out on the site (a shared computer): the next person must not
          // inherit the verified conversation kept under this token.
          state.token = null;
          store.remove(STORAGE_KEY);
        }
        state.host.user = data.user || null;
        state.host.hash = data.hash || null;
        if (sessionRun && identity() !== sentIdentity) startSession();
        break;
      case "helpdesk:page":
        state.host.page = String(data.page || "");
        state.host.title = String(data.title || "");
        wsSend({ action: "page", url: state.host.page, title: state.host.title });
        break;
      case "helpdesk:open":
        setOpen(true);
        break;
      case "helpdesk:close":
        setOpen(false);
        break;
    }
  });

  function setOpen(open) {
    state.open = open;
    el.body.dataset.open = open ? "1" : "0";
    if (open) {
      markRead();
      if (!el.composer.hidden) el.text.focus({ preventScroll: true });
      else if (!el.prechat.hidden) {
        const first = el.prechatFields.querySelector("input");
        if (first) first.focus();
      }
      scrollToEnd();
    }
    updateUnread();
  }

  el.close.addEventListener("click", () => {
    setOpen(false);
    toLoader({ type: "helpdesk:close" });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && inFrame) {
      setOpen(false);
      toLoader({ type: "helpdesk:close" });
    }
  });

  // HTTP ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, error, retryAfter) {
      super((error && error.message) || t(status === 429 ? "error_rate" : status ? "error_generic" : "error_network"));
      this.status = status;
      this.code = (error && error.code) || "";
      this.fields = (error && error.fields) || {};
      this.retryAfter = retryAfter;
    }
  }

  async function api(method, path, body, signal) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(config.api + path, {
        method,
        headers,
        body: payload,
        credentials: "omit",
        cache: "no-store",
        signal
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, null, null);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.error, response.headers.get("Retry-After"));
    }
    return data;
  }

  // Banners -------------------------------------------------------------------------

  let bannerTimer = null;
  function showError(message, ms) {
    el.bannerText.textContent = message;
    el.banner.hidden = false;
    clearTimeout(bannerTimer);
    if (ms) bannerTimer = setTimeout(hideError, ms);
  }
  function hideError() {
    el.banner.hidden = true;
  }
  el.bannerClose.addEventListener("click", hideError);

  function errorOf(err) {
    const ms = err.status === 429 ? Math.max(3, Number(err.retryAfter) || 5) * 1000 : 0;
    showError(err.message, ms);
  }

  function setConnection(lost) {
    el.connection.hidden = !lost;
    el.connection.textContent = lost ? t("reconnecting") : "";
  }

  // Rendering -----------------------------------------------------------------------

  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

  function safeHref(raw) {
    try {
      const url = new URL(raw, window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  function linkified(text) {
    // Text nodes and <a> built one by one: whatever the text holds stays text.
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      let raw = match[0];
      // Sentence punctuation after a link is not part of it.
      const trail = raw.match(/[.,;:!?)\]]+$/);
      if (trail) raw = raw.slice(0, -trail[0].length);
      const href = safeHref(raw);
      if (!href) continue;
      fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
      const a = document.createElement("a");
      a.href = href;
      a.textContent = raw;
      a.rel = "noopener noreferrer nofollow";
      a.target = "_blank";
      fragment.appendChild(a);
      last = match.index + raw.length;
    }
    fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function formatBytes(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "") + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " B";
  }

  function timeOf(iso) {
    const date = iso ? new Date(iso) : new Date();
    if (isNaN(date)) return "";
    try {
      return date.toLocaleTimeString(config.language || undefined, { hour: "2-digit", minute: "2-digit" });
    } catch (err) {
      return date.toLocaleTimeString();
    }
  }

  function attachmentNode(att) {
    const href = safeHref(att.url || "");
    const wrap = document.createElement("div");
    wrap.className = "attachment";
    if (!href) {
      wrap.textContent = att.name || t("attachment");
      return wrap;
    }
    const a = document.createElement("a");
    a.href = href;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    if (att.image) {
      wrap.classList.add("image");
      const img = document.createElement("img");
      img.src = href;
      img.alt = t("image_alt", { name: att.name || "" });
      img.loading = "lazy";
      img.addEventListener("load", () => nearBottom() && scrollToEnd());
      a.appendChild(img);
    } else {
      wrap.classList.add("file");
      const name = document.createElement("span");
      name.className = "file-name";
      name.textContent = att.name || t("attachment");
      a.appendChild(name);
      if (att.size) {
        const size = document.createElement("span");
        size.className = "file-size";
        size.textContent = formatBytes(att.size);
        a.appendChild(size);
      }
    }
    wrap.appendChild(a);
    return wrap;
  }

  function surveyNode(message) {
    const box = document.createElement("div");
    box.className = "survey";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", t("survey_prompt"));
    if (!message.text) {
      const prompt = document.createElement("p");
      prompt.textContent = t("survey_prompt");
      box.appendChild(prompt);
    }
    const scores = message.survey.scores || [];
    const max = scores.length ? Math.max(...scores) : 5;
    const row = document.createElement("div");
    row.className = "scores";
    for (const score of scores) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "score";
      button.textContent = String(score);
      button.setAttribute("aria-label", t("survey_score", { score, max }));
      button.addEventListener("click", () => {
        for (const b of row.querySelectorAll("button")) b.disabled = true;
        button.classList.add("chosen");
        sendText(String(score));
        const thanks = document.createElement("p");
        thanks.className = "survey-thanks";
        thanks.textContent = t("survey_thanks");
        box.appendChild(thanks);
      });
      row.appendChild(button);
    }
    box.appendChild(row);
    return box;
  }

  // The bot's answer buttons ("Yes" / "Talk to a person"): a tap sends the button's text.
  function choicesNode(message) {
    const row = document.createElement("div");
    row.className = "choices";
    row.setAttribute("role", "group");
    for (const choice of message.choices) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = choice;
      button.addEventListener("click", () => {
        for (const b of row.querySelectorAll("button")) b.disabled = true;
        button.classList.add("chosen");
        sendText(choice);
      });
      row.appendChild(button);
    }
    return row;
  }

  function messageNode(message, pending) {
    const li = document.createElement("li");
    const mine = message.direction === "in";
    li.className = "msg " + (mine ? "mine" : "ours");
    if (message.id) li.dataset.id = String(message.id);
    if (message.client_id) li.dataset.clientId = message.client_id;
    if (!mine) {
      const who = document.createElement("div");
      who.className = "author";
      who.textContent = message.author_name || t("us");
      li.appendChild(who);
    }
    if (message.text) {
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.appendChild(linkified(message.text));
      li.appendChild(bubble);
    }
    for (const att of message.attachments || []) li.appendChild(attachmentNode(att));
    if (message.survey && !mine) li.appendChild(surveyNode(message));
    if (message.choices && !mine) li.appendChild(choicesNode(message));
    const meta = document.createElement("div");
    meta.className = "meta";
    const time = document.createElement("time");
    if (message.created_at) time.dateTime = message.created_at;
    time.textContent = timeOf(message.created_at);
    meta.appendChild(time);
    if (pending) {
      const status = document.createElement("span");
      status.className = "status";
      status.textContent = pending === "failed" ? t("not_sent") : t(message.uploading ? "uploading" : "sending", { name: message.uploading || "" });
      meta.appendChild(status);
      li.classList.add(pending === "failed" ? "failed" : "pending");
    }
    li.appendChild(meta);
    return li;
  }

  function nearBottom() {
    const s = el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToEnd() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
  }

  function insertSorted(node, id) {
    // Messages arrive from the socket, the poll and POST answers in any order;
    // unsent ones (no id yet) stay last.
    for (const child of el.list.children) {
      const other = child.dataset.id ? Number(child.dataset.id) : Infinity;
      if (id < other) {
        el.list.insertBefore(node, child);
        return;
      }
    }
    el.list.appendChild(node);
  }

  function settleSurveys() {
    // Answered (the visitor wrote after it): its buttons would send a second score.
    let lastIn = 0;
    for (const message of state.messages.values()) if (message.direction === "in" && message.id > lastIn) lastIn = message.id;
    for (const node of el.list.querySelectorAll("li.ours[data-id] .survey")) {
      const id = Number(node.closest("li").dataset.id);
      if (id < lastIn) for (const button of node.querySelectorAll("button")) button.disabled = true;
    }
  }

  function addMessage(message) {
    if (!message || !message.id) return;
    const stick = nearBottom();
    const existing = el.list.querySelector(`li[data-id="${message.id}"]`);
    const node = messageNode(message);
    const pending = message.client_id && state.pending.get(message.client_id);
    if (pending) {
      clearTimeout(pending.timer);
      state.pending.delete(message.client_id);
      if (pending.node.isConnected) pending.node.remove();
    }
    if (existing) {
      existing.replaceWith(node);
    } else {
      insertSorted(node, message.id);
    }
    state.messages.set(message.id, message);
    state.lastId = Math.max(state.lastId, message.id);
    if (message.direction === "out") {
      hideAgentTyping();
    }
    renderSeen();
    renderEmpty();
    settleSurveys();
    if (state.open && message.direction === "out") markRead();
    updateUnread();
    if (stick || message.direction === "in") scrollToEnd();
  }

  function renderSeen() {
    for (const old of el.list.querySelectorAll(".seen")) old.remove();
    let lastMine = null;
    for (const message of state.messages.values()) {
      if (message.direction === "in" && (!lastMine || message.id > lastMine.id)) lastMine = message;
    }
    if (!lastMine || state.seenUpTo < lastMine.id) return;
    const node = el.list.querySelector(`li[data-id="${lastMine.id}"] .meta`);
    if (!node) return;
    const seen = document.createElement("span");
    seen.className = "seen";
    seen.textContent = t("seen");
    node.appendChild(seen);
  }

  function renderEmpty() {
    el.empty.hidden = state.messages.size > 0 || state.pending.size > 0 || !state.started;
    el.empty.textContent = t("empty");
  }

  function renderHeader() {
    el.greeting.textContent = config.greeting || "";
    const availability = state.availability;
    if (availability) {
      el.availability.hidden = false;
      el.availability.classList.toggle("away", !availability.open);
      // Away: the header says so briefly and the notice above the messages says
      // when we are back (the server's sentence), so the visitor knows to leave one.
      el.availabilityText.textContent = availability.open ? availability.text || t("online") : t("offline");
      el.offline.hidden = !!availability.open;
      el.offline.textContent = availability.open ? "" : availability.text || t("offline_notice");
    } else {
      el.availability.hidden = true;
    }
    const c = state.case;
    el.caseNumber.hidden = !(c && c.number);
    el.caseNumber.textContent = c && c.number ? t("case_number", { number: c.number }) : "";
  }

  // Unread and read receipts ----------------------------------------------------------

  function lastOutId() {
    let id = 0;
    for (const message of state.messages.values()) if (message.direction === "out" && message.id > id) id = message.id;
    return id;
  }

  function updateUnread() {
    let count = 0;
    if (!state.open) {
      for (const message of state.messages.values()) {
        if (message.direction === "out" && message.id > state.readUpTo) count += 1;
      }
    }
    toLoader({ type: "helpdesk:unread", count });
  }

  function markRead() {
    const upTo = lastOutId();
    if (!upTo || upTo <= state.readUpTo || !state.token || document.visibilityState === "hidden") return;
    state.readUpTo = upTo;
    store.set(READ_KEY, String(upTo));
    if (!wsSend({ action: "read", up_to: upTo })) {
      api("POST", "read", { up_to: upTo }).catch(() => {
        /* a lost receipt only leaves the agent's "seen" behind */
      });
    }
  }
  document.addEventListener("visibilitychange", () => state.open && markRead());

  // Agent typing ------------------------------------------------------------------

  let agentTypingTimer = null;
  function showAgentTyping() {
    const stick = nearBottom();
    el.typingText.textContent = t("agent_typing");
    el.typing.hidden = false;
    clearTimeout(agentTypingTimer);
    // A lost "stopped typing" must not leave the dots forever.
    agentTypingTimer = setTimeout(hideAgentTyping, 8000);
    if (stick) scrollToEnd();
  }
  function hideAgentTyping() {
    clearTimeout(agentTypingTimer);
    el.typing.hidden = true;
  }

  // Visitor typing -----------------------------------------------------------------

  let typingSentAt = 0;
  let typingOn = false;
  let typingIdle = null;
  function sendTyping(typing) {
    if (!state.token) return;
    if (!wsSend({ action: "typing", typing })) {
      api("POST", "typing", { typing }).catch(() => {
        /* the indicator is a nicety */
      });
    }
  }
  el.text.addEventListener("input", () => {
    updateCounter();
    const now = Date.now();
    if (el.text.value.trim() && now - typingSentAt >= TYPING_EVERY_MS) {
      typingSentAt = now;
      typingOn = true;
      sendTyping(true);
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  function stopTyping() {
    clearTimeout(typingIdle);
    if (typingOn) {
      typingOn = false;
      typingSentAt = 0;
      sendTyping(false);
    }
  }

  // Composer -----------------------------------------------------------------------

  const maxChars = Number(config.max_message_chars) || 0;
  if (maxChars) el.text.maxLength = maxChars;
  el.text.placeholder = t("placeholder");
  const accepted = (config.accepted_types || []).map((type) => String(type).toLowerCase());
  if (accepted.length) el.file.accept = accepted.join(",");

  function updateCounter() {
    // Grow with the text up to a few lines, then scroll.
    el.text.style.height = "auto";
    el.text.style.height = Math.min(el.text.scrollHeight, 120) + "px";
    el.send.disabled = !el.text.value.trim();
    // Counted only near the limit: a number under every message is noise.
    const left = maxChars ? maxChars - el.text.value.length : Infinity;
    el.counter.hidden = left > Math.min(200, maxChars / 10);
    el.counter.textContent = el.counter.hidden ? "" : t("chars_left", { count: Math.max(0, left) });
  }

  el.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });

  function submitComposer() {
    const text = el.text.value.trim();
    if (!text || state.blocked) return;
    if (maxChars && text.length > maxChars) {
      showError(t("too_long", { max: maxChars }));
      return;
    }
    el.text.value = "";
    updateCounter();
    stopTyping();
    sendText(text);
    el.text.focus();
  }

  function newClientId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "c-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sendText(text) {
    const clientId = newClientId();
    const item = { text, node: null, timer: null, via: null };
    state.pending.set(clientId, item);
    renderPending(clientId, "sending");
    deliver(clientId);
  }

  function renderPending(clientId, how) {
    const item = state.pending.get(clientId);
    if (!item) return;
    const node = messageNode(
      {
        client_id: clientId,
        direction: "in",
        text: item.text,
        uploading: item.file ? item.file.name : "",
        created_at: new Date().toISOString()
      },
      how
    );
    if (how === "failed") {
      node.tabIndex = 0;
      node.setAttribute("role", "button");
      const retry = () => {
        renderPending(clientId, "sending");
        deliver(clientId);
      };
      node.addEventListener("click", retry);
      node.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          retry();
        }
      });
    }
    if (item.node && item.node.isConnected) item.node.replaceWith(node);
    else el.list.appendChild(node);
    item.node = node;
    renderEmpty();
    scrollToEnd();
  }

  function failPending(clientId, err) {
    const item = state.pending.get(clientId);
    if (!item) return;
    clearTimeout(item.timer);
    renderPending(clientId, "failed");
    if (err) errorOf(err);
  }

  function pageInfo() {
    return state.host.page ? { url: state.host.page, title: state.host.title } : null;
  }

  async function deliver(clientId) {
    const item = state.pending.get(clientId);
    if (!item) return;
    clearTimeout(item.timer);
    if (!item.file && wsSend({ action: "message", client_id: clientId, text: item.text, page: pageInfo() })) {
      item.via = "ws";
      // No echo in time: the same client_id over HTTP cannot make a second message.
      item.timer = setTimeout(() => postMessageItem(clientId), WS_ACK_MS);
      return;
    }
    postMessageItem(clientId);
  }

  async function postMessageItem(clientId) {
    const item = state.pending.get(clientId);
    if (!item) return;
    item.via = "http";
    let body;
    if (item.file) {
      body = new FormData();
      body.append("client_id", clientId);
      body.append("text", item.text || "");
      body.append("file", item.file, item.file.name);
      if (state.host.page) body.append("page", state.host.page);
    } else {
      body = { client_id: clientId, text: item.text };
      if (state.host.page) body.page = pageInfo();
    }
    try {
      const data = await api("POST", "messages", body);
      if (data && data.message) addMessage({ ...data.message, client_id: data.message.client_id || clientId });
      if (data && data.case !== undefined) {
        noteCase(data.case);
      } else if (!state.case) {
        // The first message opens the case: learn its number.
        catchUp();
      }
    } catch (err) {
      failPending(clientId, err);
    }
  }

  // Attachments -----------------------------------------------------------------------

  function typeAccepted(type) {
    if (!accepted.length) return true;
    type = (type || "").toLowerCase();
    return accepted.some((allowed) =>
      allowed.endsWith("/*") ? type.startsWith(allowed.slice(0, -1)) : allowed === type
    );
  }

  el.attach.addEventListener("click", () => el.file.click());
  el.file.addEventListener("change", () => {
    const file = el.file.files && el.file.files[0];
    el.file.value = "";
    if (!file || state.blocked) return;
    const max = Number(config.max_attachment_bytes) || 0;
    if (max && file.size > max) {
      showError(t("file_too_large", { max: formatBytes(max) }));
      return;
    }
    if (!typeAccepted(file.type)) {
      showError(t("file_type"));
      return;
    }
    hideError();
    const clientId = newClientId();
    state.pending.set(clientId, { text: "", file, node: null, timer: null, via: "http" });
    renderPending(clientId, "sending");
    postMessageItem(clientId);
  });

  // Pre-chat form ---------------------------------------------------------------------

  const PRECHAT_FIELDS = [
    { name: "name", type: "text", autocomplete: "name", label: "prechat_name" },
    { name: "email", type: "email", autocomplete: "email", label: "prechat_email" },
    { name: "phone", type: "tel", autocomplete: "tel", label: "prechat_phone" }
  ];

  function prechatWanted() {
    const prechat = config.prechat || {};
    const any = PRECHAT_FIELDS.some((f) => prechat[f.name] && prechat[f.name] !== "off");
    return any && state.visitor && !state.visitor.prechat_done;
  }

  function buildPrechat() {
    const prechat = config.prechat || {};
    el.prechatIntro.textContent = t("prechat_intro");
    el.prechatSubmit.textContent = t("prechat_start");
    el.prechatFields.textContent = "";
    for (const field of PRECHAT_FIELDS) {
      const mode = prechat[field.name] || "off";
      if (mode === "off") continue;
      const wrap = document.createElement("div");
      wrap.className = "field";
      const id = "prechat-" + field.name;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = t(field.label);
      if (mode !== "required") {
        const optional = document.createElement("span");
        optional.className = "optional";
        optional.textContent = " " + t("prechat_optional");
        label.appendChild(optional);
      }
      const input = document.createElement("input");
      input.id = id;
      input.name = field.name;
      input.type = field.type;
      input.autocomplete = field.autocomplete;
      input.required = mode === "required";
      input.maxLength = 200;
      const known = state.visitor && state.visitor[field.name];
      if (known) input.value = known;
      const error = document.createElement("p");
      error.className = "field-error";
      error.id = id + "-error";
      error.hidden = true;
      input.setAttribute("aria-describedby", error.id);
      wrap.append(label, input, error);
      el.prechatFields.appendChild(wrap);
    }
  }

  function fieldError(name, message) {
    const input = $("prechat-" + name);
    const error = $("prechat-" + name + "-error");
    if (!input || !error) return false;
    error.textContent = message || "";
    error.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return true;
  }

  el.prechat.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    let firstBad = null;
    for (const input of el.prechatFields.querySelectorAll("input")) {
      const value = input.value.trim();
      let problem = "";
      if (input.required && !value) problem = t("prechat_required");
      else if (value && input.type === "email" && !input.checkValidity()) problem = t("prechat_bad_email");
      fieldError(input.name, problem);
      if (problem && !firstBad) firstBad = input;
      if (value) body[input.name] = value;
    }
    if (firstBad) {
      firstBad.focus();
      return;
    }
    el.prechatSubmit.disabled = true;
    try {
      const data = await api("POST", "prechat", body);
      state.visitor = (data && data.visitor) || { ...state.visitor, ...body, prechat_done: true };
      hideError();
      showComposer();
      // A socket authenticated before the form still holds the visitor as they
      // were (no details yet), and the server refuses its messages: start it again.
      closeSocket();
      connect();
    } catch (err) {
      let shown = false;
      for (const [name, messages] of Object.entries(err.fields || {})) {
        const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
        if (fieldError(name, text)) shown = true;
      }
      if (!shown || !err.fields) errorOf(err);
    } finally {
      el.prechatSubmit.disabled = false;
    }
  });

  function showComposer() {
    const prechat = prechatWanted();
    el.prechat.hidden = !prechat;
    el.composer.hidden = prechat || state.blocked;
    el.body.dataset.state = state.blocked ? "blocked" : prechat ? "prechat" : "chat";
    if (prechat) buildPrechat();
    updateCounter();
    if (state.open) {
      if (prechat) {
        const first = el.prechatFields.querySelector("input");
        if (first) first.focus();
      } else if (!state.blocked) {
        el.text.focus({ preventScroll: true });
      }
    }
  }

  // Session ---------------------------------------------------------------------------

  function noteCase(c) {
    const first = !state.case && c;
    state.case = c;
    renderHeader();
    if (first && wsReady && !socketHadCase) {
      // The server's socket keeps the visitor as they were at "auth": before
      // their first message they had no conversation, and its typing and read
      // receipts would go nowhere. A fresh auth picks the new case up.
      closeSocket();
      connect();
    }
  }

  function applyState(data) {
    if (data.case !== undefined) noteCase(data.case);
    if (typeof data.seen_up_to === "number" && data.seen_up_to > state.seenUpTo) state.seenUpTo = data.seen_up_to;
    for (const message of data.messages || []) addMessage(message);
    renderSeen();
    renderHeader();
  }

  let sessionRun = 0;
  let sentIdentity = null;
  function identity() {
    return JSON.stringify([state.host.user, state.host.hash]);
  }

  async function startSession() {
    const run = ++sessionRun;
    sentIdentity = identity();
    closeSocket();
    const body = {
      origin: config.origin || "",
      page: state.host.page,
      title: state.host.title,
      lang: config.language || navigator.language || "",
      user: state.host.user,
      hash: state.host.hash
    };
    try {
      body.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (err) {
      body.tz = "";
    }
    if (state.token) body.token = state.token;
    let data;
    try {
      data = await api("POST", "session", body);
    } catch (err) {
      if (run !== sessionRun) return;
      if (err.status === 401 && state.token) {
        // A token signed with a rotated key, or for another channel: start fresh.
        state.token = null;
        store.remove(STORAGE_KEY);
        return startSession();
      }
      state.started = true;
      if (err.status === 403 || err.status === 404) {
        state.blocked = true;
        showError(err.message);
        showComposer();
        renderEmpty();
        return;
      }
      showError(err.status ? err.message : t("error_network"));
      setTimeout(() => run === sessionRun && startSession(), 5000);
      return;
    }
    if (run !== sessionRun) return;
    const tokenChanged = data.token && data.token !== state.token;
    state.token = data.token;
    store.set(STORAGE_KEY, data.token);
    if (tokenChanged && state.started) {
      // Another identity (setUser, a verified login): its messages replace these.
      state.messages.clear();
      state.lastId = 0;
      state.seenUpTo = 0;
      el.list.textContent = "";
    }
    state.visitor = data.visitor || null;
    state.availability = data.availability || null;
    state.started = true;
    state.blocked = false;
    hideError();
    applyState(data);
    showComposer();
    renderEmpty();
    el.body.classList.add("ready");
    if (state.open) markRead();
    updateUnread();
    scrollToEnd();
    connect();
  }

  // Realtime: WebSocket, long-poll when the socket cannot stay up --------------------------

  let ws = null;
  let wsReady = false;
  let socketHadCase = false;
  let wsFailures = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let pollRun = 0;

  function wsSend(frame) {
    if (!ws || !wsReady || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function closeSocket() {
    clearTimeout(reconnectTimer);
    clearInterval(pingTimer);
    stopPolling();
    if (ws) {
      const old = ws;
      ws = null;
      wsReady = false;
      old.onclose = null;
      old.close();
    }
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (!state.token || state.blocked) return;
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (err) {
      socketLost(null, 1006);
      return;
    }
    ws = socket;
    socket.onopen = () => socket.send(JSON.stringify({ action: "auth", token: state.token }));
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (socket === ws) onEvent(frame.event, frame.data || {});
    };
    socket.onclose = (event) => socketLost(socket, event.code);
  }

  function socketLost(socket, code) {
    if (socket && socket !== ws) return;
    ws = null;
    wsReady = false;
    clearInterval(pingTimer);
    if (code === 4401) {
      // The token no longer opens this visitor: a new session settles it.
      startSession();
      return;
    }
    if (code === 4403) {
      state.blocked = true;
      showComposer();
      showError(t("error_session"));
      return;
    }
    wsFailures += 1;
    setConnection(true);
    // Twice in a row: something between us (a proxy, a firewall) eats sockets.
    if (wsFailures >= 2) startPolling();
    const delay = Math.min(30000, 1000 * 2 ** Math.min(wsFailures - 1, 5)) * (0.75 + Math.random() / 2);
    reconnectTimer = setTimeout(connect, delay);
  }

  function onEvent(name, data) {
    switch (name) {
      case "ready":
        wsReady = true;
        wsFailures = 0;
        setConnection(false);
        stopPolling();
        if (data.visitor) state.visitor = data.visitor;
        socketHadCase = !!data.case;
        if (data.case) state.case = data.case;
        renderHeader();
        clearInterval(pingTimer);
        pingTimer = setInterval(() => wsSend({ action: "ping" }), 25000);
        if (state.host.page) wsSend({ action: "page", url: state.host.page, title: state.host.title });
        catchUp();
        resendPending();
        break;
      case "message.created":
        if (data.message) addMessage(data.message);
        if (data.case !== undefined) noteCase(data.case);
        break;
      case "agent.typing":
        if (data.typing) showAgentTyping();
        else hideAgentTyping();
        break;
      case "seen":
        if (typeof data.up_to === "number" && data.up_to > state.seenUpTo) {
          state.seenUpTo = data.up_to;
          renderSeen();
        }
        break;
      case "case":
        noteCase(data.case || null);
        break;
      case "error": {
        // Refused over the socket: that message is not stored, so its HTTP
        // fallback must not fire either.
        const item = data.client_id && state.pending.get(data.client_id);
        if (item && data.code === "prechat_required" && state.visitor && state.visitor.prechat_done && !item.retried) {
          // The socket predates the pre-chat form (see the prechat submit): over HTTP
          // the server reads the visitor afresh.
          item.retried = true;
          clearTimeout(item.timer);
          postMessageItem(data.client_id);
          break;
        }
        if (item) failPending(data.client_id, null);
        const retry = Number(data.retry_after) || 0;
        showError(data.message || t("error_generic"), retry ? Math.max(3, retry) * 1000 : 0);
        break;
      }
      case "pong":
        break;
    }
  }

  async function catchUp() {
    // What arrived while the socket was down.
    try {
      const data = await api("GET", "messages?after=" + state.lastId);
      if (data) applyState(data);
    } catch (err) {
      /* the next event or poll fills the gap */
    }
  }

  function resendPending() {
    for (const [clientId, item] of state.pending) {
      if (item.via === "ws" && item.node && item.node.classList.contains("pending")) deliver(clientId);
    }
  }

  let pollAbort = null;
  function stopPolling() {
    pollRun += 1;
    if (pollAbort) pollAbort.abort();
    pollAbort = null;
  }

  async function startPolling() {
    if (pollAbort) return;
    const run = ++pollRun;
    let failures = 0;
    // The first look answers at once: it tells whether HTTP gets through at all.
    let wait = "";
    while (run === pollRun && !wsReady) {
      pollAbort = new AbortController();
      try {
        const data = await api("GET", "messages?after=" + state.lastId + wait, undefined, pollAbort.signal);
        wait = "&wait=25";
        failures = 0;
        if (run !== pollRun) break;
        setConnection(false);
        if (data) applyState(data);
      } catch (err) {
        if (run !== pollRun || (err && err.name === "AbortError")) break;
        if (err.status === 401) {
          pollAbort = null;
          startSession();
          return;
        }
        failures += 1;
        setConnection(true);
        await new Promise((resolve) => setTimeout(resolve, Math.min(30000, 1000 * 2 ** failures)));
      }
    }
    if (run === pollRun) pollAbort = null;
  }

  // Start --------------------------------------------------------------------------

  el.body.dataset.open = state.open ? "1" : "0";
  el.greeting.textContent = config.greeting || "";
  el.prechatSubmit.textContent = t("prechat_start");
  document.documentElement.style.setProperty("--accent", /^#[0-9a-f]{3,8}$/i.test(config.color || "") ? config.color : "#1f6feb");
  renderHeader();
  updateCounter();

  toLoader({ type: "helpdesk:ready" });
  // The loader's first message carries the page and any verified user; a frame
  // opened without one (or a slow parent) must still start.
  Promise.race([loaderFirst, new Promise((resolve) => setTimeout(resolve, inFrame ? LOADER_WAIT_MS : 0))]).then(
    startSession
  );
})();
