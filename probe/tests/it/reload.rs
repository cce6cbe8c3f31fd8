//! Config reload: add, replace, remove, and what happens to hysteresis state.

use std::time::Duration;

use probe::{CheckId, Health, ProbeKind, ProbeSpec, Prober, SpecError, Upsert};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use topology::health::CheckError;

use crate::support::{Mode, Server, next_event, steady_http};

/// Drives check `id` of `prober` to Down (fall 3) against a 503 server.
async fn drive_down(rx: &mut mpsc::Receiver<probe::ProbeEvent>, id: &str) {
    loop {
        let e = next_event(rx).await;
        if e.id.as_str() == id && e.health == Health::Down {
            return;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_spec_keeps_the_running_check_and_its_counters() {
    let server = Server::http(Mode::status(503)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    let spec = steady_http(server.addr);
    assert_eq!(
        prober.upsert("a", spec.clone()).await.unwrap(),
        Upsert::Added
    );
    let generation = prober.status("a").unwrap().generation;
    for _ in 0..2 {
        assert_eq!(next_event(&mut rx).await.transition, None);
    }
    assert_eq!(prober.upsert("a", spec).await.unwrap(), Upsert::Unchanged);
    let e = next_event(&mut rx).await;
    assert_eq!(e.generation, generation);
    assert_eq!(
        e.transition.map(|t| t.to),
        Some(Health::Down),
        "the 2 earlier failures still count"
    );
    assert_eq!(server.seen.accepted(), 3);
    prober.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_timing_change_carries_the_health_over() {
    let server = Server::http(Mode::status(503)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    let spec = steady_http(server.addr);
    prober.upsert("a", spec.clone()).await.unwrap();
    drive_down(&mut rx, "a").await;
    let old = prober.status("a").unwrap();

    let mut slower = spec;
    slower.interval = Duration::from_secs(3);
    slower.rise = 3;
    assert_eq!(
        prober.upsert("a", slower).await.unwrap(),
        Upsert::Replaced { carried_over: true }
    );
    let new = prober.status("a").unwrap();
    assert_eq!(
        new.health,
        Health::Down,
        "still down: no flap to the spec's initial Up"
    );
    assert!(new.generation > old.generation);
    assert_eq!(
        (new.probes, new.consecutive_failures),
        (0, 0),
        "counters restart"
    );

    server.seen.set_mode(Mode::status(200));
    for n in 1..=3 {
        let e = next_event(&mut rx).await;
        assert_eq!(
            e.generation, new.generation,
            "no stale event after the replace returned"
        );
        if n < 3 {
            assert_eq!((e.health, e.transition), (Health::Down, None));
        } else {
            assert_eq!(
                e.transition.map(|t| (t.to, t.threshold)),
                Some((Health::Up, 3)),
                "new rise applies"
            );
        }
    }
    prober.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_new_target_starts_from_the_initial_state() {
    let server = Server::http(Mode::status(503)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    let spec = steady_http(server.addr);
    prober.upsert("a", spec.clone()).await.unwrap();
    drive_down(&mut rx, "a").await;

    let mut moved = spec;
    if let ProbeKind::Http(check) = &mut moved.kind {
        check.path = "/other".to_owned();
    }
    assert_eq!(
        prober.upsert("a", moved.clone()).await.unwrap(),
        Upsert::Replaced {
            carried_over: false
        }
    );
    assert_eq!(prober.handle("a").unwrap().health(), Health::Up);
    assert_eq!(prober.spec("a"), Some(moved));
    prober.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn remove_stops_probing() {
    let server = Server::http(Mode::status(200)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    prober.upsert("a", steady_http(server.addr)).await.unwrap();
    let handle = prober.handle("a").unwrap();
    next_event(&mut rx).await;
    assert!(prober.remove("a").await);
    assert!(!prober.remove("a").await);
    assert!(prober.status("a").is_none() && prober.is_empty());
    let n = server.seen.accepted();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(server.seen.accepted(), n);
    assert_eq!(
        handle.load().probes,
        1,
        "an old handle stays readable, frozen"
    );
    prober.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn sync_applies_the_whole_set_or_nothing() {
    let server = Server::http(Mode::status(200)).await;
    let (tx, _rx) = mpsc::channel(1024);
    let prober = Prober::new(tx, CancellationToken::new(), 1);
    let spec = steady_http(server.addr);
    let id = |s: &str| CheckId::from(s);

    let report = prober
        .sync([(id("b"), spec.clone()), (id("a"), spec.clone())])
        .await
        .unwrap();
    assert_eq!(report.added, vec![id("a"), id("b")]);

    let mut slower = spec.clone();
    slower.interval = Duration::from_secs(5);
    let report = prober
        .sync([
            (id("a"), spec.clone()),
            (id("b"), slower),
            (id("c"), spec.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(
        (
            report.added,
            report.replaced,
            report.unchanged,
            report.removed
        ),
        (vec![id("c")], vec![id("b")], vec![id("a")], vec![])
    );

    let mut bad_timeout = spec.clone();
    bad_timeout.timeout = Duration::from_secs(1);
    let mut bad_rise = spec.clone();
    bad_rise.rise = 0;
    let before = prober.snapshot();
    let err = prober
        .sync([
            (id("a"), spec.clone()),
            (id("d"), bad_timeout),
            (id("e"), bad_rise),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.errors.len(), 2);
    assert!(matches!(
        err.errors[0].1.errors(),
        [SpecError::Check(CheckError::TimeoutNotBelowInterval { .. })]
    ));
    let text = err.to_string();
    assert!(
        text.contains("check d: timeout 1s must be shorter than interval 1s"),
        "{text}"
    );
    assert!(text.contains("check e: rise is 0"), "{text}");
    let after = prober.snapshot();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a rejected reload changes nothing"
    );
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|((_, x), (_, y))| x.generation == y.generation)
    );

    let report = prober.sync([(id("a"), spec)]).await.unwrap();
    assert_eq!(
        (report.removed, report.unchanged),
        (vec![id("b"), id("c")], vec![id("a")])
    );
    assert_eq!(prober.len(), 1);

    let invalid = ProbeSpec {
        timeout: Duration::ZERO,
        ..ProbeSpec::new(ProbeKind::Tcp { addr: server.addr })
    };
    assert!(prober.upsert("z", invalid).await.is_err());
    assert!(prober.status("z").is_none());
    prober.shutdown().await;
}
