//! `tracecast members` from the command line against an origin and its
//! edges as processes: a first-order member admitted face to face, a
//! referred member admitted on their referrer's approval, the tree, and a
//! purchase limited to the quality the member's trust allows.

use crate::delivery::{json, ok, Net};
use crate::{music_wav, p};

#[test]
fn members_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let net = Net::start(dir, None, None);
    let provider = net.account("provider", "aurora");
    let ann = net.account("user", "ann");
    let ben = net.account("user", "ben");
    let admin = &net.admin;

    let out = ok(net.run(
        admin,
        &[
            "members",
            "admit",
            "ann",
            "--operator",
            "desk-1",
            "--document",
            "passport ...1234",
            "--occupation",
            "teacher",
            "--place",
            "home",
            "--history",
            "long-standing",
        ],
    ));
    assert!(out.contains("first-order member, trust 0.855"), "{out}");
    // Only an administrator admits face to face.
    let out = net.run(
        &ben,
        &[
            "members",
            "admit",
            "ben",
            "--operator",
            "x",
            "--document",
            "y",
        ],
    );
    assert_eq!(out.status.code(), Some(2));

    let out = ok(net.run(
        &ben,
        &[
            "members",
            "apply",
            "--referrer",
            "ann",
            "--occupation",
            "student",
            "--place",
            "online-only",
        ],
    ));
    assert!(
        out.contains("application 1 sent through ann: 1 level(s)"),
        "{out}"
    );
    // ben cannot approve himself; ann can.
    assert_eq!(
        net.run(&ben, &["members", "approve", "1", "--rating", "1"])
            .status
            .code(),
        Some(2)
    );
    let out = ok(net.run(&ann, &["members", "approve", "1", "--rating", "0.8"]));
    assert!(out.contains("admitted as order 2"), "{out}");
    let show = ok(net.run(&ben, &["members", "show", "ben"]));
    assert!(
        show.contains("order 2") && show.contains("referred by ann"),
        "{show}"
    );
    assert!(show.contains("best quality: audio preview"), "{show}");
    let tree = ok(net.run(admin, &["members", "tree"]));
    assert!(
        tree.contains("ann (order 1") && tree.contains("\n  ben (order 2"),
        "{tree}"
    );

    // ben's trust allows previews only.
    let src = music_wav(dir, 12.0);
    let (_, id) = net.publish(&provider, &src, "Etude", "1", &[]);
    let out = net.run(
        &ben,
        &[
            "buy",
            &id,
            "--tier",
            "lossless",
            "--out",
            p(&dir.join("x.flac")),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allows preview at best"));
    let b = json(net.run(
        &ben,
        &["buy", &id, "--out", p(&dir.join("y.flac")), "--json"],
    ));
    assert_eq!(b["tier"], "preview", "{b}");

    // Reserved for first order: cy (order 2, trusted enough for
    // lossless) asks ann, who grants it.
    let cy = net.account("user", "cy");
    let out = ok(net.run(
        &cy,
        &[
            "members",
            "apply",
            "--referrer",
            "ann",
            "--occupation",
            "teacher",
            "--place",
            "home",
            "--history",
            "long-standing",
        ],
    ));
    assert!(out.contains("application 2 sent through ann"), "{out}");
    ok(net.run(&ann, &["members", "approve", "2", "--rating", "1"]));
    let out = ok(net.run(
        &provider,
        &["content", "reserve", &id, "--up-to-order", "1"],
    ));
    assert!(out.contains("reserved for members up to order 1"), "{out}");
    let out = net.run(&cy, &["buy", &id, "--out", p(&dir.join("z.flac"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tracecast members ask"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ok(net.run(&cy, &["members", "ask", &id]));
    assert!(
        out.contains("request 1 pending; asked ann (all must grant)"),
        "{out}"
    );
    // Only the members asked decide.
    assert_eq!(
        net.run(&ben, &["members", "grant", "1"]).status.code(),
        Some(2)
    );
    let out = ok(net.run(&ann, &["members", "grant", "1"]));
    assert!(out.contains("request 1: granted"), "{out}");
    let leaked = dir.join("leaked.flac");
    ok(net.run(&cy, &["buy", &id, "--out", p(&leaked)]));

    // The copy leaks: the administrator's trace suspends cy and halves
    // ann's standing (and so ben's trust); the tree shows it.
    let out = ok(net.run(admin, &["trace", p(&leaked)]));
    assert!(out.contains("member cy suspended for the leak"), "{out}");
    assert!(out.contains("referrer ann: trust 0.855 -> 0.427"), "{out}");
    let tree = ok(net.run(admin, &["members", "tree"]));
    assert!(
        tree.contains("ann (order 1, trust 0.427, standing 0.500)")
            && tree.contains("  cy (order 2, trust 0.000, 1 leak(s), SUSPENDED)"),
        "{tree}"
    );
    let out = ok(net.run(admin, &["trace", p(&leaked)]));
    assert!(out.contains("was recorded before (suspended)"), "{out}");
    let out = net.run(&cy, &["buy", &id, "--out", p(&dir.join("again.flac"))]);
    assert_eq!(out.status.code(), Some(2));
}
