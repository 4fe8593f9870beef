//! End-to-end tests of the stream format through its public API: round trips over every
//! cipher × compression × recipient kind and boundary size, and one test per attack.

use std::io::Cursor;

use mftplus_crypto::stream::{
    decrypt_reader_to_writer, encrypt_reader_to_writer, read_frame, CipherId, Compression,
    ContentDigest, Decryptor, Encryptor, Frame, Header, Identity, Manifest, ManifestInfo,
    Recipient, SealedChunk, StreamError, StreamOptions, X25519SecretKey, DEFAULT_CHUNK_SIZE,
    DEFAULT_PBKDF2_ITERATIONS, FRAME_CHUNK, FRAME_LAST_CHUNK, FRAME_MANIFEST, MIN_CHUNK_SIZE,
};
use proptest::prelude::*;

const C: usize = MIN_CHUNK_SIZE as usize;
const PASS: &str = "correct horse battery staple";

/// Deterministic, poorly compressible test data.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn options(cipher: CipherId, compression: Compression) -> StreamOptions {
    StreamOptions {
        cipher,
        compression,
        chunk_size: MIN_CHUNK_SIZE,
    }
}

fn info() -> ManifestInfo {
    ManifestInfo {
        name: "payload.bin".into(),
        mode: Some(0o640),
    }
}

