//! The store's tests, one module per subject, in one test binary (one link
//! instead of one per subject); each runs on SQLite and on PostgreSQL.

mod common;

mod blob;
mod deliveries;
mod ledger;
mod mailbox;
mod members;
mod protect;
mod schema;
mod sites;
