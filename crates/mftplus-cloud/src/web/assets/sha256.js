// Incremental SHA-256 (FIPS 180-4) for share links' download worker. WebCrypto's digest is
// one-shot, which is enough for version 2 streams (their manifest lists the sealed chunks'
// hashes); a version 1 stream's manifest holds the SHA-256 of the whole plaintext, which must
// be computed as the chunks stream by without holding the file. Written for this project,
// checked against WebCrypto by the browser tests. Works in a page and in a worker.
"use strict";

(function (scope) {
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
  ]);

  class Sha256 {
    constructor() {
      this.h = new Int32Array([
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
      ]);
      this.w = new Int32Array(64);
      this.tail = new Uint8Array(64);
      this.tailLength = 0;
      this.length = 0; // bytes hashed so far; exact up to 2^53
      this.done = false;
    }

    // Hashes the 64-byte blocks of `bytes` from `at` for `blocks` blocks.
    blocks(bytes, at, blocks) {
      const w = this.w;
      const h = this.h;
      let a, b, c, d, e, f, g, hh, i, t1, t2, x, y;
      for (let n = 0; n < blocks; n++, at += 64) {
        for (i = 0; i < 16; i++) {
          const p = at + i * 4;
          w[i] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
        }
        for (i = 16; i < 64; i++) {
          x = w[i - 15];
          y = w[i - 2];
          w[i] =
            (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
            w[i - 16] +
            (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) +
            w[i - 7];
        }
        a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
        for (i = 0; i < 64; i++) {
          t1 =
            (hh +
              (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
              ((e & f) ^ (~e & g)) +
              K[i] +
              w[i]) | 0;
          t2 =
            ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
              ((a & b) ^ (a & c) ^ (b & c))) | 0;
          hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
      }
    }

    update(bytes) {
      if (this.done) throw new Error("SHA-256: update after digest");
      let at = 0;
      this.length += bytes.length;
      if (this.tailLength > 0) {
        const take = Math.min(64 - this.tailLength, bytes.length);
        this.tail.set(bytes.subarray(0, take), this.tailLength);
        this.tailLength += take;
        at = take;
        if (this.tailLength < 64) return this;
        this.blocks(this.tail, 0, 1);
        this.tailLength = 0;
      }
      const whole = (bytes.length - at) >> 6;
      this.blocks(bytes, at, whole);
      at += whole * 64;
      this.tail.set(bytes.subarray(at), 0);
      this.tailLength = bytes.length - at;
      return this;
    }

    digest() {
      if (this.done) throw new Error("SHA-256: digest twice");
      this.done = true;
      const bits = this.length * 8;
      const pad = new Uint8Array(this.tailLength < 56 ? 64 : 128);
      pad.set(this.tail.subarray(0, this.tailLength));
      pad[this.tailLength] = 0x80;
      const view = new DataView(pad.buffer);
      view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
      view.setUint32(pad.length - 4, bits >>> 0);
      this.blocks(pad, 0, pad.length / 64);
      const out = new Uint8Array(32);
      const outView = new DataView(out.buffer);
      for (let i = 0; i < 8; i++) outView.setInt32(i * 4, this.h[i]);
      return out;
    }
  }

  scope.MftSha256 = Sha256;
})(typeof self !== "undefined" ? self : globalThis);
