/* Agent inbox: live updates over the WebSocket, keyboard shortcuts, reply box.
 *
 * The server renders everything; when the socket says something changed, this
 * asks the same view for the fragment (?partial=rows|timeline|panel) and swaps
 * it in, so a row or a message is rendered in one place only.
 */
(function () {
  "use strict";

  // Texts go through Django's JavaScript catalog (/jsi18n/), English when it is missing.
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  const loadedAt = Date.now();
  const body = document.body;
  const me = Number(body.dataset.userId || 0);
  body.classList.add("js");
  const listRoot = document.querySelector("[data-inbox]");
  const casePage = document.querySelector("[data-case-page]");
  const caseId = casePage ? Number(casePage.dataset.caseId) : null;
  const threadId = casePage ? Number(casePage.dataset.threadId) : null;
  const customerId = casePage ? Number(casePage.dataset.customerId) : null;

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms);
    };
  }

  // Notices ---------------------------------------------------------------------
  const notices = document.getElementById("notices");

  function notice(parts, cls, ms) {
    // parts: strings and {text, href}; built with textContent, never innerHTML,
    // because names and message text come from customers.
    const box = document.createElement("div");
    box.className = "notice " + (cls || "");
    for (const part of [].concat(parts)) {
      if (part && typeof part === "object") {
        const a = document.createElement("a");
        a.href = part.href;
        a.textContent = part.text;
        box.appendChild(a);
      } else {
        box.appendChild(document.createTextNode(String(part)));
      }
    }
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", gettext("Dismiss"));
    close.style.marginLeft = "8px";
    close.addEventListener("click", () => box.remove());
    box.appendChild(close);
    notices.appendChild(box);
    if (ms !== 0) setTimeout(() => box.remove(), ms || 8000);
    return box;
  }

  async function fetchText(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.text();
  }

  async function postForm(form) {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    let data = {};
    try {
      data = await response.json();
    } catch (e) {
      data = { ok: false, error: interpolate(gettext("The server answered HTTP %(status)s."), { status: response.status }, true) };
    }
    return data;
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  // WebSocket -----------------------------------------------------------------------
  const liveState = document.getElementById("live-state");
  const handlers = [];
  let socket = null;
  let retryMs = 1000;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(scheme + "://" + location.host + "/ws/agent/");
    socket.addEventListener("open", () => {
      retryMs = 1000;
      if (liveState) {
        liveState.textContent = gettext("live");
        liveState.classList.add("on");
      }
      body.dataset.live = "1";
    });
    socket.addEventListener("message", (event) => {
      let payload;
      try {
        payload = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      for (const handler of handlers) handler(payload.event, payload.data || {});
    });
    socket.addEventListener("close", () => {
      body.dataset.live = "";
      if (liveState) {
        liveState.textContent = gettext("reconnecting…");
        liveState.classList.remove("on");
      }
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  function sendSocket(data) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
  }

  // Events for every page: screen pops, SLA warnings, mentions.
  handlers.push((event, data) => {
    if (event === "call.incoming") {
      const customer = data.customer || {};
      const name = typeof customer === "object" && customer.name ? customer.name
        : interpolate(gettext("Customer #%(id)s"), { id: typeof customer === "object" ? customer.id : customer }, true);
      const call = data.call || {};
      const caseRef = typeof data.case === "object" && data.case ? data.case.id : data.case;
      const parts = ["📞 " + interpolate(gettext("Incoming call from %(name)s"), { name: name }, true) + (call.from ? " (" + call.from + ")" : "") + ". "];
      const last = (data.messages || [])[0];
      if (last && last.text) parts.push(gettext("Last:") + " “" + last.text.slice(0, 120) + "” ");
      if (caseRef) parts.push({ text: interpolate(gettext("Open case #%(id)s"), { id: caseRef }, true), href: "/inbox/case/" + caseRef + "/" });
      notice(parts, "call-pop", 30000);
    } else if (event === "sla.warning" || event === "sla.breached") {
      const caseRef = typeof data.case === "object" && data.case ? data.case.id : data.case;
      const what = data.target === "resolution" ? gettext("Resolution") : gettext("First response");
      const minutes = Math.max(0, Math.round((data.seconds_left || 0) / 60));
      const text = event === "sla.breached"
        ? interpolate(gettext("%(what)s target missed"), { what: what }, true)
        : interpolate(gettext("%(what)s due in %(minutes)s min"), { what: what, minutes: minutes }, true);
      const parts = ["⏰ SLA: " + text + " · "];
      if (caseRef) parts.push({ text: interpolate(gettext("case #%(id)s"), { id: caseRef }, true), href: "/inbox/case/" + caseRef + "/" });
      notice(parts, event === "sla.breached" ? "notice-error" : "sla", 15000);
    } else if (event === "mention.created" && Number(data.user) === me) {
      notice(
        [interpolate(gettext("%(name)s mentioned you:"), { name: data.by || gettext("A colleague") }, true) + " “" + (data.text || "") + "” ",
         { text: interpolate(gettext("case #%(id)s"), { id: data.case }, true), href: "/inbox/case/" + data.case + "/" }],
        "", 15000);
      const link = document.getElementById("mentions-link");
      if (link) {
        let count = link.querySelector(".count");
        if (!count) {
          count = document.createElement("span");
          count.className = "count";
          link.append(" ", count);
        }
        count.textContent = String(Number(count.textContent || 0) + 1);
      }
    }
  });

  // Boxes served after the page (data-fragment="url"): each replaces its placeholder;
  // a failed load says so and offers to try again, the rest of the page unaffected.
  async function loadFragment(holder) {
    const status = holder.querySelector("[data-fragment-status]");
    try {
      const html = await fetchText(holder.dataset.fragment);
      const fresh = fragment(html).firstElementChild;
      if (fresh) holder.replaceWith(fresh);
    } catch (e) {
      holder.removeAttribute("aria-busy");
      if (!status) return;
      status.textContent = gettext("This box could not be loaded.") + " ";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.textContent = gettext("Try again");
      retry.addEventListener("click", () => {
        status.textContent = gettext("Loading…");
        holder.setAttribute("aria-busy", "true");
        loadFragment(holder);
      });
      status.append(retry);
    }
  }
  document.querySelectorAll("[data-fragment]").forEach(loadFragment);

  // Counts per view and the unread count in the tab title --------------------------
  const baseTitle = document.title.replace(/^\(\d+\) /, "");
  function showUnread(unread) {
    document.title = (unread ? "(" + unread + ") " : "") + baseTitle;
  }
  async function loadCounts() {
    try {
      const data = JSON.parse(await fetchText("/inbox/?partial=counts"));
      for (const [view, count] of Object.entries(data.views || {})) {
        const el = document.querySelector('[data-count="' + view + '"]');
        if (el) {
          el.textContent = String(count);
          el.setAttribute("aria-label", interpolate(gettext("%(n)s cases"), { n: count }, true));
        }
      }
      showUnread(data.unread || 0);
    } catch (e) {
      /* the next event tries again */
    }
  }
  const refreshCounts = debounce(loadCounts, 400);
  // The case page is served without the counts (one aggregate over the agent's queue
  // less per case opened): its tab title gets the unread count right after it loads.
  if (casePage) loadCounts();
  handlers.push((event) => {
    if (["message.created", "case.updated", "customer.merged"].includes(event)) refreshCounts();
  });

  // Desktop notifications and a sound: opt-in, for new cases, mentions, assignments --
  const soundUrl = (document.currentScript || document.querySelector("script[data-sound]")).dataset.sound;
  const iconUrl = (document.querySelector("script[data-icon]") || {}).dataset?.icon;
  const notifyToggle = document.getElementById("notify-toggle");
  const NOTIFY_KEY = "helpdesk.notify";
  let chime = null;
  let ownActionUntil = 0;
  const notified = new Set();

  function notifyOn() {
    return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(NOTIFY_KEY) === "on";
  }

  function showNotifyState() {
    if (!notifyToggle) return;
    const label = notifyToggle.querySelector("[data-notify-label]");
    let text = gettext("Notifications off");
    if ("Notification" in window && Notification.permission === "denied") text = gettext("Notifications blocked");
    else if (notifyOn()) text = gettext("Notifications on");
    label.textContent = text;
    notifyToggle.setAttribute("aria-pressed", notifyOn() ? "true" : "false");
    body.dataset.notify = notifyOn() ? "on" : "off";
  }

  if (notifyToggle && "Notification" in window) {
    notifyToggle.hidden = false;
    showNotifyState();
    notifyToggle.addEventListener("click", async () => {
      if (notifyOn()) {
        localStorage.setItem(NOTIFY_KEY, "off");
      } else if (Notification.permission === "denied") {
        notice(gettext("Notifications are blocked for this site: allow them in the browser's site settings, then try again."), "notice-error");
      } else {
        const answer = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
        if (answer === "granted") {
          localStorage.setItem(NOTIFY_KEY, "on");
          chime = chime || new Audio(soundUrl);
          notice(gettext("Notifications on: new cases, mentions and cases given to you."), "", 5000);
        } else {
          notice(gettext("Notifications stay off: the browser was not allowed to show them."), "notice-error");
        }
      }
      showNotifyState();
    });
  }

  function alertAgent(key, title, text, href) {
    // One alert per thing, even when several groups deliver the event.
    if (notified.has(key)) return;
    notified.add(key);
    if (!notifyOn()) return;
    try {
      chime = chime || new Audio(soundUrl);
      chime.currentTime = 0;
      chime.play().catch(() => {});
    } catch (e) {
      /* no audio device */
    }
    const shown = new Notification(title, { body: text || "", tag: key, icon: iconUrl });
    body.dataset.lastNotification = title;
    shown.onclick = () => {
      window.focus();
      if (href) location.href = href;
    };
  }

  handlers.push((event, data) => {
    const c = data.case && typeof data.case === "object" ? data.case : null;
    if (event === "message.created" && c && data.message && data.message.direction === "in" &&
        c.opened_at && Date.parse(c.opened_at) >= loadedAt - 5000) {
      alertAgent("case-" + c.id, interpolate(gettext("New case #%(id)s"), { id: c.id }, true),
                 data.message.body, "/inbox/case/" + c.id + "/");
    } else if (event === "mention.created" && Number(data.user) === me) {
      alertAgent("mention-" + (data.message || data.case + "-" + Date.now()),
                 interpolate(gettext("%(name)s mentioned you"), { name: data.by || gettext("A colleague") }, true),
                 data.text, "/inbox/case/" + data.case + "/");
    } else if (event === "case.updated" && c && data.change === "assigned" && Number(c.assignee) === me &&
               Date.now() > ownActionUntil) {
      alertAgent("assigned-" + c.id + "-" + Date.now(), interpolate(gettext("Case #%(id)s is yours now"), { id: c.id }, true),
                 "", "/inbox/case/" + c.id + "/");
    }
  });

  // Inbox list ----------------------------------------------------------------------
  let selected = -1;

  function rows() {
    return Array.from(document.querySelectorAll(".case-row"));
  }

  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    all[selected].querySelector("a").focus();
  }

  if (listRoot) {
    const onFirstPage = !new URLSearchParams(location.search).get("after");
    const list = document.getElementById("case-list");
    const refreshList = debounce(async (touched) => {
      if (!onFirstPage) return;
      const query = listRoot.dataset.query;
      const url = location.pathname + "?" + (query ? query + "&" : "") + "partial=rows";
      const focusedCase = document.activeElement && document.activeElement.closest(".case-row");
      const keep = focusedCase ? focusedCase.dataset.case : null;
      try {
        list.innerHTML = await fetchText(url);
      } catch (e) {
        return;
      }
      for (const id of touched) {
        const row = list.querySelector('.case-row[data-case="' + id + '"]');
        if (row) row.classList.add("flash");
      }
      if (keep) {
        const row = list.querySelector('.case-row[data-case="' + keep + '"] a');
        if (row) row.focus();
      }
    }, 250);
    const touched = new Set();
    handlers.push((event, data) => {
      if (["message.created", "message.updated", "case.updated", "customer.merged", "call.incoming"].includes(event)) {
        if (data.case && data.case.id) touched.add(data.case.id);
        if (data.message && data.message.case) touched.add(data.message.case);
        refreshList(Array.from(touched));
        setTimeout(() => touched.clear(), 500);
      }
    });
    list.addEventListener("focusin", (e) => {
      const row = e.target.closest(".case-row");
      if (row) selected = rows().indexOf(row);
    });
  }

  // Thread view ---------------------------------------------------------------------
  function lastMessageId() {
    let max = 0;
    document.querySelectorAll("#timeline [data-message]").forEach((el) => {
      max = Math.max(max, Number(el.dataset.message));
    });
    return max;
  }

  function tidyBoundaries(timeline) {
    // A boundary is kept only where the case changes.
    let previousCase = null;
    let previousWasBoundary = false;
    for (const li of Array.from(timeline.children)) {
      if (li.classList.contains("case-boundary")) {
        if (li.dataset.boundary === previousCase || previousWasBoundary) li.remove();
        else {
          previousCase = li.dataset.boundary;
          previousWasBoundary = true;
        }
        continue;
      }
      previousWasBoundary = false;
      if (li.dataset.case) previousCase = li.dataset.case;
    }
  }

  if (casePage) {
    const timeline = document.getElementById("timeline");
    const caseUrl = "/inbox/case/" + caseId + "/";

    // A case opens at its newest message, above the sticky reply box (whether the
    // timeline scrolls itself, wide screens, or the page does, phones).
    function showNewest() {
      const reply = document.querySelector(".reply");
      if (reply) document.documentElement.style.setProperty("--reply-h", reply.offsetHeight + 16 + "px");
      timeline.scrollTop = timeline.scrollHeight;
      const last = timeline.lastElementChild;
      // Only when the page scrolls rather than the timeline (phones): otherwise the
      // case header would scroll out of sight for nothing.
      if (last && timeline.scrollHeight <= timeline.clientHeight + 1) last.scrollIntoView({ block: "end" });
    }
    showNewest();
    window.addEventListener("load", showNewest);

    const markRead = debounce(() => {
      fetch(caseUrl + "read/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      });
    }, 1000);

    function insertMessages(html) {
      const nearBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
      const incoming = fragment(html);
      for (const li of Array.from(incoming.children)) {
        const existing = li.id ? document.getElementById(li.id) : null;
        if (existing) existing.replaceWith(li);
        else timeline.appendChild(li);
      }
      tidyBoundaries(timeline);
      if (nearBottom) timeline.scrollTop = timeline.scrollHeight;
    }

    let timelineBusy = Promise.resolve();
    function refreshTimeline() {
      // One fetch at a time, so two quick events never append the same message twice.
      timelineBusy = timelineBusy.then(async () => {
        try {
          insertMessages(await fetchText(caseUrl + "?partial=timeline&after=" + lastMessageId()));
          markRead();
        } catch (e) {
          /* the next event or a reload catches up */
        }
      });
      return timelineBusy;
    }

    async function refreshMessage(id) {
      if (!document.getElementById("m-" + id)) return refreshTimeline();
      try {
        insertMessages(await fetchText(caseUrl + "?partial=timeline&message=" + id));
      } catch (e) {
        /* ignore */
      }
    }

    async function refreshPanel() {
      const panel = document.getElementById("case-panel");
      const focusedId = document.activeElement && panel.contains(document.activeElement) ? document.activeElement.id : null;
      try {
        const html = await fetchText(caseUrl + "?partial=panel");
        const fresh = fragment(html).firstElementChild;
        document.getElementById("case-panel").replaceWith(fresh);
        fresh.classList.add("flash");
        if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
      } catch (e) {
        /* ignore */
      }
    }

    async function refreshSidebar() {
      const live = document.getElementById("customer-live");
      if (!live) return;
      try {
        const fresh = fragment(await fetchText(caseUrl + "?partial=sidebar")).firstElementChild;
        live.replaceWith(fresh);
      } catch (e) {
        /* ignore: the next change or a reload catches up */
      }
    }

    const collision = document.getElementById("collision");
    let collisionTimer = null;
    let customerTypingTimer = null;
    handlers.push((event, data) => {
      const message = data.message || {};
      if (event === "message.created" && Number(message.thread) === threadId) {
        if (message.direction === "in") document.getElementById("customer-typing").hidden = true;
        refreshTimeline();
      }
      else if (event === "message.updated" && Number(message.thread) === threadId) refreshMessage(message.id);
      else if (event === "case.updated" && data.case && Number(data.case.thread) === threadId) {
        if (Number(data.case.id) === caseId) refreshPanel();
        refreshSidebar();
        refreshTimeline();
      } else if (event === "customer.merged" &&
                 (Number(data.merged) === customerId || Number(data.survivor) === customerId)) {
        location.reload();
      } else if (event === "visitor.typing" && Number(data.case) === caseId) {
        const typing = document.getElementById("customer-typing");
        typing.textContent = typing.dataset.text;
        typing.hidden = !data.typing;
        clearTimeout(customerTypingTimer);
        customerTypingTimer = setTimeout(() => (typing.hidden = true), 6000);
      } else if (event === "agent.typing" && Number(data.case) === caseId && Number(data.user) !== me) {
        collision.textContent = interpolate(gettext("%(name)s is replying…"), { name: data.name || gettext("A colleague") }, true);
        collision.hidden = false;
        clearTimeout(collisionTimer);
        collisionTimer = setTimeout(() => (collision.hidden = true), 6000);
      }
    });

    // Forms posted in place (case actions, retry, merge confirm).
    document.addEventListener("submit", async (e) => {
      const form = e.target;
      if (!form.matches("form[data-ajax]")) return;
      e.preventDefault();
      if (form.dataset.confirm) {
        // A send that may have reached the customer: resend only on the agent's word.
        if (!window.confirm(form.dataset.confirm)) return;
        let confirmed = form.querySelector("input[name=confirmed]");
        if (!confirmed) {
          confirmed = document.createElement("input");
          confirmed.type = "hidden";
          confirmed.name = "confirmed";
          form.appendChild(confirmed);
        }
        confirmed.value = "yes";
      }
      form.querySelectorAll("[data-tz-offset]").forEach((i) => (i.value = String(new Date().getTimezoneOffset())));
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      ownActionUntil = Date.now() + 3000;
      const data = await postForm(form);
      if (button) button.disabled = false;
      if (!data.ok) {
        notice(data.error || gettext("That did not work."), "notice-error");
        refreshPanel();
        return;
      }
      if (form.matches("[data-merge-confirm]")) {
        location.reload();
        return;
      }
      if (form._undo) {
        offerUndo(form, form._undo);
        form._undo = null;
      }
      await Promise.all([refreshPanel(), refreshSidebar(), refreshTimeline()]);
      refreshCounts();
    });

    // Case actions apply as soon as a field changes; cheap ones can be undone.
    function undoData(form, field) {
      if (form.matches("[data-autosubmit-form]")) {
        const ids = (form.dataset.undoLabels || "").split(",").filter(Boolean);
        return { labels: ids };
      }
      if (field && field.dataset.undo !== undefined) return { [field.name]: [field.dataset.undo] };
      return null;
    }

    function offerUndo(form, previous) {
      const box = notice(gettext("Done."), "undo", 8000);
      const undo = document.createElement("button");
      undo.type = "button";
      undo.textContent = gettext("Undo");
      undo.dataset.undo = "1";
      undo.addEventListener("click", async () => {
        box.remove();
        const formData = new FormData();
        formData.append("csrfmiddlewaretoken", csrfToken());
        for (const [name, values] of Object.entries(previous)) values.forEach((v) => formData.append(name, v));
        ownActionUntil = Date.now() + 3000;
        const response = await fetch(form.action, {
          method: "POST", body: formData, credentials: "same-origin",
          headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrfToken(), Accept: "application/json" },
        });
        const data = await response.json().catch(() => ({ ok: false }));
        if (!data.ok) notice(data.error || gettext("That could not be undone."), "notice-error");
        await Promise.all([refreshPanel(), refreshSidebar(), refreshTimeline()]);
        refreshCounts();
      });
      box.insertBefore(undo, box.lastChild);
    }

    document.addEventListener("change", (e) => {
      const field = e.target;
      if (field.matches("[data-status-select]")) {
        field.form.classList.toggle("snoozing", field.value === "snoozed");
        // Snoozing waits for the time it lasts until.
        if (field.value === "snoozed") {
          const until = field.form.querySelector("input[name=snoozed_until]");
          if (until) until.focus();
          return;
        }
      }
      const form = field.form;
      if (!form || !form.matches("form[data-ajax]") || !form.closest("[data-panel]")) return;
      if (!(field.matches("[data-autosubmit]") || form.matches("[data-autosubmit-form]"))) return;
      if (field.name === "snoozed_until" && !field.value) return;
      form._undo = undoData(form, field.name === "snoozed_until" ? form.querySelector("[data-status-select]") : field);
      form.requestSubmit();
    });

    // Reply box.
    const replyForm = document.getElementById("reply-form");
    const replySection = replyForm.closest(".reply");
    const textarea = document.getElementById("reply-body");
    const channelSelect = document.getElementById("reply-channel");
    const ruleBox = document.getElementById("window-rule");
    const templateFields = document.getElementById("template-fields");
    const replyError = document.getElementById("reply-error");
    const sendButton = document.getElementById("send-button");
    const canned = JSON.parse(document.getElementById("canned-data").textContent || "[]");

    function noteMode() {
      return replyForm.querySelector("input[name=mode]:checked").value === "note";
    }

    // Files: the picker and drag and drop fill one list, checked against the chosen
    // channel (types, size) before anything is sent; the server checks again.
    const fileInput = document.getElementById("reply-files");
    const fileList = document.getElementById("reply-files-list");
    const filesRule = document.getElementById("files-rule");
    let chosen = new DataTransfer();

    function channelFiles() {
      const option = channelSelect.selectedOptions[0];
      if (!option) return { sends: false, types: [] };
      return { sends: Boolean(option.dataset.files), types: (option.dataset.fileTypes || "").split(",").filter(Boolean) };
    }

    function fileProblem(file) {
      const rule = channelFiles();
      const option = channelSelect.selectedOptions[0];
      const channel = option ? option.textContent.split(" → ")[0] : "";
      if (!rule.sends) return interpolate(gettext("%(channel)s cannot send files from the helpdesk yet: send a link instead."), { channel: channel }, true);
      const maxBytes = Number(fileInput.dataset.maxBytes || 0);
      if (maxBytes && file.size > maxBytes) {
        return interpolate(gettext("%(name)s is too big: the limit is %(limit)s."), { name: file.name, limit: filesRule.dataset.limit }, true);
      }
      const type = (file.type || "").toLowerCase();
      if (rule.types.length && !rule.types.includes(type)) {
        return interpolate(gettext("%(name)s (%(type)s) cannot be sent on %(channel)s."),
                           { name: file.name, type: type || gettext("unknown type"), channel: channel }, true);
      }
      return "";
    }

    function showFiles() {
      fileInput.files = chosen.files;
      fileList.textContent = "";
      const problems = [];
      Array.from(chosen.files).forEach((file, index) => {
        const li = document.createElement("li");
        const problem = fileProblem(file);
        if (problem) {
          li.className = "bad";
          problems.push(problem);
        }
        li.appendChild(document.createTextNode("📎 " + file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB) "));
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "×";
        remove.setAttribute("aria-label", interpolate(gettext("Remove %(name)s"), { name: file.name }, true));
        remove.addEventListener("click", () => {
          const next = new DataTransfer();
          Array.from(chosen.files).forEach((f, i) => i !== index && next.items.add(f));
          chosen = next;
          showFiles();
        });
        li.appendChild(remove);
        fileList.appendChild(li);
      });
      replyError.hidden = !problems.length;
      replyError.textContent = problems.join(" ");
      return problems;
    }

    function addFiles(files) {
      for (const file of files) chosen.items.add(file);
      showFiles();
    }

    fileInput.addEventListener("change", () => {
      // The picker replaces the input's files: keep what was already chosen.
      const picked = Array.from(fileInput.files);
      addFiles(picked);
    });
    replySection.addEventListener("dragover", (e) => {
      if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
      e.preventDefault();
      replySection.classList.add("dropping");
    });
    replySection.addEventListener("dragleave", (e) => {
      if (!replySection.contains(e.relatedTarget)) replySection.classList.remove("dropping");
    });
    replySection.addEventListener("drop", (e) => {
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      e.preventDefault();
      replySection.classList.remove("dropping");
      if (noteMode()) {
        replyError.textContent = gettext("Files go with a reply to the customer, not a note.");
        replyError.hidden = false;
        return;
      }
      addFiles(e.dataTransfer.files);
    });

    function showFilesRule() {
      const rule = channelFiles();
      let text = rule.sends
        ? interpolate(gettext("Up to %(limit)s each."), { limit: filesRule.dataset.limit }, true)
        : gettext("This channel cannot send files from the helpdesk yet.");
      filesRule.textContent = text;
      fileInput.disabled = !rule.sends;
      fileInput.closest(".attach").classList.toggle("disabled", !rule.sends);
      if (chosen.files.length) showFiles();
    }

    function showRule() {
      const option = channelSelect.selectedOptions[0];
      const rule = option ? option.dataset.rule : "";
      ruleBox.hidden = !rule;
      ruleBox.textContent = rule ? "⚠ " + rule : "";
      templateFields.hidden = !(option && option.dataset.templates);
      if (rule && option.dataset.templates) templateFields.open = true;
      showFilesRule();
    }
    channelSelect.addEventListener("change", showRule);
    showRule();

    replyForm.addEventListener("change", (e) => {
      if (e.target.name === "mode") {
        replySection.classList.toggle("note-mode", noteMode());
        sendButton.textContent = noteMode() ? gettext("Add note") : gettext("Send");
      }
    });

    let lastTyping = 0;
    textarea.addEventListener("input", () => {
      const now = Date.now();
      if (now - lastTyping > 2500 && textarea.value.trim()) {
        lastTyping = now;
        sendSocket({ action: "typing", case: caseId, to_customer: !noteMode() });
      }
    });

    function insertAtCursor(text, replaceFrom) {
      const start = replaceFrom !== undefined ? replaceFrom : textarea.selectionStart;
      const end = textarea.selectionEnd;
      textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
      textarea.selectionStart = textarea.selectionEnd = start + text.length;
      textarea.focus();
    }

    const cannedInput = document.getElementById("canned");
    function useCanned() {
      const hit = canned.find((c) => c.shortcut === cannedInput.value.trim().replace(/^\//, ""));
      if (!hit) return false;
      insertAtCursor(hit.text);
      cannedInput.value = "";
      return true;
    }
    cannedInput.addEventListener("change", useCanned);
    cannedInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        useCanned();
      }
    });

    textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        replyForm.requestSubmit();
        return;
      }
      if (e.key === "Escape") {
        textarea.blur();
        return;
      }
      if (e.key === "Tab" && !e.shiftKey) {
        // "/shortcut" + Tab expands a canned response in place.
        const before = textarea.value.slice(0, textarea.selectionStart);
        const match = before.match(/(^|\s)\/([\w-]+)$/);
        const hit = match && canned.find((c) => c.shortcut === match[2]);
        if (hit) {
          e.preventDefault();
          insertAtCursor(hit.text, textarea.selectionStart - match[2].length - 1);
        }
      }
    });

    replyForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      replyError.hidden = true;
      if (!noteMode() && chosen.files.length && showFiles().length) return;
      if (noteMode()) fileInput.value = "";
      sendButton.disabled = true;
      const data = await postForm(replyForm);
      sendButton.disabled = false;
      if (!data.ok) {
        // Nothing is lost: the text and the files stay for the agent to fix and resend.
        replyError.textContent = data.error || gettext("Not sent.");
        replyError.hidden = false;
        if (!noteMode()) fileInput.files = chosen.files;
        return;
      }
      chosen = new DataTransfer();
      showFiles();
      textarea.value = "";
      replyForm.querySelectorAll("#template-fields input[name=template_name], #tpl-params").forEach((i) => (i.value = ""));
      await refreshTimeline();
      timeline.scrollTop = timeline.scrollHeight;
    });

    // Emoji picker: our own list (static/inbox/emoji.js, generated), inserted at the cursor.
    const emojiButton = document.getElementById("emoji-button");
    const emojiPicker = document.getElementById("emoji-picker");
    const emojiSearch = document.getElementById("emoji-search");
    const emojiGrid = document.getElementById("emoji-grid");
    let caret = null;
    function drawEmoji() {
      const q = emojiSearch.value.trim().toLowerCase();
      const all = window.HELPDESK_EMOJI || [];
      emojiGrid.textContent = "";
      for (const [char, name] of all.filter(([, n]) => !q || n.includes(q)).slice(0, 240)) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "emoji";
        b.textContent = char;
        b.title = name;
        b.setAttribute("aria-label", name);
        b.setAttribute("role", "option");
        emojiGrid.appendChild(b);
      }
    }
    function closeEmoji() {
      emojiPicker.hidden = true;
      emojiButton.setAttribute("aria-expanded", "false");
    }
    emojiButton.addEventListener("click", () => {
      if (!emojiPicker.hidden) return closeEmoji();
      caret = [textarea.selectionStart, textarea.selectionEnd];
      emojiPicker.hidden = false;
      emojiButton.setAttribute("aria-expanded", "true");
      drawEmoji();
      emojiSearch.focus();
    });
    emojiSearch.addEventListener("input", debounce(drawEmoji, 120));
    emojiPicker.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        closeEmoji();
        emojiButton.focus();
      }
    });
    emojiGrid.addEventListener("click", (e) => {
      const b = e.target.closest("button.emoji");
      if (!b) return;
      if (caret) [textarea.selectionStart, textarea.selectionEnd] = caret;
      insertAtCursor(b.textContent);
      closeEmoji();
    });

    // Merge with…
    const mergeSearch = document.getElementById("merge-search");
    const mergeResults = document.getElementById("merge-results");
    const mergePreview = document.getElementById("merge-preview");
    mergeSearch.addEventListener("input", debounce(async () => {
      const q = mergeSearch.value.trim();
      mergeResults.textContent = "";
      if (q.length < 2) return;
      const url = "/inbox/customers/?q=" + encodeURIComponent(q) + "&exclude=" + mergeSearch.dataset.exclude;
      const data = JSON.parse(await fetchText(url));
      if (!data.results.length) {
        const li = document.createElement("li");
        li.textContent = gettext("Nobody found.");
        mergeResults.appendChild(li);
      }
      for (const result of data.results) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = result.name + " — " + result.identities.join(", ");
        button.addEventListener("click", async () => {
          mergePreview.innerHTML = await fetchText(mergeSearch.dataset.previewUrl + "?other=" + result.id);
          const confirm = mergePreview.querySelector("[data-merge-confirm] button[type=submit]");
          if (confirm) confirm.focus();
        });
        li.appendChild(button);
        mergeResults.appendChild(li);
      }
    }, 250));
    mergePreview.addEventListener("click", (e) => {
      if (e.target.matches("[data-merge-cancel]")) {
        mergePreview.textContent = "";
        mergeSearch.focus();
      }
    });
  }

  // Keyboard shortcuts ---------------------------------------------------------------
  const dialog = document.getElementById("shortcuts");
  document.querySelectorAll("[data-shortcuts]").forEach((b) => b.addEventListener("click", () => dialog.showModal()));
  let pendingG = false;

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable=true]")) return;
    if (dialog.open) return;
    const key = e.key;
    if (pendingG) {
      pendingG = false;
      if (key === "i") location.href = "/inbox/";
      return;
    }
    if (key === "?") {
      e.preventDefault();
      dialog.showModal();
    } else if (key === "g") {
      pendingG = true;
    } else if (listRoot && (key === "j" || key === "k")) {
      e.preventDefault();
      select(selected + (key === "j" ? 1 : -1));
    } else if (listRoot && key === "o" && selected >= 0) {
      rows()[selected].querySelector("a").click();
    } else if (listRoot && key === "/") {
      e.preventDefault();
      document.getElementById("inbox-search").focus();
    } else if (casePage && key === "n") {
      location.href = casePage.dataset.nextUrl;
    } else if (casePage && key === "a") {
      const button = document.querySelector("[data-action=assign-me]:not([disabled])");
      if (button) button.click();
    } else if (casePage && key === "r") {
      const button = document.querySelector("[data-action=resolve]");
      if (button) button.click();
    } else if (casePage && key === "c") {
      e.preventDefault();
      document.getElementById("reply-body").focus();
    }
  });

  // Remote images in customer email are requested only when the agent asks
  // (tracking pixels): the server renders them with data-remote-src, no src.
  document.addEventListener("click", (e) => {
    const button = e.target.closest("[data-load-images]");
    if (!button) return;
    const bubble = button.closest(".bubble");
    if (!bubble) return;
    bubble.querySelectorAll("img[data-remote-src]").forEach((img) => {
      img.setAttribute("referrerpolicy", "no-referrer");
      img.src = img.dataset.remoteSrc;
      img.removeAttribute("data-remote-src");
    });
    const bar = button.closest(".remote-images");
    if (bar) bar.remove();
  });

  // Waiting times stay current without a reload.
  function ago(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return "<1 min";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " d " + (hours % 24) + " h";
  }
  setInterval(() => {
    document.querySelectorAll(".waiting[data-since]").forEach((el) => {
      el.textContent = interpolate(gettext("waiting %(time)s"), { time: ago(el.dataset.since) }, true);
    });
  }, 30000);

  connect();
})();
