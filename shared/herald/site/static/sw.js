// Shows Herald's web push notifications ({"title", "body", "url", "post_id", "tag", "lang"}) and opens
// the post on click.
//
// The same post can arrive twice: a sender that dies after a push and before recording it sends
// that push again once its lease ends (docs/push.md, "Sending once per member"). So a notification
// carries the post's tag ("post-<id>"): a repeat replaces the one still shown instead of adding a
// second, without sound or vibration (renotify: false). And the tags of the last KEEP notifications
// shown are kept in IndexedDB, so a repeat of one the member already dismissed is not shown again.
var DB_NAME = "herald-notifications";
var STORE = "shown";
var KEEP = 100;

// Resolves true when tag is new (and now remembered), false when it was shown before. Without
// IndexedDB (or on any error) it resolves true: showing a repeat beats losing a notification.
function firstTime(tag) {
  return new Promise(function (resolve) {
    if (!tag || !self.indexedDB) { resolve(true); return; }
    var open;
    try { open = self.indexedDB.open(DB_NAME, 1); } catch (e) { resolve(true); return; }
    open.onupgradeneeded = function () { open.result.createObjectStore(STORE, { keyPath: "tag" }); };
    open.onerror = function () { resolve(true); };
    open.onsuccess = function () {
      var db = open.result, fresh = true, tx;
      try { tx = db.transaction(STORE, "readwrite"); } catch (e) { db.close(); resolve(true); return; }
      var store = tx.objectStore(STORE);
      var found = store.get(tag);
      found.onsuccess = function () {
        if (found.result) { fresh = false; return; }
        var all = store.getAll();
        all.onsuccess = function () {
          // Oldest first by a counter (Date.now() repeats within a millisecond): keep KEEP in all.
          var kept = all.result.sort(function (a, b) { return a.n - b.n; });
          var next = kept.length ? kept[kept.length - 1].n + 1 : 1;
          store.put({ tag: tag, n: next });
          kept.slice(0, Math.max(0, kept.length + 1 - KEEP)).forEach(function (old) { store.delete(old.tag); });
        };
      };
      tx.oncomplete = function () { db.close(); resolve(fresh); };
      tx.onabort = function () { db.close(); resolve(true); };
    };
  });
}

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data.text() }; }
  var tag = typeof data.tag === "string" && data.tag ? data.tag
    : (data.post_id ? "post-" + data.post_id : "");
  var options = { body: data.body || "", data: { url: data.url || self.registration.scope } };
  if (tag) { options.tag = tag; options.renotify = false; }
  if (typeof data.lang === "string" && data.lang) options.lang = data.lang;
  event.waitUntil(firstTime(tag).then(function (first) {
    if (!first) return undefined;
    return self.registration.showNotification(data.title || "Herald", options);
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (url && /^https?:/.test(url)) event.waitUntil(self.clients.openWindow(url));
});
