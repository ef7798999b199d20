//! Sharing from a device through a phone gateway (DESIGN.md "000"), the
//! rules without I/O:
//!
//! - [`account`]: the service account ids the service server issues, with a
//!   Damm check digit so a gateway can refuse a mistyped or made-up id
//!   before it reaches the server;
//! - [`tus`]: the tus resumable upload protocol, version 1.0.0 (core,
//!   creation, termination and expiration): header values, upload
//!   metadata, and an upload's offset rules;
//! - [`gateway`]: set-up between a device, a gateway and the service
//!   server (the JSON shapes of steps 1-9, the gateway's device policy, the
//!   account format check, recipients as numbers or names);
//! - [`message`]: the shared message as MIME, with the content attached or
//!   a download link in a `message/external-body` part.
//!
//! The gateway, device and service roles (`tracecast-server`) use them.

pub mod account;
pub mod gateway;
pub mod message;
pub mod tus;

pub use account::{AccountError, AccountStatus, ServiceAccount};
pub use tus::{TusError, Upload};

/// `s` as one URL path segment: unreserved characters kept, every other
/// byte percent-encoded (`file` when empty).
pub fn url_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        "file".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_become_one_path_segment() {
        assert_eq!(super::url_segment("a b/c.jpg"), "a%20b%2Fc.jpg");
        assert_eq!(super::url_segment("+81 90"), "%2B81%2090");
        assert_eq!(super::url_segment(""), "file");
    }
}
