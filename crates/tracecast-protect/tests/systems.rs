//! Every protection system end to end, conversions between all of them by
//! a roaming server, the refusals the roaming scheme promises, and the real
//! `age` command (Debian's) opening an age licence.

use std::process::Command;

use ed25519_dalek::SigningKey;
use tracecast_protect::{
    decrypt_bytes, encrypt_bytes, new_age_identity, new_x25519_keypair, Agreement, ContentKey,
    Grant, Issuer, KeyId, ProtectError, Recipient, Rights, RoamingAgreement, RoamingServer, Secret,
    SignedLicence, Trusted,
};

const NOW: i64 = 1_800_000_000;

/// An issuer with a roaming agreement with a roaming server.
fn agreement(seed: u8, name: &str) -> (Issuer, RoamingAgreement, RoamingServer) {
    let store = Issuer::new(name, SigningKey::from_bytes(&[seed; 32]));
    let (store_secret, store_public) = new_x25519_keypair();
    let (server_secret, server_public) = new_x25519_keypair();
    let side =
        RoamingAgreement::for_issuer(name, &store_secret, "roaming", &server_public).unwrap();
    let server = RoamingServer::new(
        Issuer::new("roaming", SigningKey::from_bytes(&[2; 32])),
        server_secret,
        &[Agreement {
            issuer: name.into(),
            signing: store.verifying_key(),
            agreement_public: store_public,
        }],
    )
    .unwrap();
    (store, side, server)
}

struct User {
    recipients: Vec<(Recipient, Secret)>,
}

fn user() -> User {
    let (age_secret, age_public) = new_age_identity();
    let (dev_secret, dev_public) = new_x25519_keypair();
    User {
        recipients: vec![
            (Recipient::Clearkey, Secret::None),
            (Recipient::Age(age_public), Secret::Age(age_secret)),
            (Recipient::Device(dev_public), Secret::Device(dev_secret)),
        ],
    }
}

fn grant(user: &str, content: i64, key_id: KeyId) -> Grant<'_> {
    Grant {
        user,
        content,
        key_id,
        rights: Rights {
            not_before: NOW - 10,
            not_after: NOW + 3600,
        },
        now: NOW,
    }
}

#[test]
fn every_system_opens_its_licence_and_converts_to_every_other() {
    let (store, side, roaming) = agreement(1, "store-a");
    let trusted = Trusted::new()
        .with("store-a", store.verifying_key())
        .with("roaming", roaming.verifying_key());
    let alice = user();
    let key = ContentKey::generate();
    let kid = KeyId::generate();
    let song = b"a marked copy, in chunks".repeat(10_000);
    let sealed = encrypt_bytes(&key, kid, &song);
    for (from, from_secret) in &alice.recipients {
        let lic = store
            .issue(&grant("alice", 7, kid), &key, from, Some(&side))
            .unwrap();
        // Through the wire form and back.
        let lic = SignedLicence::parse(lic.to_json().as_bytes()).unwrap();
        let l = lic.verify(&trusted, "alice", NOW).unwrap();
        assert_eq!(l.system, from.system());
        let k = l.content_key(from_secret).unwrap();
        assert_eq!(decrypt_bytes(&sealed, l.key_id, &k).unwrap(), song);
        for (to, to_secret) in &alice.recipients {
            let c = roaming.convert(&lic, "alice", to, NOW).unwrap();
            let n = c.converted.verify(&trusted, "alice", NOW).unwrap();
            assert_eq!(
                (n.user.as_str(), n.content, n.key_id, n.system),
                ("alice", 7, kid, to.system())
            );
            assert_eq!(n.converted_from.as_deref(), Some(l.id.as_str()));
            assert!(n.rights.not_after <= l.rights.not_after);
            assert_eq!(n.content_key(to_secret).unwrap(), key);
        }
    }
}