fn encrypt(plain: &[u8], opts: &StreamOptions, recipients: &[Recipient<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt_reader_to_writer(&mut Cursor::new(plain), &mut out, opts, recipients, info()).unwrap();
    out
}

fn decrypt(stream: &[u8], identities: &[Identity<'_>]) -> Result<(Vec<u8>, Manifest), StreamError> {
    let mut out = Vec::new();
    let manifest = decrypt_reader_to_writer(&mut Cursor::new(stream), &mut out, identities)?;
    Ok((out, manifest))
}

/// A stream taken apart: header bytes and (kind, payload) frames, for surgery.
struct Parts {
    header: Vec<u8>,
    frames: Vec<(u8, Vec<u8>)>,
}

fn split(stream: &[u8]) -> Parts {
    let (_, header_len) = Header::parse(stream).unwrap();
    let mut rest = &stream[header_len..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (kind, len) = match read_frame(&mut rest).unwrap() {
            Frame::Chunk { last: false, len } => (FRAME_CHUNK, len),
            Frame::Chunk { last: true, len } => (FRAME_LAST_CHUNK, len),
            Frame::Manifest { len } => (FRAME_MANIFEST, len),
        };
        frames.push((kind, rest[..len].to_vec()));
        rest = &rest[len..];
    }
    Parts {
        header: stream[..header_len].to_vec(),
        frames,
    }
}

fn join(parts: &Parts) -> Vec<u8> {
    let mut out = parts.header.clone();
    for (kind, bytes) in &parts.frames {
        out.push(*kind);
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn sizes() -> [usize; 6] {
    [0, 1, C - 1, C, C + 1, 3 * C + 4321]
}

fn chunks_for(len: usize) -> u64 {
    (len.max(1)).div_ceil(C) as u64
}

fn check_round_trip(plain: &[u8], stream: &[u8], identities: &[Identity<'_>]) {
    let (out, manifest) = decrypt(stream, identities).unwrap();
    assert!(out == plain, "plaintext differs for {} bytes", plain.len());
    assert_eq!(manifest.size, plain.len() as u64);
    assert_eq!(manifest.chunk_count, chunks_for(plain.len()));
    assert_eq!(manifest.name, "payload.bin");
    assert_eq!(manifest.mode, Some(0o640));
    assert_eq!(
        manifest.digest,
        ContentDigest::ChunkList(chunk_list_digest(stream))
    );
}

/// The version 2 digest recomputed from the stream's frames, independently of the reader.
fn chunk_list_digest(stream: &[u8]) -> [u8; 32] {
    let mut rest = stream;
    let header = Header::read_from(&mut rest).unwrap();
    assert_eq!(header.version(), 2);
    let mut list = ring::digest::Context::new(&ring::digest::SHA256);
    list.update(b"mftplus-stream-v2 chunk-digest");
    while let Frame::Chunk { len, .. } = read_frame(&mut rest).unwrap() {
        list.update(ring::digest::digest(&ring::digest::SHA256, &rest[..len]).as_ref());
        rest = &rest[len..];
    }
    list.finish().as_ref().try_into().unwrap()
}

/// Streams written by release 0.1's writer (format version 1, plaintext SHA-256 in the
/// manifest), kept as files: this release must keep reading them.
#[test]
fn version_1_streams_still_open() {
    let secret = X25519SecretKey::from_bytes([7u8; 32]);
    let plain = include_bytes!("vectors/v1-plain.bin");
    for stream in [
        &include_bytes!("vectors/v1-aes-none.mftp")[..],
        &include_bytes!("vectors/v1-chacha-zstd.mftp")[..],
    ] {
        let (out, manifest) = decrypt(stream, &[Identity::X25519(&secret)]).unwrap();
        assert!(out == plain);
        assert_eq!(manifest.name, "vector.bin");
        assert_eq!(
            manifest.plaintext_sha256().map(hex::encode),
            Some(mftplus_crypto::sha256_hex(plain))
        );
        // One flipped bit in the last chunk's tag still fails.
        let mut bad = stream.to_vec();
        let at = bad.len() - 100;
        bad[at] ^= 1;
        assert!(decrypt(&bad, &[Identity::X25519(&secret)]).is_err());
    }
}

fn matrix(kind: &str) {
    let alice = X25519SecretKey::generate().unwrap();
    let bob = X25519SecretKey::generate().unwrap();
    for cipher in CipherId::ALL {
        for compression in [Compression::None, Compression::zstd()] {
            let opts = options(cipher, compression);
            for (i, len) in sizes().into_iter().enumerate() {
                let plain = data(len, i as u64);
                match kind {
                    "x25519" => {
                        let stream =
                            encrypt(&plain, &opts, &[Recipient::X25519(alice.public_key())]);
                        check_round_trip(&plain, &stream, &[Identity::X25519(&alice)]);
                    }
                    "passphrase" => {
                        let stream = encrypt(&plain, &opts, &[Recipient::passphrase(PASS)]);
                        check_round_trip(&plain, &stream, &[Identity::Passphrase(PASS)]);
                    }
                    "mixed" => {
                        let stream = encrypt(
                            &plain,
                            &opts,
                            &[
                                Recipient::X25519(alice.public_key()),
                                Recipient::passphrase(PASS),
                                Recipient::X25519(bob.public_key()),
                            ],
                        );
                        check_round_trip(&plain, &stream, &[Identity::X25519(&bob)]);
                        check_round_trip(&plain, &stream, &[Identity::X25519(&alice)]);
                        // Every recipient opens the same stream; one passphrase open per
                        // combination keeps the 600,000-iteration runs bounded.
                        if len == C + 1 {
                            check_round_trip(&plain, &stream, &[Identity::Passphrase(PASS)]);
                        }
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
}

#[test]
fn round_trip_x25519_all_ciphers_compressions_sizes() {
    matrix("x25519");
}

#[test]
fn round_trip_passphrase_all_ciphers_compressions_sizes() {
    matrix("passphrase");
}

#[test]
fn round_trip_mixed_recipients_all_ciphers_compressions_sizes() {
    matrix("mixed");
}

#[test]
fn round_trip_default_chunk_size_25_mib() {
    let sk = X25519SecretKey::generate().unwrap();
    let plain = data(25 * 1024 * 1024 + 17, 99);
    let opts = StreamOptions::default();
    assert_eq!(opts.chunk_size, DEFAULT_CHUNK_SIZE);
    let stream = encrypt(&plain, &opts, &[Recipient::X25519(sk.public_key())]);
    let parts = split(&stream);
    assert_eq!(parts.frames.len(), 3 + 1);
    let (out, manifest) = decrypt(&stream, &[Identity::X25519(&sk)]).unwrap();
    assert!(out == plain);
    assert_eq!(manifest.chunk_count, 3);
}

#[test]
fn compression_shrinks_compressible_data() {
    let sk = X25519SecretKey::generate().unwrap();
    let plain = b"all work and no play ".repeat(20_000);
    let r = [Recipient::X25519(sk.public_key())];
    let raw = encrypt(&plain, &options(CipherId::Aes256Gcm, Compression::None), &r);
    let zst = encrypt(
        &plain,
        &options(CipherId::Aes256Gcm, Compression::zstd()),
        &r,
    );
    assert!(zst.len() * 10 < raw.len(), "{} vs {}", zst.len(), raw.len());
    check_round_trip_named(&plain, &zst, &sk);
}

fn check_round_trip_named(plain: &[u8], stream: &[u8], sk: &X25519SecretKey) {
    let (out, _) = decrypt(stream, &[Identity::X25519(sk)]).unwrap();
    assert!(out == plain);
}

#[test]
fn sans_io_api_matches_the_reader_writer_path() {
    let sk = X25519SecretKey::generate().unwrap();
    let plain = data(5 * C + 99, 7);
    let opts = options(CipherId::ChaCha20Poly1305, Compression::None);
    let mut enc = Encryptor::new(&opts, &[Recipient::X25519(sk.public_key())]).unwrap();
    let header = enc.header_bytes().to_vec();
    let mut chunks: Vec<SealedChunk> = Vec::new();
    // Odd slice sizes exercise the buffering across chunk boundaries.
    for piece in plain.chunks(10_007) {
        chunks.extend(enc.push(piece).unwrap());
    }
    assert_eq!(enc.bytes_in(), plain.len() as u64);
    let trailer = enc.finish(info()).unwrap();
    assert!(trailer.last_chunk.last);
    chunks.push(trailer.last_chunk);
    assert_eq!(chunks.len(), 6);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index, i as u64);
        assert_eq!(c.last, i == 5);
    }
    // Each chunk's stated hash is its bytes' SHA-256; the manifest's digest is their list's.
    let mut list = ring::digest::Context::new(&ring::digest::SHA256);
    list.update(mftplus_crypto::stream::CHUNK_DIGEST_LABEL);
    for c in &chunks {
        assert_eq!(c.sha256_hex(), mftplus_crypto::sha256_hex(&c.bytes));
        list.update(&c.sha256);
    }
    let list: [u8; 32] = list.finish().as_ref().try_into().unwrap();
    assert_eq!(trailer.manifest.digest, ContentDigest::ChunkList(list));

    let (h, used) = Header::parse(&header).unwrap();
    assert_eq!(used, header.len());
    assert_eq!(
        h.x25519_fingerprints().next(),
        Some(&sk.public_key().fingerprint())
    );
    let mut dec = Decryptor::new(h, &[Identity::X25519(&sk)]).unwrap();
    let mut out = Vec::new();
    for c in &chunks {
        out.extend_from_slice(dec.open(c).unwrap());
    }
    let manifest = dec.finish(&trailer.sealed_manifest).unwrap();
    assert!(out == plain);
    assert_eq!(manifest, trailer.manifest);

    // Out-of-order delivery through the typed API is refused before any crypto.
    let (h, _) = Header::parse(&header).unwrap();
    let mut dec = Decryptor::new(h, &[Identity::X25519(&sk)]).unwrap();
    assert!(matches!(
        dec.open(&chunks[1]),
        Err(StreamError::ChunkOutOfOrder {
            expected: 0,
            got: 1
        })
    ));
}

// ---- attacks -----------------------------------------------------------------------------

struct Fixture {
    sk: X25519SecretKey,
    plain: Vec<u8>,
    stream: Vec<u8>,
}

/// Four chunks (three full, one short) to one X25519 recipient.
fn fixture() -> Fixture {
    let sk = X25519SecretKey::generate().unwrap();
    let plain = data(3 * C + 500, 3);
    let stream = encrypt(
        &plain,
        &options(CipherId::Aes256Gcm, Compression::None),
        &[Recipient::X25519(sk.public_key())],
    );
    Fixture { sk, plain, stream }
}

fn open(f: &Fixture, stream: &[u8]) -> Result<(Vec<u8>, Manifest), StreamError> {
    decrypt(stream, &[Identity::X25519(&f.sk)])
}

#[test]
fn flipped_bit_in_a_chunk_fails_that_chunk_and_writes_nothing_of_it() {
    let f = fixture();
    let mut parts = split(&f.stream);
    parts.frames[2].1[100] ^= 0x01;
    let mut out = Vec::new();
    let err = decrypt_reader_to_writer(
        &mut Cursor::new(join(&parts)),
        &mut out,
        &[Identity::X25519(&f.sk)],
    )
    .unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 2 }),
        "{err:?}"
    );
    // Only the two chunks before the bad one were released, and they are authentic.
    assert_eq!(out, f.plain[..2 * C]);
}

#[test]
fn dropping_the_last_chunk_is_truncation() {
    let f = fixture();
    let mut parts = split(&f.stream);
    parts.frames.remove(3);
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(matches!(err, StreamError::Truncated), "{err:?}");
    // Relabelling the new final chunk as last does not help: the flag is in the nonce.
    parts.frames[2].0 = FRAME_LAST_CHUNK;
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 2 }),
        "{err:?}"
    );
}

#[test]
fn swapping_two_chunks_fails() {
    let f = fixture();
    let mut parts = split(&f.stream);
    parts.frames.swap(0, 1);
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 0 }),
        "{err:?}"
    );
}

