// The tablet page's service worker: keeps the page itself (never any record or API answer) so
// that a venue without a connection can still open it and queue records. Network first, so a
// new version of the page arrives as soon as the network does.
'use strict';

const CACHE = 'openvrs-venue-v1';
const SHELL = ['./', 'app.js', 'style.css', 'manifest.webmanifest'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  const shell = event.request.method === 'GET' && url.origin === location.origin &&
    url.pathname.startsWith(new URL('./', self.registration.scope).pathname);
  if (!shell) return; // the API is never cached
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});
