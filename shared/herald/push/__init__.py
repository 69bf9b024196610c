"""Push fan-out: Web Push to browsers (RFC 8030, 8291, 8292).

* :mod:`herald.push.payload`: the notification and its JSON, always within one push message.
* :mod:`herald.push.vapid`: the VAPID key, its loader, and the per-origin token cache.
* :mod:`herald.push.webpush`: the sender (aes128gcm, pooled connections) returning a
  :class:`herald.domain.delivery.DeliveryResult`.

Nothing is imported here, so a function that never pushes does not load ``cryptography``.
"""
