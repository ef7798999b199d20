//! Images checked by the tools burners and operating systems trust:
//! Debian's `isoinfo` (genisoimage) and `xorriso`. CI installs both.

use std::process::Command;

use tracecast_disc::{write_image, DiscFile, Plan};

fn tool(name: &str) -> bool {
    Command::new(name).arg("-version").output().is_ok()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn isoinfo_and_xorriso_read_names_modes_and_contents() {
    assert!(
        tool("isoinfo") && tool("xorriso"),
        "isoinfo (genisoimage) and xorriso are needed: apt-get install genisoimage xorriso"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        ("manifest.json".to_owned(), br#"{"delivery": 7}"#.to_vec()),
        (
            "Évening Song — delivery 7.flac".to_owned(),
            bytes(3, 100_001),
        ),
        ("empty.txt".to_owned(), Vec::new()),
        (
            "a very long name that will not fit eight dot three.bin".to_owned(),
            bytes(9, 4096),
        ),
    ];
    let plan = Plan::new(
        "TRACECAST 7",
        files
            .iter()
            .map(|(n, b)| DiscFile {
                name: n.clone(),
                len: b.len() as u64,
                modified: 1_750_000_000,
            })
            .collect(),
        1_750_000_000,
    )
    .unwrap();
    let path = dir.path().join("order.iso");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut last = (0, 0);
    let written = write_image(
        &plan,
        &mut out,
        |f| {
            let b = files.iter().find(|(n, _)| *n == f.name).unwrap().1.clone();
            Ok(std::io::Cursor::new(b))
        },
        &mut |done, total| last = (done, total),
    )
    .unwrap();
    drop(out);
    assert_eq!(written, plan.image_bytes());
    assert_eq!(last, (written, written));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), written);

    let iso = path.to_str().unwrap();
    let d = run(Command::new("isoinfo").args(["-d", "-i", iso]));
    assert!(d.contains("Volume id: TRACECAST_7"), "{d}");
    assert!(d.contains("Joliet with UCS level 3 found"), "{d}");
    assert!(d.contains("Rock Ridge signatures version 1 found"), "{d}");

    let rr = run(Command::new("isoinfo").args(["-R", "-l", "-i", iso]));
    for (name, b) in &files {
        assert!(
            rr.contains(name.as_str()),
            "Rock Ridge listing lacks {name}: {rr}"
        );
        let line = rr
            .lines()
            .find(|l| l.trim_end().ends_with(name.as_str()))
            .unwrap_or_else(|| panic!("{rr}"));
        assert!(line.starts_with("-r--r--r--"), "{line}");
        assert!(line.contains(&b.len().to_string()), "{line}");
    }
    let joliet = run(Command::new("isoinfo").args(["-J", "-l", "-i", iso]));
    // isoinfo prints Joliet names in the locale's 8-bit charset.
    assert!(
        joliet.contains("vening Song _ delivery 7.flac;1"),
        "{joliet}"
    );
    assert!(
        joliet.contains("a very long name that will not fit eight dot three.bin;1"),
        "{joliet}"
    );

    // Contents read back byte for byte through each tree.
    for (name, b) in &files {
        let got = Command::new("isoinfo")
            .args(["-R", "-i", iso, "-x", &format!("/{name}")])
            .output()
            .unwrap();
        assert_eq!(&got.stdout, b, "{name} through Rock Ridge");
    }
    let out_dir = dir.path().join("x");
    run(Command::new("xorriso").args([
        "-abort_on",
        "FAILURE",
        "-indev",
        iso,
        "-osirrox",
        "on",
        "-extract",
        "/",
        out_dir.to_str().unwrap(),
    ]));
    for (name, b) in &files {
        assert_eq!(
            &std::fs::read(out_dir.join(name)).unwrap(),
            b,
            "{name} through xorriso"
        );
    }
    // xorriso's listing, with the Rock Ridge modes it loaded.
    let report = Command::new("xorriso")
        .args([
            "-abort_on",
            "FAILURE",
            "-indev",
            iso,
            "-find",
            "/",
            "-exec",
            "lsdl",
        ])
        .output()
        .unwrap();
    assert!(report.status.success());
    let text = String::from_utf8_lossy(&report.stdout);
    let line = text.lines().find(|l| l.contains("manifest.json")).unwrap();
    assert!(line.starts_with("-r--r--r--"), "{text}");
}
