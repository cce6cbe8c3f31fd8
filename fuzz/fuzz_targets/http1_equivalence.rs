//! Whatever a client sends and a backend answers, the L7 node with the
//! HTTP/1 fast path and the one without deliver the same requests to the
//! backend and the same responses to the client: the differential test's
//! harness (edge/tests/it/l7/differential.rs) on fuzzed byte streams.
//!
//! Both nodes, the scripted backend and the runtime (current-thread, real
//! loopback sockets) live for the whole run; the nodes' timeouts are
//! short so that an input that leaves a connection waiting costs a
//! fraction of a second, and retries are not limited by a rate, which
//! would depend on how fast the inputs come.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

// The node under test and the comparison; the rest (clients, the
// differential test's helpers) serves the edge tests.
#[allow(dead_code)]
#[path = "../../edge/tests/it/l7/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../../edge/tests/it/l7/differential.rs"]
mod differential;

// `encode` is the seeder's.
#[allow(dead_code)]
#[path = "http1_input.rs"]
mod input;

use differential::{Message, Pair, Scripted, Settings};

const SETTINGS: Settings<'static> = Settings {
    tier: "timeouts: { connect: 1s, request_headers: 300ms, request_body: 300ms, response: 300ms, idle: 300ms }\n",
    pool: "retries: { min_per_second: 1000000 }",
};

/// Longest wait for a node to answer and close; its own timeouts end
/// every exchange well before.
const PATIENCE: Duration = Duration::from_secs(5);

/// The backend's answer and whether it closes after it.
type Answer = Arc<Mutex<(Vec<u8>, bool)>>;

struct World {
    runtime: tokio::runtime::Runtime,
    backend: Scripted,
    pair: Pair,
    answer: Answer,
}

impl World {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let answer: Answer = Arc::default();
        let script = answer.clone();
        let (backend, pair) = runtime.block_on(async move {
            let backend = Scripted::start(Arc::new(move |_: &Message| {
                script.lock().expect("not poisoned").clone()
            }))
            .await;
            let pair = Pair::start(&backend, SETTINGS).await;
            (backend, pair)
        });
        Self {
            runtime,
            backend,
            pair,
            answer,
        }
    }
}

thread_local! {
    static WORLD: World = World::start();
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input::Input::decode(data) else {
        return;
    };
    WORLD.with(|world| {
        *world.answer.lock().expect("not poisoned") = (input.answer.to_vec(), input.close);
        world
            .runtime
            .block_on(world.pair.compare(&world.backend, input.client, PATIENCE))
            .unwrap_or_else(|difference| panic!("the paths differ {difference}"));
    });
});