#[test]
fn duplicating_a_chunk_fails() {
    let f = fixture();
    let mut parts = split(&f.stream);
    let dup = parts.frames[1].clone();
    parts.frames.insert(2, dup);
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 2 }),
        "{err:?}"
    );
}

#[test]
fn chunk_or_manifest_replayed_from_another_transfer_to_the_same_recipients_fails() {
    let f = fixture();
    // Same recipient, same plaintext, same options: only the file key and salt differ.
    let other = encrypt(
        &f.plain,
        &options(CipherId::Aes256Gcm, Compression::None),
        &[Recipient::X25519(f.sk.public_key())],
    );
    let theirs = split(&other);
    let mut parts = split(&f.stream);
    parts.frames[1] = theirs.frames[1].clone();
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 1 }),
        "{err:?}"
    );

    let mut parts = split(&f.stream);
    parts.frames[4] = theirs.frames[4].clone();
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(matches!(err, StreamError::ManifestAuthFailed), "{err:?}");

    // Their header in front of our chunks: the header authenticates, the chunks do not.
    let mut parts = split(&f.stream);
    parts.header = theirs.header.clone();
    let err = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(err, StreamError::ChunkAuthFailed { index: 0 }),
        "{err:?}"
    );
}

#[test]
fn tampered_header_fields_are_detected() {
    let sk = X25519SecretKey::generate().unwrap();
    let other = X25519SecretKey::generate().unwrap();
    let stream = encrypt(
        &data(1000, 1),
        &options(CipherId::Aes256Gcm, Compression::None),
        &[
            Recipient::X25519(sk.public_key()),
            Recipient::X25519(other.public_key()),
        ],
    );
    let header_len = Header::parse(&stream).unwrap().1;
    let tamper = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut s = stream.clone();
        f(&mut s);
        decrypt(&s, &[Identity::X25519(&sk)]).unwrap_err()
    };
    // Cipher id switched to the other valid cipher.
    let e = tamper(&|s| s[5] = CipherId::ChaCha20Poly1305.to_byte());
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // Compression switched on.
    let e = tamper(&|s| s[6] = 1);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // Chunk size changed to another valid value.
    let e = tamper(&|s| s[8..12].copy_from_slice(&(2 * MIN_CHUNK_SIZE).to_be_bytes()));
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // File salt.
    let e = tamper(&|s| s[20] ^= 0x80);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // The *other* recipient's wrapped key: our stanza still opens, the MAC does not.
    let second_stanza_wrapped = 46 + (3 + 96) + 3 + 16 + 32 + 5;
    let e = tamper(&|s| s[second_stanza_wrapped] ^= 0x01);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // Our own wrapped key.
    let e = tamper(&|s| s[46 + 3 + 16 + 32 + 5] ^= 0x01);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // The MAC itself.
    let e = tamper(&|s| s[header_len - 1] ^= 0x01);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
    // Magic and version are checked first.
    let e = tamper(&|s| s[1] = b'X');
    assert!(matches!(e, StreamError::BadMagic), "{e:?}");
    let e = tamper(&|s| s[4] = 3);
    assert!(matches!(e, StreamError::UnsupportedVersion(3)), "{e:?}");
    // A version 2 stream relabelled as version 1 (whose manifest digest means something
    // else): the version byte is under the header MAC.
    let e = tamper(&|s| s[4] = 1);
    assert!(matches!(e, StreamError::HeaderTampered), "{e:?}");
}

