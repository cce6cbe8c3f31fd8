//! Each algorithm's distribution, backups, fail-open and the sticky cookie.

use super::support::*;

fn pool(algorithm: &str, extra: &str, servers_list: &str) -> String {
    format!(
        "routes: [{{ pool: web }}]
pools:
  web:
    algorithm: {algorithm}
    servers: {servers_list}
{extra}"
    )
}

fn weighted(b: &[TestBackend], weights: &[u32]) -> String {
    let items: Vec<String> = b
        .iter()
        .zip(weights)
        .map(|(b, w)| format!("{{ addr: \"{}\", weight: {w} }}", b.addr))
        .collect();
    format!("[{}]", items.join(", "))
}

#[tokio::test]
async fn round_robin_is_smooth_and_weighted() {
    let b = backends(3).await;
    let proxy = Proxy::start(spec(&pool("round_robin", "", &weighted(&b, &[2, 1, 1])))).await;
    let mut sequence = Vec::new();
    for _ in 0..8 {
        sequence.push(get(proxy.http, "/", &[]).await.backend().to_owned());
    }
    // Smooth WRR for weights 2, 1, 1: b0 b1 b2 b0, twice.
    assert_eq!(sequence, ["b0", "b1", "b2", "b0", "b0", "b1", "b2", "b0"]);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn random_spreads_by_weight() {
    let b = backends(2).await;
    let proxy = Proxy::start(spec(&pool("random", "", &weighted(&b, &[3, 1])))).await;
    let counts = spread(proxy.http, 200, &[]).await;
    let heavy = counts.get("b0").copied().unwrap_or(0);
    // 150 expected; 5 standard deviations is ±31.
    assert!((115..=185).contains(&heavy), "{counts:?}");
    proxy.stop().await.unwrap();
}

/// Runs `clients` concurrent request loops of `each` requests; counts by backend.
async fn concurrent(
    addr: std::net::SocketAddr,
    clients: usize,
    each: usize,
) -> std::collections::BTreeMap<String, usize> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(async move { spread(addr, each, &[]).await }))
        .collect();
    let mut total = std::collections::BTreeMap::new();
    for task in tasks {
        for (k, v) in task.await.unwrap() {
            *total.entry(k).or_insert(0) += v;
        }
    }
    total
}

#[tokio::test]
async fn p2c_and_least_conn_steer_away_from_a_slow_server() {
    let b = backends(2).await;
    b[0].stats.set_delay(std::time::Duration::from_millis(40));
    for (algorithm, at_least) in [("p2c", 75), ("least_conn", 60)] {
        let proxy = Proxy::start(spec(&pool(algorithm, "", &servers(&[&b[0], &b[1]])))).await;
        let counts = concurrent(proxy.http, 4, 25).await;
        let fast = counts.get("b1").copied().unwrap_or(0);
        assert!(fast >= at_least, "{algorithm}: {counts:?}");
        proxy.stop().await.unwrap();
    }
}