#[test]
fn roaming_refuses_other_users_forgeries_expiry_and_issuers_without_agreement() {
    let (store, side, roaming) = agreement(1, "store-a");
    // Another store with its own agreement, but with another roaming
    // server: ours never heard of it.
    let (stranger, stranger_side, _) = agreement(9, "store-z");
    let key = ContentKey::generate();
    let kid = KeyId::generate();
    let bob = user();
    let lic = store
        .issue(
            &grant("alice", 7, kid),
            &key,
            &Recipient::Clearkey,
            Some(&side),
        )
        .unwrap();
    // Bob brings alice's licence: refused, whatever system he asks for.
    for (to, _) in &bob.recipients {
        assert!(matches!(
            roaming.convert(&lic, "bob", to, NOW),
            Err(ProtectError::WrongUser)
        ));
    }
    assert!(matches!(
        roaming.convert(&lic, "alice", &Recipient::Clearkey, NOW + 3600),
        Err(ProtectError::Expired)
    ));
    // No roaming copy: the issuer did not consent.
    let plain = store
        .issue(&grant("alice", 7, kid), &key, &Recipient::Clearkey, None)
        .unwrap();
    assert!(matches!(
        roaming.convert(&plain, "alice", &Recipient::Clearkey, NOW),
        Err(ProtectError::NotRoamable)
    ));
    // An issuer without an agreement.
    let foreign = stranger
        .issue(
            &grant("alice", 7, kid),
            &key,
            &Recipient::Clearkey,
            Some(&stranger_side),
        )
        .unwrap();
    assert!(matches!(
        roaming.convert(&foreign, "alice", &Recipient::Clearkey, NOW),
        Err(ProtectError::UnknownIssuer(_))
    ));
}

#[test]
fn a_licence_opens_only_its_own_content_and_only_with_its_secret() {
    let store = Issuer::new("store-a", SigningKey::from_bytes(&[1; 32]));
    let trusted = Trusted::new().with("store-a", store.verifying_key());
    let (k7, k8) = (ContentKey::generate(), ContentKey::generate());
    let (id7, id8) = (KeyId::generate(), KeyId::generate());
    let file8 = encrypt_bytes(&k8, id8, b"content eight");
    let alice = user();
    let eve = user();
    for (i, (to, secret)) in alice.recipients.iter().enumerate() {
        let l = store
            .issue(&grant("alice", 7, id7), &k7, to, None)
            .unwrap()
            .verify(&trusted, "alice", NOW)
            .unwrap();
        let key = l.content_key(secret).unwrap();
        // Content 7's licence against content 8's file: the key id differs.
        assert!(matches!(
            decrypt_bytes(&file8, l.key_id, &key),
            Err(ProtectError::WrongKey)
        ));
        // Someone else's secret opens nothing (ClearKey needs none).
        if i > 0 {
            assert!(l.content_key(&eve.recipients[i].1).is_err());
        }
    }
}

/// The age licence is a real age file: Debian's `age -d` opens it.
#[test]
fn the_age_command_decrypts_an_age_licence() {
    let which = Command::new("age").arg("--version").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "the age command is needed (apt-get install age)"
    );
    let store = Issuer::new("store-a", SigningKey::from_bytes(&[1; 32]));
    let trusted = Trusted::new().with("store-a", store.verifying_key());
    let (secret, public) = new_age_identity();
    let key = ContentKey::generate();
    let kid = KeyId::generate();
    let l = store
        .issue(&grant("alice", 7, kid), &key, &Recipient::Age(public), None)
        .unwrap()
        .verify(&trusted, "alice", NOW)
        .unwrap();
    let tracecast_protect::systems::WrappedKey::Age { armored, .. } = &l.key else {
        panic!("an age licence");
    };
    let dir = tempfile::tempdir().unwrap();
    let (id_file, age_file) = (dir.path().join("id.txt"), dir.path().join("key.age"));
    std::fs::write(&id_file, format!("{secret}\n")).unwrap();
    std::fs::write(&age_file, armored).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&id_file)
        .arg(&age_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwk: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(jwk["kty"], "oct");
    assert_eq!(jwk["kid"], b64.encode(kid.0));
    assert_eq!(
        b64.decode(jwk["k"].as_str().unwrap()).unwrap(),
        key.as_bytes()
    );
}

#[test]
fn key_files_hold_the_secret_their_recipient_names() {
    use base64::Engine;
    use tracecast_protect::{new_key_file, x25519_public, System};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let (text, recipient) = new_key_file(System::Device).unwrap();
    let secret = match &Secret::from_key_file(&text).unwrap() {
        Secret::Device(k) => *k,
        other => panic!("a device key file read as {other:?}"),
    };
    assert_eq!(
        format!("device:{}", b64.encode(x25519_public(&secret).unwrap())),
        recipient
    );

    let (text, recipient) = new_key_file(System::Age).unwrap();
    let identity = match &Secret::from_key_file(&text).unwrap() {
        Secret::Age(id) => id.parse::<age::x25519::Identity>().unwrap(),
        other => panic!("an age identity file read as {other:?}"),
    };
    assert_eq!(format!("age:{}", identity.to_public()), recipient);

    assert!(new_key_file(System::Clearkey).is_err());
    for bad in [
        "",
        "hello\n",
        "TRACECAST-DEVICE-KEY-short\n",
        "# AGE-SECRET-KEY-1 in a comment",
    ] {
        assert!(Secret::from_key_file(bad).is_err(), "{bad:?}");
    }
}
