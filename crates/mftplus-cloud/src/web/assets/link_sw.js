// The share-link service worker (served as /s/sw.js, scope /s/; decision 0023). A page cannot
// write a file itself, so this worker answers the page's navigation to /s/dl/<id>/<name> with a
// download whose body is a stream; the stream's bytes come from the page's download worker
// (link_worker.js: fetch, decrypt, verify) through a MessagePort, one chunk each time the
// browser has room for more, so memory stays at a few chunks whatever the file's size. The
// worker ends the stream only after the manifest checked out, and fails it on any error, so the
// browser marks the download failed and keeps no complete file.
"use strict";

const downloads = new Map();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const job = event.data || {};
  const [source, reply] = event.ports;
  if (job.type !== "download" || !source || !reply) {
    return; // a keep-alive ping from a page whose download is running
  }
  downloads.set(job.id, { name: job.name, size: job.size, source });
  reply.postMessage({ type: "ready" });
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const match = url.pathname.match(/^\/s\/dl\/([0-9a-f]{32})(\/|$)/);
  if (!match || url.origin !== self.location.origin) {
    return; // everything else goes to the network as usual
  }
  const job = downloads.get(match[1]);
  downloads.delete(match[1]);
  if (!job) {
    event.respondWith(
      new Response(
        "This download is no longer prepared: go back to the link's page and press Download again.",
        { status: 410, headers: { "content-type": "text/plain; charset=utf-8" } },
      ),
    );
    return;
  }
  event.respondWith(respond(job));
});

// A stream that asks the download worker for one chunk per pull.
function respond(job) {
  let waiting = null;
  // The end (after the last chunk) or a failure may come before the stream asks again.
  let early = null;
  job.source.onmessage = (event) => {
    const message = event.data;
    const pending = waiting;
    waiting = null;
    if (pending) pending(message);
    else if (message.type !== "chunk") early = message;
  };
  const stream = new ReadableStream(
    {
      pull(controller) {
        return new Promise((resolve) => {
          waiting = (message) => {
            if (message.type === "chunk") {
              controller.enqueue(message.bytes);
              resolve();
              return;
            }
            if (message.type === "end") {
              controller.close();
            } else {
              controller.error(new Error(message.message || "the download failed"));
            }
            resolve();
          };
          if (early) waiting(early);
          else job.source.postMessage({ type: "pull" });
        });
      },
      cancel() {
        job.source.postMessage({ type: "cancel" });
      },
    },
    { highWaterMark: 0 },
  );
  const headers = {
    "content-type": "application/octet-stream",
    "content-disposition": "attachment; filename*=UTF-8''" + encodeURIComponent(job.name),
    "content-length": String(job.size),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  return new Response(stream, { headers });
}
