// Shows Herald's web push notifications ({"title", "body", "url"}) and opens the post on click.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data.text() }; }
  event.waitUntil(self.registration.showNotification(data.title || "Herald", {
    body: data.body || "", data: { url: data.url || self.registration.scope }
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = event.notification.data && event.notification.data.url;
  if (url && /^https?:/.test(url)) event.waitUntil(self.clients.openWindow(url));
});
