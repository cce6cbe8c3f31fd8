//! The scheduler under virtual time: hysteresis timing, no overlap, jitter,
//! cancellation.

use std::time::Duration;

use probe::{Health, HttpCheck, ProbeKind, ProbeSpec, Prober};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::{Mode, Server, next_event, steady_http};

#[tokio::test(start_paused = true)]
async fn goes_down_exactly_at_the_fall_th_failure_and_up_after_rise() {
    let server = Server::http(Mode::status(200)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let prober = Prober::new(tx, shutdown.clone(), 1);
    let spec = steady_http(server.addr); // rise 2, fall 3 (defaults)
    prober.upsert("eu-west", spec).await.unwrap();
    let handle = prober.handle("eu-west").unwrap();

    let e = next_event(&mut rx).await;
    assert!(
        e.result.ok && e.health == Health::Up && e.transition.is_none(),
        "{e:?}"
    );
    assert_eq!(e.id.as_str(), "eu-west");

    server.seen.set_mode(Mode::status(503));
    let mut last = Instant::now();
    for n in 1..=3 {
        let e = next_event(&mut rx).await;
        assert_eq!(
            Instant::now() - last,
            Duration::from_secs(1),
            "no jitter: exactly one interval"
        );
        last = Instant::now();
        assert!(!e.result.ok);
        assert_eq!(e.result.detail, "HTTP 503");
        assert_eq!(handle.load().consecutive_failures, n);
        if n < 3 {
            assert_eq!(
                (e.health, e.transition),
                (Health::Up, None),
                "failure {n} must not flip"
            );
        } else {
            let t = e.transition.expect("the 3rd failure flips");
            assert_eq!(
                (t.from, t.to, t.streak, t.threshold),
                (Health::Up, Health::Down, 3, 3)
            );
            assert_eq!(e.health, Health::Down);
        }
    }
    assert_eq!(handle.health(), Health::Down);
    assert_eq!(
        handle.load().last_transition.map(|t| t.to),
        Some(Health::Down)
    );
    let e = next_event(&mut rx).await;
    assert_eq!((e.health, e.transition), (Health::Down, None));

    server.seen.set_mode(Mode::status(200));
    let e = next_event(&mut rx).await;
    assert!(e.result.ok);
    assert_eq!(
        (e.health, e.transition),
        (Health::Down, None),
        "one success is not enough"
    );
    let e = next_event(&mut rx).await;
    let t = e.transition.expect("the 2nd success flips");
    assert_eq!((t.from, t.to, t.streak), (Health::Down, Health::Up, 2));
    assert_eq!(prober.status("eu-west").unwrap().health, Health::Up);

    shutdown.cancel();
    prober.wait().await;
}

#[tokio::test(start_paused = true)]
async fn fast_interval_applies_while_settling() {
    let server = Server::http(Mode::status(200)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    let mut spec = steady_http(server.addr);
    spec.interval = Duration::from_secs(5);
    spec.fast_interval = Some(Duration::from_secs(1));
    prober.upsert("a", spec).await.unwrap();

    next_event(&mut rx).await;
    let mut at = Instant::now();
    let mut gap = async |rx: &mut mpsc::Receiver<_>| {
        let e = next_event(rx).await;
        let g = Instant::now() - at;
        at = Instant::now();
        (e, g)
    };
    assert_eq!(
        gap(&mut rx).await.1,
        Duration::from_secs(5),
        "settled Up: interval"
    );
    server.seen.set_mode(Mode::status(503));
    assert_eq!(
        gap(&mut rx).await.1,
        Duration::from_secs(5),
        "first failure comes at the interval"
    );
    assert_eq!(
        gap(&mut rx).await.1,
        Duration::from_secs(1),
        "going down: fast interval"
    );
    let (e, g) = gap(&mut rx).await;
    assert_eq!(g, Duration::from_secs(1));
    assert_eq!(e.health, Health::Down);
    assert_eq!(
        gap(&mut rx).await.1,
        Duration::from_secs(5),
        "settled Down: interval"
    );
    prober.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_target_never_has_two_probes_in_flight() {
    let server = Server::http(Mode::Hang).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 3);
    let mut spec = steady_http(server.addr);
    spec.timeout = Duration::from_millis(800);
    spec.jitter = 0.1;
    prober.upsert("slow", spec).await.unwrap();
    for _ in 0..20 {
        let e = next_event(&mut rx).await;
        assert!(!e.result.ok);
        assert_eq!(e.result.detail, "timed out after 800ms");
        assert_eq!(e.result.latency, Duration::from_millis(800));
    }
    prober.shutdown().await;
    assert_eq!(server.seen.max_open(), 1, "connections open at once");
    assert!((20..=21).contains(&server.seen.accepted()));
}

#[tokio::test(start_paused = true)]
async fn the_next_probe_waits_for_a_timed_out_one_even_if_jitter_says_sooner() {
    // Jitter 50% can draw 0.5s, less than the 0.9s timeout: the next probe
    // must still start only after the previous one timed out.
    let server = Server::http(Mode::Hang).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 4);
    let mut spec = steady_http(server.addr);
    spec.timeout = Duration::from_millis(900);
    spec.jitter = 0.5;
    prober.upsert("slow", spec).await.unwrap();
    for _ in 0..30 {
        next_event(&mut rx).await;
    }
    prober.shutdown().await;
    let gaps = server.seen.gaps();
    assert!(gaps.len() >= 29);
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(900)),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().any(|g| *g == Duration::from_millis(900)),
        "some draws were below the timeout: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(1500)),
        "{gaps:?}"
    );
}

