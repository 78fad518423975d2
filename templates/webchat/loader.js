/* Helpdesk web chat loader: the one script a site embeds.
 *
 * It draws only the launcher and the iframe, both inside a shadow root, so the
 * host page's CSS cannot reach them and ours cannot leak out. Everything else
 * (the conversation, the session, the socket) lives in the frame on our origin,
 * which the host page cannot script; the two talk by postMessage with the
 * origin checked on both sides.
 */
(function () {
  "use strict";

  var CONFIG = {{ config_json|safe }};
  var HOST_ID = "helpdesk-widget-" + CONFIG.key;
  // The snippet pasted twice (or a SPA re-running it) must not draw two bubbles.
  if (document.getElementById(HOST_ID)) return;

  var frameOrigin;
  try {
    frameOrigin = new URL(CONFIG.frame_url).origin;
  } catch (err) {
    return;
  }

  // The host page may have set {user, hash} before this script loaded.
  var preset = window.HelpdeskWidget || {};
  var state = {
    user: preset.user || null,
    hash: preset.hash || null,
    open: false,
    unread: 0
  };

  var host, root, launcher, badge, iframe, panel;

  function post(message) {
    if (!iframe || !iframe.contentWindow) return;
    iframe.contentWindow.postMessage(message, frameOrigin);
  }

  function sendInit() {
    post({
      type: "helpdesk:init",
      user: state.user,
      hash: state.hash,
      page: location.href,
      title: document.title,
      open: state.open
    });
  }

  function isMobile() {
    return window.matchMedia && window.matchMedia("(max-width: 480px)").matches;
  }

  function renderBadge() {
    var count = state.open ? 0 : state.unread;
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = count === 0;
    // Open, the launcher's click closes the panel: its name says so.
    var label = state.open ? CONFIG.close_label || CONFIG.label : CONFIG.label;
    launcher.setAttribute("aria-label", count ? label + " (" + count + ")" : label);
    launcher.title = label;
  }

  function setOpen(open, fromFrame) {
    if (state.open === open) return;
    if (!host) {
      // open() called before the body existed: build() applies it.
      state.open = open;
      return;
    }
    state.open = open;
    host.setAttribute("data-open", open ? "1" : "0");
    panel.classList.toggle("open", open);
    panel.setAttribute("aria-hidden", open ? "false" : "true");
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    launcher.classList.toggle("active", open);
    if (!fromFrame) post({ type: open ? "helpdesk:open" : "helpdesk:close" });
    renderBadge();
    if (open) {
      iframe.focus();
    } else if (fromFrame || isMobile()) {
      // The close button was inside the frame: give focus back where it started.
      launcher.focus();
    }
  }

  function build() {
    // A tag of our own, not a div: a theme's `div {…}` rules cannot hide or move it.
    host = document.createElement("helpdesk-chat");
    host.id = HOST_ID;
    host.setAttribute("data-open", "0");
    // Open mode only so tests and assistive tools can see in; isolation comes
    // from the shadow boundary either way.
    root = host.attachShadow({ mode: "open" });
    var side = CONFIG.position === "left" ? "left" : "right";
    var style = document.createElement("style");
    style.textContent =
      ":host{all:initial;display:block;position:fixed;z-index:2147483000;bottom:0;" + side + ":0;}" +
      "*{box-sizing:border-box;}" +
      ".launcher{position:fixed;bottom:20px;" + side + ":20px;width:60px;height:60px;border-radius:50%;" +
      "border:0;padding:0;margin:0;cursor:pointer;background:var(--hw-color);color:#fff;" +
      "box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;" +
      "transition:transform .15s ease;font:600 14px/1 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;}" +
      ".launcher:hover{transform:scale(1.06);}" +
      ".launcher:focus-visible{outline:3px solid #111;outline-offset:3px;}" +
      ".launcher svg{width:28px;height:28px;fill:currentColor;pointer-events:none;}" +
      ".launcher .icon-close{display:none;}" +
      ".launcher.active .icon-chat{display:none;}.launcher.active .icon-close{display:block;}" +
      ".badge{position:absolute;top:-4px;" + (side === "right" ? "left" : "right") + ":-4px;min-width:22px;height:22px;" +
      "padding:0 6px;border-radius:11px;background:#d1242f;color:#fff;font-size:12px;line-height:22px;" +
      "text-align:center;box-shadow:0 0 0 2px #fff;}" +
      ".badge[hidden]{display:none;}" +
      ".panel{position:fixed;bottom:92px;" + side + ":20px;width:380px;height:600px;" +
      "max-height:calc(100vh - 112px);max-width:calc(100vw - 40px);border-radius:14px;overflow:hidden;" +
      "box-shadow:0 10px 40px rgba(0,0,0,.28);background:#fff;visibility:hidden;opacity:0;" +
      "transform:translateY(12px);transition:opacity .15s ease,transform .15s ease,visibility 0s linear .15s;}" +
      ".panel.open{visibility:visible;opacity:1;transform:none;transition:opacity .15s ease,transform .15s ease;}" +
      "iframe{border:0;width:100%;height:100%;display:block;background:#fff;color-scheme:normal;}" +
      "@media (max-width:480px){" +
      ".panel{inset:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0;bottom:0;}" +
      // Full screen: the frame's own close button takes over from the launcher.
      ":host([data-open='1']) .launcher{display:none;}" +
      "}" +
      "@media (prefers-reduced-motion:reduce){.panel,.launcher{transition:none;}}";
    root.appendChild(style);
    host.style.setProperty("--hw-color", CONFIG.color || "#1f6feb");

    panel = document.createElement("div");
    panel.className = "panel";
    panel.setAttribute("aria-hidden", "true");
    panel.id = "panel";
    iframe = document.createElement("iframe");
    iframe.title = CONFIG.label;
    iframe.setAttribute("allow", "clipboard-write");
    iframe.src =
      CONFIG.frame_url +
      (CONFIG.frame_url.indexOf("?") === -1 ? "?" : "&") +
      "origin=" + encodeURIComponent(location.origin) +
      "&lang=" + encodeURIComponent(navigator.language || CONFIG.language || "");
    iframe.addEventListener("load", sendInit);
    panel.appendChild(iframe);

    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher";
    launcher.setAttribute("aria-controls", "panel");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", CONFIG.label);
    launcher.title = CONFIG.label;
    launcher.innerHTML =
      '<svg class="icon-chat" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2z"/></svg>' +
      '<svg class="icon-close" viewBox="0 0 24 24" aria-hidden="true"><path d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"/></svg>';
    badge = document.createElement("span");
    badge.className = "badge";
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(badge);
    launcher.addEventListener("click", function () {
      setOpen(!state.open, false);
    });

    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(host);
    if (state.open) {
      state.open = false;
      setOpen(true, false);
    }
  }

  window.addEventListener("message", function (event) {
    // Only our own frame may drive the launcher: any other window can post here.
    if (event.origin !== frameOrigin || !iframe || event.source !== iframe.contentWindow) return;
    var data = event.data;
    if (!data || typeof data !== "object") return;
    switch (data.type) {
      case "helpdesk:ready":
        sendInit();
        break;
      case "helpdesk:unread":
        state.unread = Math.max(0, parseInt(data.count, 10) || 0);
        renderBadge();
        break;
      case "helpdesk:open":
        setOpen(true, true);
        break;
      case "helpdesk:close":
        setOpen(false, true);
        break;
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && state.open) setOpen(false, false);
  });

  // Single-page sites change the URL without reloading this script.
  function pageChanged() {
    post({ type: "helpdesk:page", page: location.href, title: document.title });
  }
  window.addEventListener("popstate", pageChanged);
  window.addEventListener("hashchange", pageChanged);

  var api = {
    user: state.user,
    hash: state.hash,
    setUser: function (user, hash) {
      state.user = user || null;
      state.hash = hash || null;
      api.user = state.user;
      api.hash = state.hash;
      post({ type: "helpdesk:user", user: state.user, hash: state.hash });
    },
    open: function () {
      setOpen(true, false);
    },
    close: function () {
      setOpen(false, false);
    }
  };
  window.HelpdeskWidget = api;

  if (document.body) {
    build();
  } else {
    document.addEventListener("DOMContentLoaded", build);
  }
})();
