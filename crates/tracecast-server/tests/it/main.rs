//! The server's tests over HTTP, one module per subject, in one test
//! binary: one link of the whole server instead of one per subject (the
//! suite's build time), and the subjects' tests share the cores as they run.

mod common;

mod ab_http;
mod abuse;
mod cdn_http;
mod console_http;
mod contract_fuzz;
mod delivery_http;
mod hls_http;
mod mailbox_http;
mod members_http;
mod openapi;
mod purchases_http;
mod roaming_http;
mod settle_http;
mod share_http;
mod site_push;
