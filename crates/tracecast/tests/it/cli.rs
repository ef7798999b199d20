use serde_json::Value;

use crate::{music_wav, p, tracecast};

#[test]
fn keygen_writes_32_private_bytes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let out = tracecast(&["keygen", "--out", p(&key)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = tracecast(&["keygen", "--out", p(&key)]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read(&key).unwrap(), bytes, "key was overwritten");
    // The key never appears in what the command prints.
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let printed =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains(&hex[..16]));
}

#[test]
fn embed_then_detect_json_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    assert!(tracecast(&["keygen", "--out", p(&key)]).status.success());
    let input = music_wav(dir.path(), 20.0);
    for ext in ["wav", "flac"] {
        let marked = dir.path().join(format!("marked.{ext}"));
        let out = tracecast(&[
            "--quiet",
            "mark",
            "embed",
            "--key",
            p(&key),
            "--content-server",
            "7",
            "--edge",
            "3",
            "--user",
            "123456",
            "--home",
            "12",
            p(&input),
            p(&marked),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tracecast(&["mark", "detect", "--key", p(&key), "--json", p(&marked)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        assert_eq!(line.lines().count(), 1);
        assert!(line.starts_with(r#"{"found":true,"content_server":7,"edge":3,"home":12,"user":123456,"tag_ok":true,"confidence":"#), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["confidence"].as_f64().unwrap() > 0.5);
    }
    // The unmarked original: no mark, exit 1, null ids.
    let out = tracecast(&["mark", "detect", "--key", p(&key), "--json", p(&input)]);
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line.trim(),
        r#"{"found":false,"content_server":null,"edge":null,"home":null,"user":null,"tag_ok":false,"confidence":0.0}"#
    );
    // Human-readable form names the user.
    let marked = dir.path().join("marked.flac");
    let out = tracecast(&["mark", "detect", "--key", p(&key), p(&marked)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("user 123456"));
}

#[test]
fn another_key_finds_no_mark() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
    assert!(tracecast(&["keygen", "--out", p(&a)]).status.success());
    assert!(tracecast(&["keygen", "--out", p(&b)]).status.success());
    let input = music_wav(dir.path(), 10.0);
    let marked = dir.path().join("m.wav");
    let out = tracecast(&[
        "-q",
        "mark",
        "embed",
        "--key",
        p(&a),
        "--content-server",
        "1",
        "--edge",
        "2",
        "--user",
        "3",
        p(&input),
        p(&marked),
    ]);
    assert!(out.status.success());
    let out = tracecast(&["mark", "detect", "--key", p(&b), "--json", p(&marked)]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_files_and_arguments_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    assert!(tracecast(&["keygen", "--out", p(&key)]).status.success());
    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, b"ID3 but then nothing useful at all").unwrap();
    let out = tracecast(&["mark", "detect", "--key", p(&key), "--json", p(&junk)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error:") && err.contains("junk.mp3"), "{err}");
    assert!(!err.contains("panicked"));

    let missing = dir.path().join("nope.wav");
    let out = tracecast(&["mark", "detect", "--key", p(&key), p(&missing)]);
    assert_eq!(out.status.code(), Some(2));

    // Unsupported output extension is refused before any work.
    let input = music_wav(dir.path(), 2.0);
    let out = tracecast(&[
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "1",
        "--edge",
        "1",
        "--user",
        "1",
        p(&input),
        p(&dir.path().join("out.mp3")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".wav or .flac"));

    // A bad key file.
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, b"short").unwrap();
    let out = tracecast(&["mark", "detect", "--key", p(&bad_key), p(&input)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 raw bytes"));

    // Ids out of range are refused by the parser.
    let out = tracecast(&[
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "70000",
        "--edge",
        "1",
        "--user",
        "1",
        p(&input),
        p(&dir.path().join("o.wav")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = tracecast(&["demo", "--dir", p(dir.path())]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user 1000042"));
    assert!(!text.contains("BAD"));
    assert!(dir.path().join("copy-user-1000042.flac").exists());
}

/// Real sound-theme files from Debian (Ogg Vorbis): the longest carries a
/// mark end to end; none of them, unmarked, reads as marked; short ones
/// are marked without error.
#[test]
fn sound_theme_files() {
    let dir_path = std::path::Path::new("/usr/share/sounds/freedesktop/stereo");
    assert!(
        dir_path.exists(),
        "{} is missing: apt-get install sound-theme-freedesktop (.ci/run does)",
        dir_path.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    assert!(tracecast(&["keygen", "--out", p(&key)]).status.success());

    let alarm = dir_path.join("alarm-clock-elapsed.oga");
    let marked = dir.path().join("alarm.flac");
    let out = tracecast(&[
        "-q",
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "9",
        "--edge",
        "8",
        "--user",
        "77",
        p(&alarm),
        p(&marked),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tracecast(&["mark", "detect", "--key", p(&key), "--json", p(&marked)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""user":77"#));

    let mut checked = 0;
    for entry in std::fs::read_dir(dir_path).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "oga") {
            continue;
        }
        let out = tracecast(&["mark", "detect", "--key", p(&key), "--json", p(&path)]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "unmarked {} read as marked or failed",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} sound files");

    let short = dir_path.join("service-login.oga");
    let out = tracecast(&[
        "-q",
        "mark",
        "embed",
        "--key",
        p(&key),
        "--content-server",
        "1",
        "--edge",
        "1",
        "--user",
        "1",
        p(&short),
        p(&dir.path().join("short.wav")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
