//! Writes the seeds that tracecast itself makes (protected files, signed
//! licences, tickets and links, shared messages) into `fuzz/corpus/`, so
//! the fuzzer starts from real shapes instead of guessing a magic number:
//! `cargo run --release -p tracecast-fuzz --example seeds`.

use std::path::Path;

use tracecast_protect::{
    encrypt_bytes, new_age_identity, new_x25519_keypair, ContentKey, Grant, Issuer, KeyId,
    Recipient, Rights,
};
use tracecast_share::message::{compose, Content, Outgoing};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("seed written");
    println!("fuzz/corpus/{target}/{name} ({} bytes)", bytes.len());
}

fn main() {
    let key = ContentKey::from_bytes([1; 16]);
    let key_id = KeyId([2; 16]);
    write(
        "protected_container",
        "seed-small",
        &encrypt_bytes(&key, key_id, b"hello, protected world"),
    );
    write(
        "protected_container",
        "seed-empty",
        &encrypt_bytes(&key, key_id, b""),
    );

    let issuer = Issuer::new("origin", ed25519_dalek::SigningKey::from_bytes(&[4; 32]));
    let grant = Grant {
        user: "alice",
        content: 7,
        key_id,
        rights: Rights {
            not_before: 0,
            not_after: 4_000_000_000,
        },
        now: 1_700_000_000,
    };
    let (_, age_public) = new_age_identity();
    let (_, device_public) = new_x25519_keypair();
    let recipients = [
        ("clearkey", Recipient::Clearkey),
        (
            "age",
            format!("age:{age_public}")
                .parse()
                .expect("an age recipient"),
        ),
        ("device", Recipient::Device(device_public)),
    ];
    for (name, recipient) in recipients {
        let (licence, signed) = issuer
            .issue_licence(&grant, &key, &recipient, None)
            .expect("a licence");
        write(
            "licence",
            &format!("signed-{name}.json"),
            signed.to_json().as_bytes(),
        );
        write(
            "licence",
            &format!("payload-{name}.json"),
            &serde_json::to_vec(&licence).expect("a licence serialises"),
        );
    }

    let origin = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let ticket: tracecast_delivery::Ticket = serde_json::from_value(serde_json::json!({
        "delivery": 1, "content": 1, "tier": "lossless", "user": 1, "content_server": 1,
        "edge": 1, "expires": 10,
    }))
    .expect("a ticket");
    let link = tracecast_delivery::LinkKey::from_bytes([6; 32]);
    write(
        "ticket_and_link",
        "seed",
        format!("{}\n1\n10\n{}\n", ticket.sign(&origin), link.sign(1, 10)).as_bytes(),
    );

    for (name, content) in [
        ("attachment.eml", Content::Attachment(b"RIFF....WAVEfmt ")),
        (
            "link.eml",
            Content::Link {
                url: "https://service.example/service/v1/files/1/a.wav?sig=00",
                expires: 1_700_000_000,
                length: 1 << 20,
            },
        ),
    ] {
        let message = compose(&Outgoing {
            gateway: "kenji-gw",
            device: "kenji-phone",
            recipient: "alice",
            recipient_box: "user:alice",
            text: "Look at this\nsecond line",
            filename: "../holiday clip.wav",
            media_type: "audio/wav",
            content,
            date: 1_700_000_000,
            message_id: "<1@kenji-gw>",
        });
        write("mime_message", name, &message);
    }
}
