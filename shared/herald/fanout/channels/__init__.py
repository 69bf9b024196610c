"""Push fan-out: Web Push to browsers (RFC 8030, 8291, 8292).

* :mod:`herald.fanout.channels.payload`: the notification and its JSON, always within one push message.
* :mod:`herald.fanout.channels.vapid`: the VAPID key, its loader, and the per-origin token cache.
* :mod:`herald.fanout.channels.webpush`: the sender (aes128gcm, pooled connections) returning a
  :class:`herald.fanout.delivery.DeliveryResult`.

Nothing is imported here, so a function that never pushes does not load ``cryptography``.
"""
