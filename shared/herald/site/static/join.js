// The join button: subscribe (Web Push, or the subscription the page was published with), join
// through the API, then show the new member count. No inline script, no framework.
(function () {
  "use strict";
  var button = document.querySelector("button[data-join]");
  if (!button || !window.fetch) return;
  var status = document.querySelector(".join-status");
  var data = button.dataset;
  var say = function (text) { if (status) status.textContent = text; };

  function keyBytes(base64url) {
    var s = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(s + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function subscription() {
    if (data.demoSubscription) return Promise.resolve(JSON.parse(data.demoSubscription));
    if (!data.vapidKey || !("serviceWorker" in navigator) || !("PushManager" in window)) {
      return Promise.resolve(null);
    }
    return navigator.serviceWorker.register(data.sw).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(data.vapidKey)
      });
    }).then(function (sub) {
      var json = sub.toJSON();
      return { endpoint: json.endpoint, keys: json.keys };
    });
  }

  function shown() {
    var el = document.querySelector("[data-members]");
    return el ? parseInt(el.getAttribute("data-members") || "0", 10) || 0 : 0;
  }

  // atLeast: the count the page knows it is at least (the member who just joined). Counts come
  // from the members table's stream and lag a join by a second or two, so a read right after a
  // new join may not hold it yet: the page shows the member counted.
  function refresh(atLeast) {
    return fetch(data.community, { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (community) {
        if (!community) return;
        var members = community.members, display = community.members_display;
        if (atLeast && members < atLeast) {
          members = atLeast;
          // Below a thousand the display is the number itself; above, one more rarely changes it.
          if (members < 1000) display = String(members);
        }
        document.querySelectorAll("[data-members]").forEach(function (el) {
          el.textContent = display;
          el.setAttribute("data-members", String(members));
          el.setAttribute("title", String(members));
        });
      });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    subscription().then(function (sub) {
      if (!sub) { say(data.msgUnsupported); return null; }
      // A repeat join from this browser presents the member's token: without it the API gives
      // out nothing about the member who holds the subscription (409).
      var saved = null;
      try { saved = JSON.parse(localStorage.getItem("herald:" + data.api) || "null"); } catch (e) { saved = null; }
      var headers = { "Content-Type": "application/json" };
      if (saved && saved.token) headers["Authorization"] = "Bearer " + saved.token;
      var before = shown(), created = false;
      return fetch(data.api, {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ web_push: sub })
      }).then(function (r) {
        created = r.status === 201;
        if (r.status === 409) return saved && saved.member_id ? saved : { member_id: "" };
        if (!r.ok) throw new Error("join: " + r.status);
        return r.json();
      }).then(function (member) {
        try { if (member.token) localStorage.setItem("herald:" + data.api, JSON.stringify(member)); } catch (e) { /* private mode */ }
        button.setAttribute("data-joined", member.member_id);
        say(data.msgJoined);
        return refresh(created ? before + 1 : 0);
      });
    }).catch(function () { say(data.msgFailed); }).then(function () { button.disabled = false; });
  });
  button.hidden = false;
})();
