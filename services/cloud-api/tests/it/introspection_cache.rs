//! The introspection cache of SPEC §3.1: one token used for many requests costs one
//! introspection within the cache TTL. Also prints the measured per-request auth overhead with
//! and without the cache (run with `--nocapture` to see it).

use std::time::{Duration, Instant};

use auth::KeycloakValidator;

use crate::support::{PASSWORD, TestApp, keycloak_available, unique_email};

fn average(total: Duration, n: u32) -> Duration {
    total / n
}

#[tokio::test]
async fn keycloak_100_requests_with_one_token_cost_at_most_one_introspection() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().user_cache_ttl_secs(60).start().await;
    let email = unique_email("introspect");
    app.register(&email).await;
    let users = app.state.identity.users();
    let Some(KeycloakValidator::Introspection(validator)) = users.authenticator().keycloak() else {
        panic!("Keycloak mode validates by introspection by default");
    };

    // Login itself validates the new token (to find the account it names), which fills the
    // cache: the login and the 100 requests after it cost one introspection in all.
    let before = validator.introspection_calls();
    let tokens = app.login(&email, PASSWORD).await;
    let started = Instant::now();
    let first = app.me(&tokens.access).await;
    let first_took = started.elapsed();
    assert_eq!(first.status, 200, "{first:?}");
    let started = Instant::now();
    for _ in 1..100 {
        let me = app.me(&tokens.access).await;
        assert_eq!(me.status, 200, "{me:?}");
    }
    let cached_took = average(started.elapsed(), 99);
    let calls = validator.introspection_calls() - before;
    assert_eq!(
        calls, 1,
        "a login and 100 requests with its token within the TTL: exactly one introspection"
    );

    // The extractor's own cost (token validation plus the account row), without HTTP and the
    // profile queries of /me: uncached (cache entries dropped before each call) vs. cached.
    let subject = users
        .caller(&tokens.access)
        .await
        .expect("a caller")
        .principal
        .subject
        .clone();
    const UNCACHED: u32 = 20;
    let mut uncached_total = Duration::ZERO;
    for _ in 0..UNCACHED {
        validator.forget(&tokens.access).await;
        users.forget(&subject).await;
        let started = Instant::now();
        users.caller(&tokens.access).await.expect("a caller");
        uncached_total += started.elapsed();
    }
    const CACHED: u32 = 1000;
    let started = Instant::now();
    for _ in 0..CACHED {
        users.caller(&tokens.access).await.expect("a caller");
    }
    let cached_total = started.elapsed();
    let uncached = average(uncached_total, UNCACHED);
    let cached = average(cached_total, CACHED);
    assert!(
        cached < uncached,
        "a cached validation is cheaper than an introspection: {cached:?} vs {uncached:?}"
    );
    eprintln!(
        "auth overhead (Keycloak introspection mode, this build): extractor uncached {uncached:?}, \
         cached {cached:?}; GET /api/auth/me end to end: first (uncached) {first_took:?}, \
         cached average {cached_took:?}"
    );
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn builtin_auth_overhead_is_one_session_check() {
    let app = TestApp::builtin().user_cache_ttl_secs(60).start().await;
    let email = unique_email("overhead");
    app.register(&email).await;
    let tokens = app.login(&email, PASSWORD).await;
    let users = app.state.identity.users();
    users.caller(&tokens.access).await.expect("a caller");
    const N: u32 = 200;
    let started = Instant::now();
    for _ in 0..N {
        users.caller(&tokens.access).await.expect("a caller");
    }
    let per_call = average(started.elapsed(), N);
    // Built-in tokens are checked against their session on every request: a logout is seen at
    // once, so the session row is read every time (the account row is cached).
    assert_eq!(app.logout(&tokens).await.status, 200);
    assert!(users.caller(&tokens.access).await.is_err());
    eprintln!("auth overhead (built-in provider, this build): extractor {per_call:?} per request");
}
