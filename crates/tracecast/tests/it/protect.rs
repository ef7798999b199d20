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

/// `tracecast licence get DELIVERY --recipient RECIPIENT --out OUT` as
/// `user`, which must succeed.
fn licence_get(net: &Net, user: &Path, delivery: &str, recipient: &str, out: &Path) {
    ok(net.run(
        user,
        &[
            "licence",
            "get",
            delivery,
            "--recipient",
            recipient,
            "--out",
            p(out),
        ],
    ));
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
    licence_get(&net, &alice, &delivery, &age_recipient, &age_licence);
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
    licence_get(&net, &alice, &delivery, out.trim(), &dev_licence);
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
    licence_get(&net, &alice, &delivery, "clearkey", &ck_licence);
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

    // No key reaches a log: not the copy's key (as the edge fetched it
    // and the ClearKey licence carries it), not the user's age or device
    // secret.
    fn jwk_k(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(m) if m.get("kty").is_some_and(|k| k == "oct") => {
                m.get("k").and_then(|k| k.as_str()).map(str::to_owned)
            }
            serde_json::Value::Object(m) => m.values().find_map(jwk_k),
            serde_json::Value::Array(a) => a.iter().find_map(jwk_k),
            _ => None,
        }
    }
    let payload = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(ck["payload"].as_str().unwrap())
            .unwrap()
    };
    let content_key = jwk_k(&serde_json::from_slice(&payload).unwrap())
        .expect("a ClearKey licence carries its key");
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

/// GET `path` of `base` with the token in `token_file`.
fn get(base: &str, token_file: &Path, path: &str) -> serde_json::Value {
    let client = tracecast_client::OriginClient::new(
        base,
        std::fs::read_to_string(token_file).unwrap().trim(),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.call(reqwest::Method::GET, path, None))
        .unwrap()
}

/// A roaming server in its own process, beside an origin that issues only
/// ClearKey: the origin has it convert a device licence before answering
/// (way 3, the request signed with the origin's key), and a package order
/// given to it buys at the origin with its partner account for a user who
/// consented, converts the licence into age and bills the user (way 2).
#[test]
fn a_roaming_server_in_another_process_converts_and_buys_for_users() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut net = Net::start(dir, None, None);
    let provider = net.account("provider", "aurora");
    let alice = net.account("user", "alice");
    let partner_token = net.account("partner", "roaming");
    let src = music_wav(dir, 10.0);
    let (_, id) = net.publish(&provider, &src, "Sealed", "1.50", &["--protect"]);

    // The roaming process: the origin's keys for its agreement, its
    // partner token there, and the origin's database for its users.
    let issuer = get(&net.base, &net.admin, "/v1/licences/issuer");
    let roaming_port = crate::delivery::free_port();
    let roaming_base = format!("http://127.0.0.1:{roaming_port}");
    let roaming_conf = dir.join("roaming.toml");
    std::fs::write(
        &roaming_conf,
        format!(
            "data = {:?}\nroles = [\"roaming\"]\ndatabase = {:?}\n\
             [roaming]\nname = \"roaming\"\nfee = \"0.10\"\n\
             [[roaming.agreements]]\nissuer = \"origin\"\nsigning_key = {}\nagreement_key = {}\n\
             origin = {:?}\ntoken_file = {:?}\n",
            p(&dir.join("roaming")),
            format!("sqlite://{}", p(&dir.join("origin").join("tracecast.db"))),
            issuer["key"],
            issuer["agreement_key"],
            net.base,
            p(&partner_token),
        ),
    )
    .unwrap();
    let _roaming = crate::delivery::Proc::start(
        dir.join("roaming.log"),
        vec!["--config".into(), p(&roaming_conf).into()],
        Vec::new(),
        roaming_port,
        "/roaming/v1/keys",
    );
    let keys = get(&roaming_base, &net.admin, "/roaming/v1/keys");
    // The origin, restarted with the agreement: ClearKey only, the rest
    // converted by the roaming server.
    let origin_conf = dir.join("origin-licences.toml");
    std::fs::write(
        &origin_conf,
        format!(
            "[licences]\nsystems = [\"clearkey\"]\n\
             [licences.roaming]\nname = \"roaming\"\nsigning_key = {}\nagreement_key = {}\nurl = {roaming_base:?}\n",
            keys["signing_key"], keys["agreement_key"]
        ),
    )
    .unwrap();
    net.origin
        .restart_with(&["--config".into(), p(&origin_conf).into()]);

    // Way 3: alice's device licence comes from the roaming server.
    let sealed = dir.join("alice.flac.tcprot");
    let b = json(net.run(&alice, &["buy", &id, "--out", p(&sealed), "--json"]));
    let delivery = b["delivery"].as_i64().unwrap().to_string();
    let dev_key = dir.join("alice.device");
    let recipient = keygen("device", &dev_key);
    let dev_licence = dir.join("device.licence");
    licence_get(&net, &alice, &delivery, recipient.trim(), &dev_licence);
    let l: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dev_licence).unwrap()).unwrap();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        l["payload"].as_str().unwrap(),
    )
    .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["issuer"], "roaming", "{payload}");
    let plain = dir.join("alice.flac");
    ok(decrypt(
        &net,
        &alice,
        &sealed,
        &dev_licence,
        &plain,
        &["--identity", p(&dev_key)],
    ));
    assert_eq!(&std::fs::read(&plain).unwrap()[..4], b"fLaC");

    // Way 2: without consent the roaming server cannot buy for alice.
    let age_key = dir.join("alice.age");
    let age = keygen("age", &age_key);
    let order_dir = dir.join("package");
    let order = |token: &Path| {
        crate::delivery::cli(
            &[
                "licence",
                "order",
                &format!("origin:{id}"),
                "--recipient",
                age.trim(),
                "--out-dir",
                p(&order_dir),
            ],
            token,
            &roaming_base,
        )
    };
    let out = order(&alice);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("has not consented"), "{text}");
    // Consent up to 2.00: one copy at 1.50 passes, a second does not.
    let out = ok(net.run(
        &alice,
        &["licence", "consent", "roaming", "--limit", "2.00"],
    ));
    assert!(out.contains("up to 2.00"), "{out}");
    let out = ok(order(&alice));
    assert!(out.contains("1 ordered, 1.60 charged"), "{out}");
    let licence = std::fs::read_dir(&order_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".age.licence"))
        .expect("the converted licence");
    let copy = std::fs::read_dir(&order_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tcprot"))
        .expect("the protected copy");
    let bought = dir.join("bought.flac");
    ok(decrypt(
        &net,
        &alice,
        &copy,
        &licence,
        &bought,
        &["--identity", p(&age_key)],
    ));
    // The copy the roaming server bought is marked for alice.
    let out = ok(net.run(&net.admin, &["trace", p(&bought)]));
    assert!(out.contains("marked for user alice"), "{out}");
    let out = order(&alice);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("limit"), "{text}");
    // Taken back: refused again.
    ok(net.run(&alice, &["licence", "consent", "roaming", "--revoke"]));
    let out = order(&alice);
    assert_eq!(out.status.code(), Some(1));

    // No process logged the user's secrets or the partner's token.
    let partner = std::fs::read_to_string(&partner_token).unwrap();
    let device = std::fs::read_to_string(&dev_key).unwrap();
    let mut logs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap();
            logs += 1;
            for secret in ["AGE-SECRET-KEY", device.trim(), partner.trim()] {
                assert!(!text.contains(secret), "a secret in {}", path.display());
            }
        }
    }
    assert_eq!(logs, 4, "the origin's, edges' and roaming server's logs");
}
