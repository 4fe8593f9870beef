// The share-link download worker (a dedicated worker the link's page starts; decision 0023).
// It fetches the sealed chunks with the open's ticket (a couple in flight), opens each with
// AES-256-GCM under its STREAM nonce, checks its length, and keeps the content digest the
// manifest states. It hands the plaintext, chunk by chunk and only when asked, to the service
// worker's download stream through a MessagePort (the buffers are transferred, not copied).
// The last chunk is handed over only after the size, the chunk count and the digest matched;
// on any failure the stream is told to fail, so the browser keeps no complete file.
//
// Why a worker of its own: in the service worker, fetching and decrypting competed on one
// thread with feeding the browser's download, at a third of the speed; here they run beside it.
"use strict";

importScripts("/static/sha256.js");

const CHUNKS_IN_FLIGHT = 2;
const TAG_LEN = 16;
const CHUNK_DIGEST_LABEL = new TextEncoder().encode("mftplus-stream-v2 chunk-digest");

// The 12-byte nonce of chunk `index`: the index as an 11-byte big-endian number, then 1 for
// the last chunk, else 0 (docs/stream-format.md §5).
function chunkNonce(index, last) {
  const nonce = new Uint8Array(12);
  let rest = index;
  for (let at = 10; at >= 3 && rest > 0; at--) {
    nonce[at] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

class Download {
  constructor(job, sink) {
    this.job = job;
    this.sink = sink;
    this.next = 0;
    this.inFlight = [];
    this.size = 0;
    this.chunks = 0;
    this.aborter = new AbortController();
    this.over = false;
    // Version 1: SHA-256 of the plaintext; version 2: SHA-256 of the label and each sealed
    // chunk's SHA-256, in order.
    this.plainHash = job.version === 1 ? new self.MftSha256() : null;
    this.chunkDigests = [];
    sink.onmessage = (event) => this.onSink(event.data);
  }

  onSink(message) {
    if (message.type === "pull") {
      this.pull();
    } else if (message.type === "cancel") {
      this.fail("the download was cancelled");
    }
  }

  fill() {
    while (this.inFlight.length < CHUNKS_IN_FLIGHT && this.next < this.job.chunkCount) {
      const opening = this.open(this.next++);
      opening.catch(() => {}); // handled when its turn comes
      this.inFlight.push(opening);
    }
  }

  fail(reason) {
    if (this.over) return;
    this.over = true;
    this.failure = reason;
    this.aborter.abort();
    this.inFlight = [];
    this.sink.postMessage({ type: "error", message: reason });
    self.postMessage({ type: "failed", message: reason });
  }

  // One chunk for the stream, which asks for the next only when it has room.
  async pull() {
    if (this.over) {
      // Said before this pull: say it again, so the stream never waits for nothing.
      this.sink.postMessage(
        this.failure ? { type: "error", message: this.failure } : { type: "end" },
      );
      return;
    }
    try {
      this.fill();
      const opening = this.inFlight.shift();
      if (!opening) throw new Error("the stream ended before its last chunk");
      const chunk = await opening;
      this.fill();
      this.size += chunk.plain.length;
      this.chunks += 1;
      if (this.plainHash) this.plainHash.update(chunk.plain);
      else this.chunkDigests.push(chunk.digest);
      if (chunk.last) await this.check();
      if (this.over) return;
      this.sink.postMessage({ type: "chunk", bytes: chunk.plain }, [chunk.plain.buffer]);
      if (chunk.last) {
        this.over = true;
        this.sink.postMessage({ type: "end" });
        self.postMessage({ type: "done", bytes: this.size });
      } else {
        self.postMessage({ type: "progress", bytes: this.size, size: this.job.size });
      }
    } catch (err) {
      this.fail(err.message || String(err));
    }
  }

  // Fetches and opens chunk `index`: authenticated, of the length a correct writer produces.
  async open(index) {
    const job = this.job;
    const answer = await fetch(`/api/v1/shared/${job.token}/chunks/${index}`, {
      headers: { "x-link-ticket": job.ticket },
      cache: "no-store",
      signal: this.aborter.signal,
    });
    if (!answer.ok) {
      let message = `the server refused chunk ${index} (HTTP ${answer.status})`;
      try {
        const body = await answer.json();
        if (body.error) message = `${body.error.message} (${body.error.code})`;
      } catch (_) {
        // not JSON: keep the status
      }
      throw new Error(message);
    }
    const sealed = new Uint8Array(await answer.arrayBuffer());
    if (sealed.length > job.chunkSize + TAG_LEN || sealed.length < TAG_LEN) {
      throw new Error(`chunk ${index} has an impossible length (${sealed.length} bytes)`);
    }
    const last = index === job.chunkCount - 1;
    // Decryption and (version 2) the sealed chunk's hash run side by side in WebCrypto.
    const hashing = job.version === 1 ? Promise.resolve(null) : crypto.subtle.digest("SHA-256", sealed);
    hashing.catch(() => {});
    let plain;
    try {
      plain = new Uint8Array(
        await crypto.subtle.decrypt({ name: "AES-GCM", iv: chunkNonce(index, last) }, job.key, sealed),
      );
    } catch (_) {
      throw new Error(`chunk ${index} failed authentication: the stored file was altered or damaged`);
    }
    const wrongLength =
      plain.length > job.chunkSize ||
      (!last && plain.length !== job.chunkSize) ||
      (last && plain.length === 0 && index !== 0);
    if (wrongLength) throw new Error(`chunk ${index} has the wrong length`);
    const hashed = await hashing;
    return { plain, last, digest: hashed && new Uint8Array(hashed) };
  }

  // The manifest check, before the last bytes are handed over.
  async check() {
    const job = this.job;
    if (this.size !== job.size) {
      throw new Error(`the file is ${this.size} bytes, the sender's manifest says ${job.size}`);
    }
    if (this.chunks !== job.chunkCount) {
      throw new Error(`the file has ${this.chunks} chunks, the manifest says ${job.chunkCount}`);
    }
    let digest;
    if (this.plainHash) {
      digest = this.plainHash.digest();
    } else {
      const list = new Uint8Array(CHUNK_DIGEST_LABEL.length + 32 * this.chunkDigests.length);
      list.set(CHUNK_DIGEST_LABEL, 0);
      this.chunkDigests.forEach((d, i) => list.set(d, CHUNK_DIGEST_LABEL.length + 32 * i));
      digest = new Uint8Array(await crypto.subtle.digest("SHA-256", list));
    }
    if (!equalBytes(digest, job.digest)) {
      throw new Error("the file's content digest does not match the sender's manifest");
    }
  }
}

self.onmessage = (event) => {
  const job = event.data;
  if (job.type === "download" && event.ports[0]) {
    new Download(job, event.ports[0]);
  }
};