#[test]
fn wrong_passphrase_and_wrong_key_are_told_apart() {
    let sk = X25519SecretKey::generate().unwrap();
    let stranger = X25519SecretKey::generate().unwrap();
    let plain = data(2 * C, 5);
    let opts = options(CipherId::Aes256Gcm, Compression::None);
    let by_pass = encrypt(&plain, &opts, &[Recipient::passphrase(PASS)]);
    let e = decrypt(&by_pass, &[Identity::Passphrase("Tr0ub4dor&3")]).unwrap_err();
    assert!(matches!(e, StreamError::WrongPassphrase), "{e:?}");
    let e = decrypt(&by_pass, &[Identity::X25519(&sk)]).unwrap_err();
    assert!(matches!(e, StreamError::NoMatchingRecipient), "{e:?}");

    let by_key = encrypt(&plain, &opts, &[Recipient::X25519(sk.public_key())]);
    let e = decrypt(&by_key, &[Identity::X25519(&stranger)]).unwrap_err();
    assert!(matches!(e, StreamError::NoMatchingRecipient), "{e:?}");
    // A passphrase against a key-only stream is simply no match (no PBKDF2 is run).
    let e = decrypt(&by_key, &[Identity::Passphrase(PASS)]).unwrap_err();
    assert!(matches!(e, StreamError::NoMatchingRecipient), "{e:?}");
    // Several identities: the one that fits wins.
    let (out, _) = decrypt(
        &by_key,
        &[Identity::X25519(&stranger), Identity::X25519(&sk)],
    )
    .unwrap();
    assert!(out == plain);
}

