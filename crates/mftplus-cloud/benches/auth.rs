//! The authentication hot path: what every authenticated request pays before its handler runs.
//! Run: `cargo bench -p mftplus-cloud --bench auth`. Figures in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use mftplus_cloud::testing::TestCloud;

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cloud = rt.block_on(TestCloud::spawn());
    let state = cloud.state.clone();

    let mut key_headers = HeaderMap::new();
    key_headers.insert("x-api-key", cloud.admin_api_key.parse().unwrap());
    rt.block_on(state.authenticate(&key_headers))
        .unwrap()
        .unwrap();

    let admin = rt
        .block_on(state.store.get_user_by_email("admin@example.com"))
        .unwrap()
        .unwrap();
    let (token, _) = rt
        .block_on(state.issue_token(&admin, "admin", "access", "bench", "login", 3600))
        .unwrap();
    let mut jwt_headers = HeaderMap::new();
    jwt_headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    rt.block_on(state.authenticate(&jwt_headers))
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now().timestamp();

    let mut group = c.benchmark_group("auth");
    group.bench_function("api_key_cached", |b| {
        b.iter(|| {
            rt.block_on(state.authenticate(&key_headers))
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("api_key_uncached_sqlite", |b| {
        b.iter(|| {
            state.cache.keys.clear();
            state.cache.users.clear();
            rt.block_on(state.authenticate(&key_headers))
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("jwt_hs256_verify_only", |b| {
        let keys = state.jwt.current();
        b.iter(|| keys.verify(&token, now).unwrap())
    });
    group.bench_function("jwt_hs256_cached", |b| {
        b.iter(|| {
            rt.block_on(state.authenticate(&jwt_headers))
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("rbac_allows", |b| {
        b.iter(|| state.rbac.allows("operator", "transfers:read:own"))
    });
    group.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