#[tokio::test]
async fn least_conn_avoids_a_busy_server() {
    let b = backends(2).await;
    let proxy = Proxy::start(spec(&pool("least_conn", "", &servers(&[&b[0], &b[1]])))).await;
    // Hold three slow requests; they spread 2/1 or 1/2, then every fast
    // request goes to the server with fewer in flight.
    let http = proxy.http;
    let slow: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(http, "/?delay=1500ms", &[]).await }))
        .collect();
    wait_until(|| async {
        let s = proxy.handle.status();
        s.pools[0].servers.iter().map(|s| s.in_flight).sum::<u32>() == 3
    })
    .await;
    let status = proxy.handle.status();
    let in_flight: Vec<u32> = status.pools[0]
        .servers
        .iter()
        .map(|s| s.in_flight)
        .collect();
    let idle = if in_flight[0] < in_flight[1] {
        "b0"
    } else {
        "b1"
    };
    let reply = get(proxy.http, "/", &[]).await;
    assert_eq!(reply.backend(), idle, "{in_flight:?}");
    for s in slow {
        assert_eq!(s.await.unwrap().status, 200);
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn hash_on_a_header_is_consistent() {
    let b = backends(3).await;
    let proxy = Proxy::start(spec(&pool(
        "hash",
        "    hash_on: \"header:X-User\"\n",
        &servers(&[&b[0], &b[1], &b[2]]),
    )))
    .await;
    let mut owners = std::collections::BTreeMap::new();
    for user in 0..30 {
        let user = format!("user-{user}");
        let first = get(proxy.http, "/", &[("X-User", &user)])
            .await
            .backend()
            .to_owned();
        for _ in 0..2 {
            assert_eq!(
                get(proxy.http, "/", &[("X-User", &user)]).await.backend(),
                first
            );
        }
        owners.insert(user, first);
    }
    let used: std::collections::BTreeSet<&String> = owners.values().collect();
    assert_eq!(used.len(), 3, "30 users over 3 servers: {owners:?}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn backups_serve_only_when_every_primary_is_down_and_then_it_fails_open() {
    let b = backends(3).await;
    let list = format!(
        "[{{ addr: \"{}\" }}, {{ addr: \"{}\" }}, {{ addr: \"{}\", backup: true }}]",
        b[0].addr, b[1].addr, b[2].addr
    );
    let health =
        "    health: { path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }\n";
    let proxy = Proxy::start(spec(&pool("round_robin", health, &list))).await;
    let counts = spread(proxy.http, 10, &[]).await;
    assert_eq!(counts.get("b2"), None, "{counts:?}");
    b[0].stats.set_healthy(false);
    b[1].stats.set_healthy(false);
    let http = proxy.http;
    wait_until(|| async move { get(http, "/", &[]).await.backend() == "b2" }).await;
    let counts = spread(proxy.http, 5, &[]).await;
    assert_eq!(counts.get("b2"), Some(&5), "{counts:?}");
    // Every server down: fail open over the primaries.
    b[2].stats.set_healthy(false);
    wait_until(|| async move { get(http, "/.well-known/gtm/health", &[]).await.status == 503 })
        .await;
    let counts = spread(proxy.http, 6, &[]).await;
    assert_eq!(
        (counts.get("b0"), counts.get("b1")),
        (Some(&3), Some(&3)),
        "{counts:?}"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn without_fail_open_a_dead_pool_answers_503() {
    let b = backends(1).await;
    let extra = "    fail_open: false\n    health: { path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }\n";
    let proxy = Proxy::start(spec(&pool("p2c", extra, &servers(&[&b[0]])))).await;
    assert_eq!(get(proxy.http, "/", &[]).await.status, 200);
    b[0].stats.set_healthy(false);
    let http = proxy.http;
    wait_until(|| async move { get(http, "/", &[]).await.status == 503 }).await;
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn sticky_cookies_pin_a_client_and_move_it_when_its_server_dies() {
    let b = backends(3).await;
    let extra = "    sticky: { cookie: SRV, max_age: 1h }\n    health: { path: /healthz, interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }\n";
    let proxy = Proxy::start(spec(&pool(
        "round_robin",
        extra,
        &servers(&[&b[0], &b[1], &b[2]]),
    )))
    .await;
    let first = get(proxy.http, "/", &[]).await;
    let set = first
        .header("set-cookie")
        .expect("a sticky cookie")
        .to_owned();
    assert!(
        set.contains("Max-Age=3600") && set.contains("HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let owner = first.backend().to_owned();
    for _ in 0..6 {
        let again = get(proxy.http, "/", &[("Cookie", &cookie)]).await;
        assert_eq!(again.backend(), owner);
        assert_eq!(again.header("set-cookie"), None);
    }
    let index: usize = owner[1..].parse().unwrap();
    b[index].stats.set_healthy(false);
    let http = proxy.http;
    let cookie2 = cookie.clone();
    let owner2 = owner.clone();
    wait_until(|| {
        let cookie = cookie2.clone();
        let owner = owner2.clone();
        async move { get(http, "/", &[("Cookie", &cookie)]).await.backend() != owner }
    })
    .await;
    let moved = get(proxy.http, "/", &[("Cookie", &cookie)]).await;
    let new_cookie = moved
        .header("set-cookie")
        .expect("re-stuck")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_cookie, cookie);
    let new_owner = moved.backend().to_owned();
    for _ in 0..3 {
        assert_eq!(
            get(proxy.http, "/", &[("Cookie", &new_cookie)])
                .await
                .backend(),
            new_owner
        );
    }
    proxy.stop().await.unwrap();
}
