//! Throughput of the stream format: encrypt and decrypt 64 MiB at the default 10 MiB chunk,
//! AES-256-GCM against ChaCha20-Poly1305, with and without zstd. Used to pick the default
//! cipher (and, later, to compare AEAD backends behind `ChunkCipher`).
//!
//! Run: `cargo bench -p mftplus-crypto --bench stream`. Criterion reports MiB/s of plaintext.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mftplus_crypto::stream::{
    decrypt_reader_to_writer, encrypt_reader_to_writer, CipherId, Compression, Identity,
    ManifestInfo, Recipient, StreamOptions, X25519SecretKey,
};

const SIZE: usize = 64 * 1024 * 1024;

/// Half random, half repetitive, so zstd has some work that pays off and some that does not,
/// which is closer to real transfers than either extreme.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..SIZE)
        .map(|i| {
            if (i / (1 << 20)) % 2 == 0 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            } else {
                b"transfer log line 0123456789\n"[i % 29]
            }
        })
        .collect()
}

/// A writer that only counts, so the benchmark measures the crypto and not memory copies.
struct Sink(u64);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let plain = payload();
    let sk = X25519SecretKey::generate().unwrap();
    let recipients = [Recipient::X25519(sk.public_key())];
    let mut group = c.benchmark_group("stream_64MiB_10MiB_chunks");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    for cipher in CipherId::ALL {
        for (cname, compression) in [("none", Compression::None), ("zstd3", Compression::zstd())] {
            let opts = StreamOptions {
                cipher,
                compression,
                ..StreamOptions::default()
            };
            let label = format!("{}/{}", cipher.name(), cname);
            group.bench_function(BenchmarkId::new("encrypt", &label), |b| {
                b.iter(|| {
                    let mut sink = Sink(0);
                    encrypt_reader_to_writer(
                        &mut Cursor::new(&plain),
                        &mut sink,
                        &opts,
                        &recipients,
                        ManifestInfo::default(),
                    )
                    .unwrap();
                    sink.0
                })
            });
            let mut stream = Vec::new();
            encrypt_reader_to_writer(
                &mut Cursor::new(&plain),
                &mut stream,
                &opts,
                &recipients,
                ManifestInfo::default(),
            )
            .unwrap();
            group.bench_function(BenchmarkId::new("decrypt", &label), |b| {
                b.iter(|| {
                    let mut sink = Sink(0);
                    decrypt_reader_to_writer(
                        &mut Cursor::new(&stream),
                        &mut sink,
                        &[Identity::X25519(&sk)],
                    )
                    .unwrap();
                    sink.0
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
