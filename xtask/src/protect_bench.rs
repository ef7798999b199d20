//! `bench protect`: the container's encryption throughput beside `openssl
//! speed -evp aes-128-gcm` (the same cipher, 64 KiB blocks) in the same
//! run, as a ratio (target at least 0.8), and licence conversions per
//! second on one core for every pair of protection systems (target at
//! least 10,000).

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use tracecast_protect::{
    encrypt_into, new_age_identity, new_x25519_keypair, Agreement, ContentKey, Grant, Issuer,
    KeyId, Recipient, Rights, RoamingAgreement, RoamingServer,
};

#[derive(clap::Parser)]
pub struct Options {
    /// Bytes to encrypt per round.
    #[arg(long, default_value_t = 512)]
    pub mib: usize,
    /// Conversions per system pair.
    #[arg(long, default_value_t = 3000)]
    pub conversions: usize,
}

pub fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let o: Options = crate::options("protect", args);
    anyhow::ensure!(o.mib > 0 && o.conversions > 0, "sizes must be positive");
    Ok(o)
}

/// OpenSSL's AES-128-GCM speed on 64 KiB blocks, one core, in bytes/s.
fn openssl_gcm() -> anyhow::Result<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-gcm",
            "-bytes",
            "65536",
            "-seconds",
            "3",
        ])
        .output()
        .context("running openssl speed (apt-get install openssl)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-128-gcm"))
        .context("openssl speed printed no AES-128-GCM line")?;
    let k = line
        .split_whitespace()
        .last()
        .and_then(|v| v.strip_suffix('k'))
        .context("openssl's figure")?;
    Ok(k.parse::<f64>()? * 1000.0)
}

/// The container's encryption speed on one core, best of three, bytes/s.
fn container_speed(mib: usize) -> f64 {
    let plain = vec![0x5au8; mib << 20];
    let key = ContentKey::generate();
    let kid = KeyId::generate();
    let mut best = f64::MAX;
    // The output buffer is reused, so the figure is the cipher's and the
    // one copy into the output, not the kernel's first touch of 512 MiB.
    let mut out = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        encrypt_into(&key, kid, &plain, &mut out);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(
            out.len() as u64,
            plain.len() as u64 + 48 + 16 * (plain.len() as u64).div_ceil(65_536)
        );
    }
    plain.len() as f64 / best
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    println!("tracecast protect benchmark (one core)\n");
    let peer = openssl_gcm()?;
    let ours = container_speed(o.mib);
    let ratio = ours / peer;
    println!("| encryption | MB/s |");
    println!("| --- | ---: |");
    println!(
        "| openssl speed -evp aes-128-gcm (64 KiB) | {:.0} |",
        peer / 1e6
    );
    println!(
        "| tracecast container, AES-128-GCM 64 KiB chunks ({} MiB) | {:.0} |",
        o.mib,
        ours / 1e6
    );
    println!(
        "\nratio {ratio:.2} (target at least 0.8: {})\n",
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );

    let store = Issuer::new("store-a", SigningKey::from_bytes(&[1; 32]));
    let (store_secret, store_public) = new_x25519_keypair();
    let (roam_secret, roam_public) = new_x25519_keypair();
    let side = RoamingAgreement::for_issuer("store-a", &store_secret, "roaming", &roam_public)?;
    let roaming = RoamingServer::new(
        Issuer::new("roaming", SigningKey::from_bytes(&[2; 32])),
        roam_secret,
        &[Agreement {
            issuer: "store-a".into(),
            signing: store.verifying_key(),
            agreement_public: store_public,
        }],
    )?;
    let (_, age_public) = new_age_identity();
    let (_, device_public) = new_x25519_keypair();
    let systems = [
        Recipient::Clearkey,
        Recipient::Age(age_public),
        Recipient::Device(device_public),
    ];
    let key = ContentKey::generate();
    let grant = Grant {
        user: "alice",
        content: 7,
        key_id: KeyId::generate(),
        rights: Rights {
            not_before: 0,
            not_after: i64::MAX,
        },
        now: 1,
    };
    println!("| from | to | conversions/s | target (10,000) |");
    println!("| --- | --- | ---: | --- |");
    for from in &systems {
        let source = store.issue(&grant, &key, from, Some(&side))?;
        for to in &systems {
            let t = Instant::now();
            for _ in 0..o.conversions {
                roaming.convert(&source, "alice", to, 2)?;
            }
            let rate = o.conversions as f64 / t.elapsed().as_secs_f64();
            println!(
                "| {} | {} | {rate:.0} | {} |",
                from.system(),
                to.system(),
                if rate >= 10_000.0 { "met" } else { "NOT met" }
            );
        }
    }
    Ok(())
}
