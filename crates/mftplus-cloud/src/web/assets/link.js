// A share link's page (/s/<token>#<secret>; decision 0023). Everything secret happens here, in
// the browser: the secret after `#` (which browsers never send to a server) and, when the link
// has one, the passphrase unwrap the file key from the stream header's link stanza with
// WebCrypto (HKDF-SHA256, PBKDF2-HMAC-SHA256, AES-256-GCM); the header's HMAC-SHA256 is checked;
// the sealed manifest gives the file's name and size. A download is one counted open on the
// server; the download worker (link_worker.js) fetches, decrypts and checks the chunks, and the
// service worker (/s/sw.js) streams them to disk as the browser's download.
// The byte layout is docs/stream-format.md.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const text = new TextEncoder();
  const LINK_WRAP_LABEL = text.encode("mftplus-stream-v1 link-wrap");
  const HEADER_MAC_LABEL = text.encode("mftplus-stream-v1 header-mac");
  const PAYLOAD_LABEL = text.encode("mftplus-stream-v1 payload");
  const MANIFEST_LABEL = text.encode("mftplus-stream-v1 manifest");
  const KIND_LINK = 0x03;
  const MODE_SECRET = 0x01;
  const MODE_PASSPHRASE = 0x02;
  const MIN_ITERATIONS = 600000;
  const MAX_ITERATIONS = 10000000;
  const KEEP_ALIVE_MS = 10000;

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function say(message) {
    $("link-status").textContent = message;
  }

  function fail(message) {
    $("link-error").textContent = message;
    show("link-error", true);
    say("");
    document.body.dataset.state = "failed";
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  function fromBase64(b64) {
    const raw = atob(b64);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function fromBase64Url(b64url) {
    const plain = b64url.replace(/-/g, "+").replace(/_/g, "/");
    return fromBase64(plain + "===".slice((plain.length + 3) % 4));
  }

  function formatSize(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const shown = unit === 0 ? String(value) : value.toFixed(value < 10 ? 2 : 1);
    return `${shown} ${units[unit]}` + (unit === 0 ? "" : ` (${bytes} bytes)`);
  }

  // A name safe to offer as a download: one path component, no control characters.
  function safeName(name) {
    const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, "_").trim();
    return cleaned === "" || cleaned === "." || cleaned === ".." ? "download" : cleaned;
  }

  // The stream header (docs/stream-format.md §2), shape only: authenticity comes from the MAC.
  function parseHeader(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = String.fromCharCode(...bytes.subarray(0, 4));
    if (bytes.length < 78 || magic !== "MFTP") throw new Error("not an MFTPlus stream header");
    const header = {
      version: bytes[4],
      cipher: bytes[5],
      compression: bytes[6],
      flags: bytes[7],
      chunkSize: view.getUint32(8),
      salt: bytes.slice(12, 44),
      stanzas: [],
    };
    const count = view.getUint16(44);
    let at = 46;
    for (let i = 0; i < count; i++) {
      if (at + 3 > bytes.length) throw new Error("the stream header is cut short");
      const kind = bytes[at];
      const length = view.getUint16(at + 1);
      const body = bytes.slice(at + 3, at + 3 + length);
      if (body.length !== length) throw new Error("the stream header is cut short");
      header.stanzas.push({ kind, body });
      at += 3 + length;
    }
    if (at + 32 !== bytes.length) throw new Error("the stream header has the wrong length");
    header.authenticated = bytes.slice(0, at);
    header.mac = bytes.slice(at);
    return header;
  }

  // Link stanzas (§2.3): mode (1) ‖ iterations (4) ‖ salt (32) ‖ wrapped key (48).
  function linkStanzas(header) {
    return header.stanzas
      .filter((s) => s.kind === KIND_LINK && s.body.length === 85)
      .map((s) => {
        const view = new DataView(s.body.buffer, s.body.byteOffset, s.body.byteLength);
        return {
          mode: s.body[0],
          iterations: view.getUint32(1),
          salt: s.body.slice(5, 37),
          wrapped: s.body.slice(37),
          aad: concat(new Uint8Array([KIND_LINK]), s.body.subarray(0, 37)),
        };
      })
      .filter((l) => l.mode >= 1 && l.mode <= 3);
  }

  async function hkdf(ikm, salt, info) {
    const base = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256);
    return new Uint8Array(bits);
  }

  async function pbkdf2(passphrase, salt, iterations) {
    const base = await crypto.subtle.importKey("raw", text.encode(passphrase), "PBKDF2", false, [
      "deriveBits",
    ]);
    const bits = await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt, iterations },
      base,
      256,
    );
    return new Uint8Array(bits);
  }

  // The file key from one link stanza, or null when it does not open.
  async function unwrapOne(link, secret, passphrase) {
    const parts = [];
    if (link.mode & MODE_SECRET) parts.push(secret);
    if (link.mode & MODE_PASSPHRASE) {
      if (link.iterations < MIN_ITERATIONS || link.iterations > MAX_ITERATIONS) {
        throw new Error("the link's passphrase settings are outside the allowed range");
      }
      parts.push(await pbkdf2(passphrase, link.salt, link.iterations));
    }
    const wrapKeyBytes = await hkdf(concat(...parts), link.salt, concat(LINK_WRAP_LABEL, new Uint8Array([link.mode])));
    const wrapKey = await crypto.subtle.importKey("raw", wrapKeyBytes, "AES-GCM", false, ["decrypt"]);
    try {
      const fileKey = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: new Uint8Array(12), additionalData: link.aad },
        wrapKey,
        link.wrapped,
      );
      return new Uint8Array(fileKey);
    } catch (_) {
      return null;
    }
  }

  // §3: the header MAC key, the payload key and the manifest key from the file key.
  async function streamKeys(fileKey, header) {
    const id = new Uint8Array([header.cipher]);
    const [macBytes, payloadBytes, manifestBytes] = await Promise.all([
      hkdf(fileKey, header.salt, HEADER_MAC_LABEL),
      hkdf(fileKey, header.salt, concat(PAYLOAD_LABEL, id)),
      hkdf(fileKey, header.salt, concat(MANIFEST_LABEL, id)),
    ]);
    const mac = await crypto.subtle.importKey("raw", macBytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    const payload = await crypto.subtle.importKey("raw", payloadBytes, "AES-GCM", false, ["decrypt"]);
    const manifest = await crypto.subtle.importKey("raw", manifestBytes, "AES-GCM", false, ["decrypt"]);
    return { mac, payload, manifest };
  }

  // §6: the manifest, sealed with the manifest key under the zero nonce.
  async function openManifest(sealed, key, version) {
    let plain;
    try {
      plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, sealed));
    } catch (_) {
      throw new Error("the file's manifest failed authentication: it was altered");
    }
    const view = new DataView(plain.buffer);
    if (plain.length < 56 || plain[0] !== version) throw new Error("the file's manifest is malformed");
    const nameLength = view.getUint16(54);
    if (plain.length !== 56 + nameLength) throw new Error("the file's manifest is malformed");
    return {
      size: view.getUint32(1) * 0x100000000 + view.getUint32(5),
      chunkCount: view.getUint32(9) * 0x100000000 + view.getUint32(13),
      digest: plain.slice(17, 49),
      name: new TextDecoder().decode(plain.subarray(56)),
    };
  }

  // A refusal from the server, in words.
  async function refusal(answer) {
    let code = "";
    let message = `the server answered HTTP ${answer.status}`;
    try {
      const body = await answer.json();
      code = body.error.code;
      message = body.error.message;
    } catch (_) {
      // keep the status
    }
    const words = {
      not_found: "This link does not exist (or no longer does). Check that it was copied whole.",
      link_expired: "This link has expired.",
      link_revoked: "The sender revoked this link.",
      link_exhausted: "This link's downloads are used up.",
      rate_limited: "Too many attempts from your address: wait a minute and reload.",
    };
    return (words[code] || message) + (code ? ` (${code})` : "");
  }

  function askPassphrase(wrong) {
    show("link-passphrase", true);
    document.body.dataset.state = "passphrase";
    if (wrong) $("passphrase-note").textContent = "That passphrase does not open this link. Try again.";
    $("passphrase").focus();
    return new Promise((resolve) => {
      $("passphrase-form").onsubmit = (event) => {
        event.preventDefault();
        const value = $("passphrase").value;
        if (value !== "") {
          show("link-passphrase", false);
          document.body.dataset.state = "loading";
          resolve(value);
        }
      };
    });
  }

  // The file key: with the fragment's secret where a stanza needs only it, else asking for the
  // passphrase until it opens a stanza.
  async function fileKeyOf(header, secret) {
    const links = linkStanzas(header);
    if (links.length === 0) throw new Error("this file cannot be opened in a browser (it has no link key)");
    if (secret) {
      for (const link of links.filter((l) => l.mode === MODE_SECRET)) {
        const key = await unwrapOne(link, secret, null);
        if (key) return key;
      }
    }
    const withPassphrase = links.filter(
      (l) => l.mode === MODE_PASSPHRASE || (l.mode === (MODE_SECRET | MODE_PASSPHRASE) && secret),
    );
    if (withPassphrase.length === 0) {
      throw new Error(
        secret
          ? "The key in this link does not fit the file: the link was changed or cut. Ask the sender for it again."
          : "This link is missing its key (the part after #). Ask the sender for the whole link.",
      );
    }
    let wrong = false;
    for (;;) {
      const passphrase = await askPassphrase(wrong);
      say("Checking the passphrase…");
      for (const link of withPassphrase) {
        const key = await unwrapOne(link, secret, passphrase);
        if (key) return key;
      }
      wrong = true;
      say("");
    }
  }

  async function worker() {
    if (!("serviceWorker" in navigator)) return null;
    await navigator.serviceWorker.register("/s/sw.js", { scope: "/s/" });
    return navigator.serviceWorker.ready;
  }

  function randomId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function download(ctx) {
    show("download", false);
    say("Starting the download…");
    const registration = await ctx.worker;
    if (!registration || !registration.active) {
      fail("This browser cannot save the file as it is decrypted (service workers are off, as in some private windows).");
      return;
    }
    const answer = await fetch(`/api/v1/shared/${ctx.token}/open`, { method: "POST", cache: "no-store" });
    if (!answer.ok) {
      fail(await refusal(answer));
      return;
    }
    const { ticket } = await answer.json();
    const id = randomId();
    // The download worker fetches, decrypts and checks; the service worker streams to disk
    // what it hands over through `pipe`.
    const pipe = new MessageChannel();
    const decrypter = new Worker("/static/link_worker.js");
    decrypter.onmessage = (event) => progress(ctx, event.data);
    decrypter.onerror = (event) => progress(ctx, { type: "failed", message: event.message || "the download worker stopped" });
    decrypter.postMessage(
      {
        type: "download",
        token: ctx.token,
        ticket,
        key: ctx.keys.payload,
        version: ctx.header.version,
        chunkSize: ctx.header.chunkSize,
        chunkCount: ctx.manifest.chunkCount,
        size: ctx.manifest.size,
        digest: ctx.manifest.digest,
      },
      [pipe.port1],
    );
    // The service worker says on `reply` when it holds the download.
    const reply = new MessageChannel();
    const ready = new Promise((resolve) => {
      reply.port1.onmessage = (event) => {
        if (event.data.type === "ready") resolve();
      };
    });
    registration.active.postMessage({ type: "download", id, name: ctx.name, size: ctx.manifest.size }, [
      pipe.port2,
      reply.port2,
    ]);
    await ready;
    // A browser may stop a service worker it thinks idle: a message every few seconds keeps
    // it alive while the file streams.
    ctx.keepAlive = setInterval(() => registration.active && registration.active.postMessage({ type: "ping" }), KEEP_ALIVE_MS);
    document.body.dataset.state = "downloading";
    show("progress", true);
    window.location.assign(`/s/dl/${id}/${encodeURIComponent(ctx.name)}`);
  }

  function progress(ctx, message) {
    const bar = $("progress");
    if (message.type === "progress") {
      bar.max = message.size;
      bar.value = message.bytes;
      say(`Downloading and decrypting… ${formatSize(message.bytes)} of ${formatSize(message.size)}`);
    } else if (message.type === "done") {
      clearInterval(ctx.keepAlive);
      bar.max = 1;
      bar.value = 1;
      say(`Done: ${ctx.name} is decrypted and verified, ${formatSize(message.bytes)}.`);
      document.body.dataset.state = "done";
    } else if (message.type === "failed") {
      clearInterval(ctx.keepAlive);
      show("progress", false);
      fail(`The download failed and was stopped: ${message.message}. Your browser keeps no complete file.`);
    }
  }

  async function main() {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      fail(
        "This page decrypts the file in your browser, which browsers allow only on a secure " +
          "connection: open the link with https:// (or, on the server's own machine, " +
          "http://localhost or http://127.0.0.1).",
      );
      return;
    }
    const token = location.pathname.split("/").pop();
    const fragment = location.hash.slice(1);
    let secret = null;
    if (fragment) {
      try {
        secret = fromBase64Url(fragment);
      } catch (_) {
        secret = new Uint8Array(0);
      }
      if (secret.length !== 32) {
        fail("This link's key (the part after #) is damaged: ask the sender for the whole link.");
        return;
      }
    }
    const ctx = { token, worker: worker().catch(() => null) };
    say("Fetching the file's details…");
    const answer = await fetch(`/api/v1/shared/${token}`, { cache: "no-store" });
    if (!answer.ok) {
      fail(await refusal(answer));
      return;
    }
    const info = await answer.json();
    const header = parseHeader(fromBase64(info.header));
    if (header.cipher !== 0x01 || header.compression !== 0x00 || header.flags !== 0) {
      throw new Error("this file was encrypted with options a browser cannot read (it needs AES-256-GCM without compression)");
    }
    if (header.version !== 1 && header.version !== 2) {
      throw new Error(`this file uses stream format version ${header.version}, which this page does not know`);
    }
    say("Unlocking…");
    const fileKey = await fileKeyOf(header, secret);
    const keys = await streamKeys(fileKey, header);
    const authentic = await crypto.subtle.verify("HMAC", keys.mac, header.mac, header.authenticated);
    if (!authentic) throw new Error("the file's header was altered (its MAC does not verify)");
    const manifest = await openManifest(fromBase64(info.manifest), keys.manifest, header.version);
    if (manifest.chunkCount !== info.chunk_count) {
      throw new Error("the server's chunk count disagrees with the sender's manifest");
    }
    Object.assign(ctx, { header, keys, manifest, name: safeName(manifest.name) });
    $("file-name").textContent = ctx.name;
    $("file-size").textContent = formatSize(manifest.size);
    $("link-expires").textContent = new Date(info.expires_at).toLocaleString();
    $("downloads-left").textContent = info.downloads_left === null ? "No limit" : String(info.downloads_left);
    show("link-file", true);
    show("download", true);
    say("");
    document.body.dataset.state = "ready";
    $("download").onclick = () => download(ctx).catch((err) => fail(`The download could not start: ${err.message}`));
  }

  document.addEventListener("DOMContentLoaded", () => {
    main().catch((err) => fail(err.message || String(err)));
  });
})();
