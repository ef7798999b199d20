//! Protected content from the command line against an origin and edges as
//! processes: a protected copy arrives encrypted; its buyer gets licences
//! in all three systems and decrypts it (whole, or a range) to the marked
//! copy, which still traces to them; another user gets no licence and
//! cannot use the buyer's; a tampered copy is refused and nothing is
//! written.

use std::path::Path;

use crate::delivery::{json, ok, Net};
use crate::{music_wav, p};

/// `tracecast licence keygen`: no server needed.
fn keygen(system: &str, out: &std::path::Path) -> String {
    ok(std::process::Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["licence", "keygen", system, "--out", p(out)])
        .output()
        .unwrap())
}

/// `tracecast decrypt FILE --licence LICENCE --out OUT [EXTRA…]` as `user`.
fn decrypt(
    net: &Net,
    user: &Path,
    file: &Path,
    licence: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["decrypt", p(file), "--licence", p(licence), "--out", p(out)];
    args.extend_from_slice(extra);
    net.run(user, &args)
}

#[test]
fn protected_copies_open_with_the_buyers_licence_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let net = Net::start(dir, None, None);
    let provider = net.account("provider", "aurora");
    let alice = net.account("user", "alice");
    let bob = net.account("user", "bob");

    let src = music_wav(dir, 12.0);
    let (c, id) = net.publish(&provider, &src, "Sealed", "1", &["--protect"]);
    assert_eq!(c["protected"], true, "{c}");
    let sealed = dir.join("alice.flac.tcprot");
    let b = json(net.run(&alice, &["buy", &id, "--out", p(&sealed), "--json"]));
    let delivery = b["delivery"].as_i64().unwrap().to_string();
    let bytes = std::fs::read(&sealed).unwrap();
    assert_eq!(&bytes[..6], b"TCPROT", "the copy arrives encrypted");

    // age: a key of alice's own, a licence for it, the plain copy.
    let age_key = dir.join("alice.age");
    let out = keygen("age", &age_key);
    let age_recipient = out.trim().to_owned();
    assert!(age_recipient.starts_with("age:age1"), "{out}");
    let age_licence = dir.join("age.licence");
    ok(net.run(
        &alice,
        &[
            "licence",
            "get",
            &delivery,
            "--recipient",
            &age_recipient,
            "--out",
            p(&age_licence),
        ],
    ));
    let plain = dir.join("alice.flac");
    let out = ok(decrypt(
        &net,
        &alice,
        &sealed,
        &age_licence,
        &plain,
        &["--identity", p(&age_key)],
    ));
    assert!(out.contains("decrypted with licence"), "{out}");
    let flac = std::fs::read(&plain).unwrap();
    assert_eq!(&flac[..4], b"fLaC");
    // The decrypted copy is the marked one: it traces to alice.
    let out = ok(net.run(&net.admin, &["trace", p(&plain)]));
    assert!(out.contains("marked for user alice"), "{out}");

    // device and clearkey open the same bytes; a range reads its chunks.
    let dev_key = dir.join("alice.device");
    let out = keygen("device", &dev_key);
    let dev_licence = dir.join("device.licence");
    ok(net.run(
        &alice,
        &[
            "licence",
            "get",
            &delivery,
            "--recipient",
            out.trim(),
            "--out",
            p(&dev_licence),
        ],
    ));
    let via_device = dir.join("device.flac");
    ok(decrypt(
        &net,
        &alice,
        &sealed,
        &dev_licence,
        &via_device,
        &["--identity", p(&dev_key)],
    ));
    assert_eq!(std::fs::read(&via_device).unwrap(), flac);
    let ck_licence = dir.join("clearkey.licence");
    ok(net.run(
        &alice,
        &[
            "licence",
            "get",
            &delivery,
            "--recipient",
            "clearkey",
            "--out",
            p(&ck_licence),
        ],
    ));
    let ck: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ck_licence).unwrap()).unwrap();
    assert_eq!(ck["format"], "tracecast-licence/1");
    let part = dir.join("part.bin");
    ok(decrypt(
        &net,
        &alice,
        &sealed,
        &ck_licence,
        &part,
        &["--range", "70000-140000"],
    ));
    assert_eq!(std::fs::read(&part).unwrap(), flac[70_000..=140_000]);

    // bob: no licence for alice's delivery, and hers does not serve him.
    let out = net.run(
        &bob,
        &["licence", "get", &delivery, "--recipient", "clearkey"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = decrypt(&net, &bob, &sealed, &ck_licence, &dir.join("bob.flac"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another user"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("bob.flac").exists());

    // One flipped byte: refused, nothing written.
    let mut tampered = bytes.clone();
    tampered[100_000] ^= 0x20;
    let bad = dir.join("tampered.tcprot");
    std::fs::write(&bad, &tampered).unwrap();
    let out = decrypt(&net, &alice, &bad, &ck_licence, &dir.join("t.flac"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("altered"));
    assert!(!dir.join("t.flac").exists() && !dir.join("t.partial").exists());

    // No key reaches a log: not the content key (as the edge fetched it),
    // not the user's age or device secret.
    let tier = b["tier"].as_str().unwrap();
    let admin = tracecast_client::OriginClient::new(
        &net.base,
        std::fs::read_to_string(&net.admin).unwrap().trim(),
    )
    .unwrap();
    let key = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(admin.call(
            reqwest::Method::GET,
            &format!("/v1/contents/{id}/keys/{tier}"),
            None,
        ))
        .unwrap();
    let content_key = key["key"].as_str().unwrap().to_owned();
    let age_secret = std::fs::read_to_string(&age_key).unwrap();
    let age_secret = age_secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let device_secret = std::fs::read_to_string(&dev_key).unwrap();
    let mut logs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap();
            logs += 1;
            for secret in [content_key.as_str(), age_secret, device_secret.trim()] {
                assert!(!text.contains(secret), "a key in {}", path.display());
            }
            assert!(!text.contains("AGE-SECRET-KEY"), "{}", path.display());
        }
    }
    assert!(logs >= 3, "the origin's and edges' logs were read");
}
