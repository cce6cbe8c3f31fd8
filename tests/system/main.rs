//! End-to-end tests of the shipped binaries, run the way a user runs them.

mod chaos;
mod console;
mod dns_client;
mod dnssec;
mod docs;
mod gslb_binary;
mod gslb_peers;
mod gslb_restart;
mod gslb_vantage;
mod gtm;
mod gtm_render;
mod knot_interop;
mod monitoring;
mod spill;
mod tiers;
