// Sending a file from the dashboard (issue 16 item 3). The file is encrypted here, in the
// page, into the stream format (docs/stream-format.md, version 2): a random file key wrapped
// to each recipient's registered X25519 key (the stanza's ChaCha20-Poly1305 is below, since
// WebCrypto has none), the header's HMAC, AES-256-GCM chunks and the sealed manifest, all
// uploaded through the API routes `mftctl send` uses. So the cloud sees ciphertext only and
// `mftctl receive` opens the result like any other transfer.
//
// Resume after a reload: the transfer id, the header and the payload and manifest keys (as
// non-extractable WebCrypto keys: this page's script can use them, nobody can read them out)
// and each acknowledged chunk's SHA-256 are kept in IndexedDB. Choosing the same file again
// continues after the chunks the server holds. The file key itself is never stored.
//
// A file request's page (`/r/<token>`, decision 0034) runs the same upload in its request
// mode: no session and no token, the request's public routes instead of the transfer routes
// (the same shapes under `/api/v1/requested/<token>`), and the one recipient and key the
// request names.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload");
  if (!form) return;
  const requestToken = form.dataset.mode === "request"
    ? decodeURIComponent(location.pathname.replace(/^\/r\//, ""))
    : null;
  const base = requestToken === null
    ? "/api/v1"
    : `/api/v1/requested/${encodeURIComponent(requestToken)}`;
  const text = new TextEncoder();
  const FINGERPRINT_LABEL = text.encode("mftplus-x25519-fingerprint-v1");
  const WRAP_LABEL = text.encode("mftplus-stream-v1 x25519-wrap");
  const HEADER_MAC_LABEL = text.encode("mftplus-stream-v1 header-mac");
  const PAYLOAD_LABEL = text.encode("mftplus-stream-v1 payload");
  const MANIFEST_LABEL = text.encode("mftplus-stream-v1 manifest");
  const CHUNK_DIGEST_LABEL = text.encode("mftplus-stream-v2 chunk-digest");
  const KEY_PREFIX = "mftx25519_";
  const VERSION = 0x02;
  const CIPHER_AES_GCM = 0x01;
  const KIND_X25519 = 0x01;
  const MIN_CHUNK = 65536;
  const DB_NAME = "mftplus-uploads";
  const STORE = "uploads";
  const RETRIES = 5;
  const IN_FLIGHT = 3;

  // ---- bytes ----

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  function bigEndian(value, width) {
    const out = new Uint8Array(width);
    let rest = value;
    for (let at = width - 1; at >= 0 && rest > 0; at--) {
      out[at] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    return out;
  }

  function littleEndian64(value) {
    return bigEndian(value, 8).reverse();
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fromHex(text) {
    return new Uint8Array(text.match(/../g).map((pair) => parseInt(pair, 16)));
  }

  function toBase64(bytes) {
    let raw = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(raw);
  }

  function fromBase64Url(b64url) {
    const plain = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(plain + "===".slice((plain.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  // ---- ChaCha20-Poly1305 (RFC 8439), only ever for a 32-byte file key ----

  function rotl(v, n) {
    return ((v << n) | (v >>> (32 - n))) >>> 0;
  }

  function chachaBlock(key, counter, nonce) {
    const state = new Uint32Array(16);
    state.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
    const keyWords = new DataView(key.buffer, key.byteOffset, 32);
    for (let i = 0; i < 8; i++) state[4 + i] = keyWords.getUint32(4 * i, true);
    state[12] = counter;
    const nonceWords = new DataView(nonce.buffer, nonce.byteOffset, 12);
    for (let i = 0; i < 3; i++) state[13 + i] = nonceWords.getUint32(4 * i, true);
    const w = Uint32Array.from(state);
    const quarter = (a, b, c, d) => {
      w[a] += w[b]; w[d] = rotl(w[d] ^ w[a], 16);
      w[c] += w[d]; w[b] = rotl(w[b] ^ w[c], 12);
      w[a] += w[b]; w[d] = rotl(w[d] ^ w[a], 8);
      w[c] += w[d]; w[b] = rotl(w[b] ^ w[c], 7);
    };
    for (let round = 0; round < 10; round++) {
      quarter(0, 4, 8, 12); quarter(1, 5, 9, 13); quarter(2, 6, 10, 14); quarter(3, 7, 11, 15);
      quarter(0, 5, 10, 15); quarter(1, 6, 11, 12); quarter(2, 7, 8, 13); quarter(3, 4, 9, 14);
    }
    const out = new Uint8Array(64);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 16; i++) view.setUint32(4 * i, (w[i] + state[i]) >>> 0, true);
    return out;
  }

  function chachaXor(key, counter, nonce, data) {
    const out = new Uint8Array(data.length);
    for (let at = 0, block = counter; at < data.length; at += 64, block++) {
      const stream = chachaBlock(key, block, nonce);
      for (let j = 0; j < 64 && at + j < data.length; j++) out[at + j] = data[at + j] ^ stream[j];
    }
    return out;
  }

  function poly1305(key, message) {
    const number = (bytes) => bytes.reduceRight((n, b) => (n << 8n) | BigInt(b), 0n);
    const r = number(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
    const s = number(key.subarray(16, 32));
    const p = (1n << 130n) - 5n;
    let acc = 0n;
    for (let at = 0; at < message.length; at += 16) {
      const block = message.subarray(at, at + 16);
      acc = ((acc + number(block) + (1n << BigInt(8 * block.length))) * r) % p;
    }
    acc = (acc + s) & ((1n << 128n) - 1n);
    const tag = new Uint8Array(16);
    for (let i = 0; i < 16; i++) tag[i] = Number((acc >> BigInt(8 * i)) & 0xffn);
    return tag;
  }

  function chachaPolySeal(key, nonce, aad, plaintext) {
    const polyKey = chachaBlock(key, 0, nonce).subarray(0, 32);
    const sealed = chachaXor(key, 1, nonce, plaintext);
    const padding = (n) => new Uint8Array((16 - (n % 16)) % 16);
    const mac = concat(aad, padding(aad.length), sealed, padding(sealed.length),
      littleEndian64(aad.length), littleEndian64(sealed.length));
    return concat(sealed, poly1305(polyKey, mac));
  }

  // ---- the stream's header and keys (docs/stream-format.md §2, §3) ----

  async function hkdf(ikm, salt, info) {
    const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256);
    return new Uint8Array(bits);
  }

  function decodeKey(encoded) {
    if (!encoded.startsWith(KEY_PREFIX)) throw new Error("a recipient's key is not an X25519 key");
    const key = fromBase64Url(encoded.slice(KEY_PREFIX.length));
    if (key.length !== 32) throw new Error("a recipient's key is not 32 bytes");
    return key;
  }

  async function x25519Stanza(fileKey, recipient) {
    const fingerprint = (await sha256(concat(FINGERPRINT_LABEL, recipient))).subarray(0, 16);
    const ephemeral = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    const ephemeralPublic = new Uint8Array(await crypto.subtle.exportKey("raw", ephemeral.publicKey));
    const peer = await crypto.subtle.importKey("raw", recipient, { name: "X25519" }, false, []);
    const shared = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "X25519", public: peer }, ephemeral.privateKey, 256));
    if (shared.every((b) => b === 0)) throw new Error("a recipient's key is not usable (low order)");
    const wrapKey = await hkdf(shared, concat(ephemeralPublic, recipient), WRAP_LABEL);
    const aad = concat(new Uint8Array([KIND_X25519]), fingerprint, ephemeralPublic);
    const wrapped = chachaPolySeal(wrapKey, new Uint8Array(12), aad, fileKey);
    shared.fill(0);
    wrapKey.fill(0);
    const body = concat(fingerprint, ephemeralPublic, wrapped);
    return concat(new Uint8Array([KIND_X25519]), bigEndian(body.length, 2), body);
  }

  // The header bytes and the two keys the upload needs; the file key goes out of scope here.
  async function seal(recipients, chunkSize) {
    const fileKey = crypto.getRandomValues(new Uint8Array(32));
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const stanzas = [];
    for (const recipient of recipients) stanzas.push(await x25519Stanza(fileKey, recipient));
    const head = concat(text.encode("MFTP"), new Uint8Array([VERSION, CIPHER_AES_GCM, 0x00, 0x00]),
      bigEndian(chunkSize, 4), salt, bigEndian(stanzas.length, 2), ...stanzas);
    const macBytes = await hkdf(fileKey, salt, HEADER_MAC_LABEL);
    const macKey = await crypto.subtle.importKey("raw", macBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", macKey, head));
    const cipherId = new Uint8Array([CIPHER_AES_GCM]);
    const aesKey = async (label) => {
      const raw = await hkdf(fileKey, salt, concat(label, cipherId));
      const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
      raw.fill(0);
      return key;
    };
    const payloadKey = await aesKey(PAYLOAD_LABEL);
    const manifestKey = await aesKey(MANIFEST_LABEL);
    fileKey.fill(0);
    macBytes.fill(0);
    return { header: concat(head, mac), payloadKey, manifestKey };
  }

  function chunkNonce(index, last) {
    return concat(bigEndian(index, 11), new Uint8Array([last ? 1 : 0]));
  }

  async function sealManifest(job) {
    const digests = [];
    for (let i = 0; i < job.chunkCount; i++) digests.push(fromHex(job.hashes[i]));
    const digest = await sha256(concat(CHUNK_DIGEST_LABEL, ...digests));
    const name = text.encode(job.name);
    const plain = concat(new Uint8Array([VERSION]), bigEndian(job.size, 8), bigEndian(job.chunkCount, 8),
      digest, new Uint8Array([0x00]), new Uint8Array(4), bigEndian(name.length, 2), name);
    const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, job.manifestKey, plain);
    return toBase64(new Uint8Array(sealed));
  }

  // ---- the uploads kept for a resume ----

  function database() {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open(DB_NAME, 1);
      opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, { keyPath: "id" });
      opening.onsuccess = () => resolve(opening.result);
      opening.onerror = () => reject(opening.error);
    });
  }

  async function stored(mode, act) {
    const db = await database();
    try {
      return await new Promise((resolve, reject) => {
        const request = act(db.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    } finally {
      db.close();
    }
  }

  const keep = (job) => stored("readwrite", (s) => s.put(job));
  const forget = (id) => stored("readwrite", (s) => s.delete(id));
  const kept = () => stored("readonly", (s) => s.getAll());

  // ---- the API, with a token from this page's session ----

  let token = null;
  let tokenUntil = 0;

  async function freshToken() {
    if (token && Date.now() < tokenUntil) return token;
    if (requestToken !== null) return null;
    const body = new URLSearchParams({ csrf: form.dataset.csrf });
    const answer = await fetch("/transfers/upload-token", { method: "POST", body, credentials: "same-origin" });
    if (!answer.ok) throw new Error(`the dashboard refused an upload token (HTTP ${answer.status}); sign in again`);
    const granted = await answer.json();
    token = granted.token;
    tokenUntil = Date.now() + (granted.expires_in - 60) * 1000;
    return token;
  }

  // One API call; transport failures and 5xx answers are tried again (every call here is
  // safe to repeat: an identical chunk is `already_stored`), a 401 with a new token.
  async function api(method, path, body, headers) {
    let lastError = null;
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 500 * attempt));
      let answer;
      try {
        const bearer = await freshToken();
        const auth = bearer === null ? {} : { Authorization: `Bearer ${bearer}` };
        answer = await fetch(path, { method, body, headers: Object.assign(auth, headers || {}) });
      } catch (err) {
        lastError = new Error(`the server could not be reached (${err.message})`);
        continue;
      }
      if (answer.status === 401) {
        token = null;
        lastError = new Error("the upload token was refused");
        continue;
      }
      if (answer.status >= 500) {
        lastError = new Error(`the server failed (HTTP ${answer.status})`);
        continue;
      }
      const reply = await answer.json().catch(() => ({}));
      if (!answer.ok) {
        const error = reply.error || {};
        throw new Error(`${error.message || "refused"} (HTTP ${answer.status}${error.code ? ", " + error.code : ""})`);
      }
      return reply;
    }
    throw lastError;
  }

  const json = (value) => ({ body: JSON.stringify(value), headers: { "Content-Type": "application/json" } });

  // ---- the upload ----

  function say(message) {
    $("upload-status").textContent = message;
  }

  function fail(message) {
    $("upload-error").textContent = message;
    $("upload-error").hidden = false;
    document.body.dataset.upload = "failed";
  }

  // Says why a request's page takes no new upload; an unfinished one may still be finished,
  // so the upload's own state is left alone.
  function refuse(message) {
    $("upload-error").textContent = message;
    $("upload-error").hidden = false;
  }

  function progress(done, total) {
    const bar = $("upload-progress");
    bar.hidden = false;
    bar.max = total;
    bar.value = done;
  }

  function parseSize(value) {
    const match = /^\s*(\d+)\s*(B|KiB|MiB)?\s*$/i.exec(value || "10MiB");
    if (!match) throw new Error("chunk size: a number of bytes, KiB or MiB, e.g. 10MiB");
    const unit = { b: 1, kib: 1024, mib: 1048576 }[(match[2] || "b").toLowerCase()];
    const size = Number(match[1]) * unit;
    const max = Number(form.dataset.maxChunk);
    if (!(max > 0)) throw new Error("the server's largest chunk size is not known yet");
    if (size < MIN_CHUNK || size > max) throw new Error(`chunk size must be between 64KiB and ${max / 1048576}MiB`);
    return size;
  }

  async function recipientKeys(emails) {
    if (request !== null) return [decodeKey(request.public_key)];
    const keys = [];
    for (const email of emails) {
      const found = await api("GET", `/api/v1/users/${encodeURIComponent(email)}/key`);
      keys.push(decodeKey(found.public_key));
    }
    return keys;
  }

  async function start(file, emails, chunkSize, expires) {
    if (text.encode(file.name).length > 4096) throw new Error("the file's name is longer than 4096 bytes");
    say("Encrypting the file key to the recipients…");
    const keys = await recipientKeys(emails);
    const sealed = await seal(keys, chunkSize);
    const creation = { recipients: emails, header: toBase64(sealed.header), chunk_size: chunkSize };
    if (expires) creation.expires = expires;
    const body = json(creation);
    const transfer = await api("POST", `${base}/transfers`, body.body, body.headers);
    const job = {
      id: transfer.id, base, recipients: emails.join(", "),
      name: file.name, size: file.size, lastModified: file.lastModified,
      chunkSize, chunkCount: Math.max(1, Math.ceil(file.size / chunkSize)),
      payloadKey: sealed.payloadKey, manifestKey: sealed.manifestKey, hashes: {},
    };
    await keep(job);
    return job;
  }

  async function sealChunk(job, file, index) {
    const from = index * job.chunkSize;
    const plain = await file.slice(from, Math.min(file.size, from + job.chunkSize)).arrayBuffer();
    const last = index === job.chunkCount - 1;
    const iv = chunkNonce(index, last);
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, job.payloadKey, plain));
    return { sealed, last, sha: hex(await sha256(sealed)) };
  }

  // Seals chunk `index` and uploads it unless the server holds it. A chunk the server holds
  // but this page did not record is sealed again (the same key and nonce give the same
  // bytes) for its SHA-256, which is never taken from the server's word.
  async function sendChunk(job, file, index, held) {
    const chunk = await sealChunk(job, file, index);
    if (!held.has(index)) {
      await api("PUT", `${base}/transfers/${job.id}/chunks/${index}`, chunk.sealed, {
        "Content-Type": "application/octet-stream",
        "X-Chunk-SHA256": chunk.sha,
        "X-Chunk-Last": chunk.last ? "true" : "false",
      });
    }
    job.hashes[index] = chunk.sha;
  }

  async function run(job, file) {
    document.body.dataset.upload = "uploading";
    form.hidden = true;
    const onServer = await api("GET", `${base}/transfers/${job.id}/chunks`);
    const held = new Set(onServer.map((c) => c.index));
    // A few chunks at once: one is read and sealed while others are on the wire.
    const running = new Set();
    let next = 0;
    let done = 0;
    while (next < job.chunkCount || running.size > 0) {
      while (running.size < IN_FLIGHT && next < job.chunkCount) {
        const index = next++;
        if (held.has(index) && job.hashes[index]) {
          done++;
          continue;
        }
        const sending = sendChunk(job, file, index, held).then(async () => {
          running.delete(sending);
          done++;
          progress(done, job.chunkCount);
          say(`Uploading ${job.name}: ${done} of ${job.chunkCount} chunks`);
          await keep(job);
        });
        running.add(sending);
      }
      if (running.size > 0) await Promise.race(running);
    }
    progress(job.chunkCount, job.chunkCount);
    say("Sealing the manifest…");
    const body = json({ manifest: await sealManifest(job) });
    await api("POST", `${base}/transfers/${job.id}/complete`, body.body, body.headers);
    await forget(job.id);
    say(`Sent ${job.name} as transfer ${job.id}.`);
    if (requestToken === null) {
      const link = document.createElement("a");
      link.href = `/transfers/${job.id}`;
      link.id = "sent-transfer";
      link.textContent = "See the transfer";
      $("upload-status").append(" ", link);
    } else {
      const sent = document.createElement("span");
      sent.id = "sent-transfer";
      sent.dataset.transfer = job.id;
      sent.textContent = `${job.recipients} can now receive it.`;
      $("upload-status").append(" ", sent);
      if (request !== null) {
        request.uploads_left -= 1;
        showRequest();
      }
    }
    document.body.dataset.upload = "sent";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    $("upload-error").hidden = true;
    try {
      const file = $("file").files[0];
      if (!file) throw new Error("choose a file");
      if (requestToken !== null && request === null) throw new Error("this request takes no new files");
      const emails = requestToken === null
        ? $("recipients").value.split(/[\s,;]+/).filter(Boolean)
        : [request.recipient];
      if (emails.length === 0) throw new Error("name at least one recipient");
      const expires = requestToken === null ? $("expires").value.trim() : "";
      const job = await start(file, emails, parseSize($("chunk-size").value), expires);
      await run(job, file);
    } catch (err) {
      fail(`The upload stopped: ${err.message}`);
    }
  });

  // ---- unfinished uploads: choose the file again to resume ----

  async function resume(job, file) {
    $("upload-error").hidden = true;
    try {
      if (file.name !== job.name || file.size !== job.size || file.lastModified !== job.lastModified) {
        throw new Error(`that is not the file this upload was sending (${job.name}, ${job.size} bytes)`);
      }
      $("unfinished").hidden = true;
      await run(job, file);
    } catch (err) {
      fail(`The upload stopped: ${err.message}`);
    }
  }

  async function listUnfinished() {
    // Only this page's uploads: the dashboard's, or this request's.
    const jobs = (await kept()).filter((job) => (job.base || "/api/v1") === base);
    const list = $("unfinished-list");
    list.replaceChildren();
    for (const job of jobs) {
      const item = document.createElement("li");
      const done = Object.keys(job.hashes).length;
      const label = document.createElement("label");
      label.textContent = `${job.name} (${done} of ${job.chunkCount} chunks, transfer ${job.id}) `;
      const chooser = document.createElement("input");
      chooser.type = "file";
      chooser.className = "resume-file";
      chooser.dataset.transfer = job.id;
      chooser.addEventListener("change", () => chooser.files[0] && resume(job, chooser.files[0]));
      label.append(chooser);
      const drop = document.createElement("button");
      drop.type = "button";
      drop.textContent = "Forget";
      drop.addEventListener("click", async () => { await forget(job.id); listUnfinished(); });
      item.append(label, " ", drop);
      list.append(item);
    }
    $("unfinished").hidden = jobs.length === 0;
    document.body.dataset.unfinished = String(jobs.length);
  }

  // ---- a file request: what to encrypt to, and its limits ----

  let request = null;

  function showRequest() {
    $("request-recipient").textContent = request.recipient;
    $("request-note").textContent = request.note || "—";
    $("request-uploads-left").textContent = String(request.uploads_left);
    $("request-max-size").textContent = `${(request.max_bytes / 1048576).toFixed(1)} MiB`;
    $("request-expires").textContent = request.expires_at;
    $("request").hidden = false;
    form.hidden = request.uploads_left <= 0;
  }

  async function openRequest() {
    const answer = await fetch(base, { headers: { Accept: "application/json" } });
    const reply = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const error = reply.error || {};
      document.body.dataset.state = error.code || "refused";
      throw new Error(answer.status === 404
        ? "this request does not exist (check the link you were given)"
        : `${error.message || "refused"} (${error.code || "HTTP " + answer.status})`);
    }
    request = reply;
    form.dataset.maxChunk = String(request.max_chunk_size);
    showRequest();
    say("");
    document.body.dataset.state = "open";
  }

  // A request that takes no new upload (its uploads used up, say) still lets an upload it
  // already counted be finished: the unfinished ones are listed either way.
  const ready = requestToken === null
    ? Promise.resolve()
    : openRequest().catch((err) => refuse(`This request cannot take new files: ${err.message}`));
  ready
    .then(() => listUnfinished())
    .catch((err) => fail(`Unfinished uploads could not be read: ${err.message}`));
})();
