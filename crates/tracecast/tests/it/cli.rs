use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::{music_wav, p, tracecast};

/// Asserts the command succeeded, showing its stderr if not.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn new_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    ok(&tracecast(&["keygen", "--out", p(&key)]));
    key
}

/// `tracecast -q mark embed` for content server 7, edge 3, home 12 and `user`.
pub fn embed(key: &Path, user: &str, input: &Path, output: &Path) -> Output {
    tracecast(&[
        "-q",
        "mark",
        "embed",
        "--key",
        p(key),
        "--content-server",
        "7",
        "--edge",
        "3",
        "--home",
        "12",
        "--user",
        user,
        p(input),
        p(output),
    ])
}

pub fn detect_json(key: &Path, file: &Path) -> Output {
    tracecast(&["mark", "detect", "--key", p(key), "--json", p(file)])
}

#[test]
fn keygen_writes_32_private_bytes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let out = tracecast(&["keygen", "--out", p(&key)]);
    ok(&out);
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
    let key = new_key(dir.path(), "k.key");
    let input = music_wav(dir.path(), 20.0);
    for ext in ["wav", "flac"] {
        let marked = dir.path().join(format!("marked.{ext}"));
        ok(&embed(&key, "123456", &input, &marked));
        let out = detect_json(&key, &marked);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        assert_eq!(line.lines().count(), 1);
        assert!(
            line.starts_with(r#"{"found":true,"content_server":7,"edge":3,"home":12,"user":123456,"tag_ok":true,"confidence":"#),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["confidence"].as_f64().unwrap() > 0.5);
    }
    // The unmarked original: no mark, exit 1, null ids.
    let out = detect_json(&key, &input);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"found":false,"content_server":null,"edge":null,"home":null,"user":null,"tag_ok":false,"confidence":0.0}"#
    );
    // Human-readable form names the user.
    let out = tracecast(&[
        "mark",
        "detect",
        "--key",
        p(&key),
        p(&dir.path().join("marked.flac")),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("user 123456"));
}

#[test]
fn another_key_finds_no_mark() {
    let dir = tempfile::tempdir().unwrap();
    let a = new_key(dir.path(), "a.key");
    let b = new_key(dir.path(), "b.key");
    let input = music_wav(dir.path(), 10.0);
    let marked = dir.path().join("m.wav");
    ok(&embed(&a, "3", &input, &marked));
    assert_eq!(detect_json(&b, &marked).status.code(), Some(1));
}

#[test]
fn bad_files_and_arguments_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "k.key");
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let junk = dir.path().join("junk.mp3");
    std::fs::write(&junk, b"ID3 but then nothing useful at all").unwrap();
    let out = detect_json(&key, &junk);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("error:") && err.contains("junk.mp3"), "{err}");
    assert!(!err.contains("panicked"));

    assert_eq!(
        detect_json(&key, &dir.path().join("nope.wav"))
            .status
            .code(),
        Some(2)
    );

    // Unsupported output extension is refused before any work.
    let input = music_wav(dir.path(), 2.0);
    let out = embed(&key, "1", &input, &dir.path().join("out.mp3"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(".wav or .flac"));

    // A bad key file.
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, b"short").unwrap();
    let out = detect_json(&bad_key, &input);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("32 raw bytes"));

    // Ids and strengths out of range are refused by the parser.
    let out = embed(&key, "4294967296", &input, &dir.path().join("o.wav"));
    assert_eq!(out.status.code(), Some(2));
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
        "--strength",
        "9",
        p(&input),
        p(&dir.path().join("o.wav")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("0.25-4"));
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
    // The leaked MP3 cut is traced to bob, the cropped photo to carol.
    assert!(text.contains("-> bob (user 2)"), "{text}");
    assert!(text.contains("-> carol (user 3)"), "{text}");
    assert!(text.contains("-> no mark"), "{text}");
    assert!(!text.contains("BAD"), "{text}");
    assert!(text.contains("bill for delivery 2: 1.99 EUR"), "{text}");
    assert!(dir.path().join("copies/alice-nocturne.flac").exists());
    // Step 12: a memo attached, a recording by link, both saved by bob.
    assert!(
        text.contains("memo.wav (176 KB) to +81 90 1234 5678 (user:bob) as an attachment"),
        "{text}"
    );
    assert!(
        text.contains("as a signed, expiring download link"),
        "{text}"
    );
    assert!(dir.path().join("bob-saved/memo.wav").exists());
}

/// On a machine with only the Rust toolchain (no ffmpeg, lame, sox or
/// isoinfo on the PATH) the demo completes every step it can and says
/// which tool each skipped step needs and how to install it.
#[test]
fn the_demo_runs_without_outside_tools() {
    let dir = tempfile::tempdir().unwrap();
    let no_tools = dir.path().join("bin");
    std::fs::create_dir_all(&no_tools).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracecast"))
        .args(["demo", "--dir", p(&dir.path().join("demo"))])
        .env_clear()
        .env("HOME", dir.path())
        .env("PATH", &no_tools)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("BAD"), "{text}");
    assert!(text.contains("apt-get install ffmpeg"), "{text}");
    assert!(text.contains("apt-get install lame"), "{text}");
    assert!(text.contains("apt-get install genisoimage"), "{text}");
    // The steps that need no tool all ran.
    assert!(text.contains("-> bob (user 2)"), "{text}");
    assert!(text.contains("bob's inbox saved"), "{text}");
}

/// Real sound-theme files from Debian (Ogg Vorbis): the longest carries a
/// mark end to end; none of them, unmarked, reads as marked; short ones
/// are marked without error.
#[test]
fn sound_theme_files() {
    let themes = Path::new("/usr/share/sounds/freedesktop/stereo");
    assert!(
        themes.exists(),
        "{} is missing: apt-get install sound-theme-freedesktop (.ci/run does)",
        themes.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "k.key");

    let marked = dir.path().join("alarm.flac");
    ok(&embed(
        &key,
        "77",
        &themes.join("alarm-clock-elapsed.oga"),
        &marked,
    ));
    let out = detect_json(&key, &marked);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""user":77"#));

    let mut checked = 0;
    for entry in std::fs::read_dir(themes).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "oga") {
            continue;
        }
        let code = detect_json(&key, &path).status.code();
        assert_eq!(
            code,
            Some(1),
            "unmarked {} read as marked or failed",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} sound files");

    ok(&embed(
        &key,
        "1",
        &themes.join("service-login.oga"),
        &dir.path().join("short.wav"),
    ));
}
