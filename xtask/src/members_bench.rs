//! `bench members`: admit a referral tree of a million members (depth up
//! to 12) into the store with every member's trust (computed over the
//! tree before the rows are written), then read the membership back and
//! recompute every trust to check it, on SQLite and PostgreSQL; prints the
//! time of each phase and the process's peak memory. Target (issue 7): under 60 s and under 1 GiB on this machine.
//!
//! The tree: a thousandth of the members are first order (admitted face to
//! face); every other member is referred by a random earlier member whose
//! order is below 12, with an attribute trust and a rating drawn from the
//! ranges real tables give.

use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use tracecast_store::testing::TestStore;
use tracecast_store::BulkMember;

#[derive(clap::Parser)]
pub struct Options {
    #[arg(long, default_value_t = 1_000_000)]
    pub members: usize,
    #[arg(long, default_value_t = 12)]
    pub depth: u32,
    #[arg(long, value_enum, default_value = "both")]
    pub backend: crate::Backends,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let o: Options = crate::options("members", args);
    anyhow::ensure!(
        o.members > 0 && o.depth > 0,
        "--members and --depth must be positive"
    );
    Ok(o)
}

/// The referral tree: (referrer index, attribute trust, rating).
fn tree(n: usize, depth: u32) -> Vec<BulkMember> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let roots = (n / 1000).max(1);
    let mut order = Vec::with_capacity(n);
    // Members who may still refer (order below the depth).
    let mut referrers: Vec<usize> = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let referrer = (i >= roots).then(|| referrers[rng.gen_range(0..referrers.len())]);
        let o = referrer.map_or(1, |r: usize| order[r] + 1);
        order.push(o);
        if o < depth {
            referrers.push(i);
        }
        out.push(BulkMember {
            name: format!("member-{i}"),
            referrer,
            attribute_trust: rng.gen_range(0.5..=1.0),
            rating: rng.gen_range(0.8..=1.0),
        });
    }
    out
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "tracecast members benchmark: {} members, depth up to {}\n",
        o.members, o.depth
    );
    println!("| backend | admit with trust (s) | load (s) | recompute (s) | total (s) | peak memory (MiB) | target |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for backend in &o.backend.list() {
        rt.block_on(async {
            let store = TestStore::new(*backend).await.context("a test store")?;
            let s = &store.store;
            // The tree (with every member's name) is made for each backend
            // and dropped once admitted, as an import would.
            let members = tree(o.members, o.depth);
            let start = Instant::now();
            s.bulk_add_members(&members).await?;
            let admit = start.elapsed().as_secs_f64();
            drop(members);
            let t = Instant::now();
            let g = s.member_graph().await?;
            let load = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut forest = g.forest()?;
            forest.compute();
            let compute = t.elapsed().as_secs_f64();
            // Every trust was written at admission; recomputing the stored
            // membership must agree with it.
            let differ = forest
                .trust()
                .iter()
                .zip(&g.trust)
                .filter(|(a, b)| (*a - *b).abs() > 1e-9)
                .count();
            anyhow::ensure!(
                differ == 0,
                "{differ} stored trusts differ from a recomputation"
            );
            drop(forest);
            let total = start.elapsed().as_secs_f64();
            let peak = peak_mib();
            println!(
                "| {} | {admit:.1} | {load:.1} | {compute:.2} | {total:.1} | {peak:.0} | {} |",
                backend.name(),
                if total < 60.0 && peak < 1024.0 {
                    "met"
                } else {
                    "NOT met"
                }
            );
            store.finish().await;
            anyhow::Ok(())
        })?;
    }
    println!("\n(peak memory is the whole process's so far, the tree included)");
    Ok(())
}