/// Probe start gaps of one check run for `n` probes with `seed`.
async fn gaps_with_seed(seed: u64, n: usize) -> (Duration, Vec<Duration>) {
    let server = Server::http(Mode::status(200)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), seed);
    let mut spec = steady_http(server.addr);
    spec.jitter = 0.2;
    let added = Instant::now();
    prober.upsert("jittery", spec).await.unwrap();
    for _ in 0..n {
        next_event(&mut rx).await;
    }
    prober.shutdown().await;
    let first = server.seen.accept_times.lock().unwrap()[0] - added;
    (first, server.seen.gaps())
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_bounds_and_is_seeded() {
    let (first, gaps) = gaps_with_seed(7, 40).await;
    assert!(
        first <= Duration::from_millis(200),
        "first probe within jitter × interval: {first:?}"
    );
    assert_eq!(gaps.len(), 39);
    for g in &gaps {
        assert!(
            (Duration::from_millis(800)..=Duration::from_millis(1200)).contains(g),
            "gap {g:?} outside 1s ± 20%"
        );
    }
    let distinct: std::collections::BTreeSet<_> = gaps.iter().collect();
    assert!(
        distinct.len() > 30,
        "intervals are actually spread: {gaps:?}"
    );
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        (Duration::from_millis(930)..=Duration::from_millis(1070)).contains(&mean),
        "{mean:?}"
    );

    let (first_again, gaps_again) = gaps_with_seed(7, 40).await;
    assert_eq!(
        (first, &gaps),
        (first_again, &gaps_again),
        "same seed, same schedule"
    );
    let (_, other) = gaps_with_seed(8, 40).await;
    assert_ne!(gaps, other, "another seed, another schedule");
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_every_check_and_aborts_in_flight_probes() {
    let ok = Server::http(Mode::status(200)).await;
    let hang = Server::http(Mode::Hang).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let prober = Prober::new(tx, shutdown.clone(), 5);
    prober.upsert("ok", steady_http(ok.addr)).await.unwrap();
    let mut slow = steady_http(hang.addr);
    slow.timeout = Duration::from_millis(900);
    prober.upsert("hang", slow).await.unwrap();
    prober
        .upsert("tcp", ProbeSpec::new(ProbeKind::Tcp { addr: tcp_addr }))
        .await
        .unwrap();
    assert_eq!(prober.len(), 3);
    for _ in 0..6 {
        next_event(&mut rx).await;
    }
    // Cancel while the hanging probe is in flight.
    while hang.seen.open.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let probe_started = *hang.seen.accept_times.lock().unwrap().last().unwrap();
    shutdown.cancel();
    prober.wait().await;
    assert!(
        Instant::now() - probe_started < Duration::from_millis(900),
        "the in-flight probe was aborted, not waited out"
    );

    let counts = (ok.seen.accepted(), hang.seen.accepted());
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        (ok.seen.accepted(), hang.seen.accepted()),
        counts,
        "no probe after cancel"
    );
    assert_eq!(
        hang.seen.open.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "aborted connection was closed"
    );

    // Checks added after shutdown stop at once.
    prober.upsert("late", steady_http(ok.addr)).await.unwrap();
    prober.wait().await;
    drop(prober);
    while rx.recv().await.is_some() {}
    assert_eq!(ok.seen.accepted(), counts.0);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_prober_stops_its_tasks() {
    let server = Server::http(Mode::status(200)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 6);
    prober.upsert("a", steady_http(server.addr)).await.unwrap();
    next_event(&mut rx).await;
    drop(prober);
    // Every sender is gone once the task has stopped.
    while rx.recv().await.is_some() {}
    let n = server.seen.accepted();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(server.seen.accepted(), n);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_receiver_leaves_status_updating() {
    let server = Server::http(Mode::status(503)).await;
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let prober = Prober::new(tx, CancellationToken::new(), 7);
    let mut spec = ProbeSpec::new(ProbeKind::Http(HttpCheck::http(server.addr)));
    spec.jitter = 0.0;
    prober.upsert("a", spec).await.unwrap();
    let handle = prober.handle("a").unwrap();
    assert_eq!(handle.load().probes, 0);
    assert_eq!(handle.health(), Health::Up, "default initial state");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let status = handle.load();
    assert_eq!(status.probes, 4, "probes at 0s, 2s, 4s, 6s");
    assert_eq!(status.health, Health::Down);
    assert_eq!(status.last.as_ref().unwrap().detail, "HTTP 503");
    prober.shutdown().await;
}