#[test]
fn weak_pbkdf2_parameters_are_refused_on_both_sides() {
    let opts = options(CipherId::Aes256Gcm, Compression::None);
    let weak = Recipient::Passphrase {
        passphrase: PASS,
        iterations: 100_000,
    };
    assert!(matches!(
        Encryptor::new(&opts, &[weak]),
        Err(StreamError::WeakKdfParameters {
            iterations: 100_000,
            minimum: 600_000
        })
    ));
    assert!(matches!(
        Encryptor::new(&opts, &[Recipient::passphrase("")]),
        Err(StreamError::EmptyPassphrase)
    ));
    // A header edited to ask for fewer iterations is refused before any derivation.
    let mut stream = encrypt(b"x", &opts, &[Recipient::passphrase(PASS)]);
    let iterations_at = 46 + 3;
    assert_eq!(
        stream[iterations_at..iterations_at + 4],
        DEFAULT_PBKDF2_ITERATIONS.to_be_bytes()
    );
    stream[iterations_at..iterations_at + 4].copy_from_slice(&1000u32.to_be_bytes());
    let e = decrypt(&stream, &[Identity::Passphrase(PASS)]).unwrap_err();
    assert!(
        matches!(
            e,
            StreamError::WeakKdfParameters {
                iterations: 1000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn truncated_or_extended_trailer_is_detected() {
    let f = fixture();
    let parts = split(&f.stream);
    let manifest_len = parts.frames[4].1.len();
    // Cut inside the manifest, at its frame head, and with the manifest frame gone entirely.
    for cut in [1, 10, manifest_len + 5] {
        let s = &f.stream[..f.stream.len() - cut];
        let e = open(&f, s).unwrap_err();
        assert!(matches!(e, StreamError::Truncated), "cut {cut}: {e:?}");
    }
    // Cut inside a chunk.
    let e = open(&f, &f.stream[..parts.header.len() + 1000]).unwrap_err();
    assert!(matches!(e, StreamError::Truncated), "{e:?}");
    // Header only.
    let e = open(&f, &parts.header).unwrap_err();
    assert!(matches!(e, StreamError::Truncated), "{e:?}");

    let mut longer = f.stream.clone();
    longer.push(0);
    let e = open(&f, &longer).unwrap_err();
    assert!(matches!(e, StreamError::TrailingData), "{e:?}");

    // A chunk after the last one.
    let mut parts = split(&f.stream);
    let extra = parts.frames[0].clone();
    parts.frames.insert(4, extra);
    let e = open(&f, &join(&parts)).unwrap_err();
    assert!(matches!(e, StreamError::TrailingData), "{e:?}");
}

#[test]
fn oversized_frames_are_refused_unread() {
    let f = fixture();
    let mut parts = split(&f.stream);
    parts.frames[0].1.resize(C + 17, 0);
    let e = open(&f, &join(&parts)).unwrap_err();
    assert!(
        matches!(e, StreamError::ChunkTooLarge { index: 0, .. }),
        "{e:?}"
    );
}

#[test]
fn not_a_stream() {
    let e = decrypt(b"PK\x03\x04 a zip file", &[]).unwrap_err();
    assert!(matches!(e, StreamError::BadMagic), "{e:?}");
    let e = decrypt(b"", &[]).unwrap_err();
    assert!(matches!(e, StreamError::Truncated), "{e:?}");
}

// ---- properties --------------------------------------------------------------------------

fn any_options() -> impl Strategy<Value = StreamOptions> {
    (any::<bool>(), any::<bool>()).prop_map(|(chacha, zstd)| {
        options(
            if chacha {
                CipherId::ChaCha20Poly1305
            } else {
                CipherId::Aes256Gcm
            },
            if zstd {
                Compression::zstd()
            } else {
                Compression::None
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_data_round_trips(
        plain in prop::collection::vec(any::<u8>(), 0..(3 * C)),
        opts in any_options(),
    ) {
        let sk = X25519SecretKey::generate().unwrap();
        let stream = encrypt(&plain, &opts, &[Recipient::X25519(sk.public_key())]);
        let (out, manifest) = decrypt(&stream, &[Identity::X25519(&sk)]).unwrap();
        prop_assert!(out == plain);
        prop_assert_eq!(manifest.size, plain.len() as u64);
    }

    #[test]
    fn any_single_byte_change_is_detected(
        plain in prop::collection::vec(any::<u8>(), 0..(2 * C + 10)),
        opts in any_options(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let sk = X25519SecretKey::generate().unwrap();
        let mut stream = encrypt(&plain, &opts, &[Recipient::X25519(sk.public_key())]);
        let i = at.index(stream.len());
        stream[i] ^= xor;
        prop_assert!(decrypt(&stream, &[Identity::X25519(&sk)]).is_err(), "change at byte {} accepted", i);
    }
}
