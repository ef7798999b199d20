//! Service account ids: `TCA-dddd-dddd-dddd`, eleven digits of serial and
//! a Damm check digit. Damm's quasigroup catches every single wrong digit
//! and every swap of two neighbouring digits, the mistakes people make
//! when they type an id into a device.

use std::fmt;
use std::str::FromStr;

/// Why a text is not a service account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("a service account id looks like TCA-1234-5678-9012 (got {0} characters)")]
    Length(usize),
    #[error("a service account id starts with TCA-")]
    Prefix,
    #[error("a service account id has digits in three groups of four, separated by '-'")]
    Shape,
    #[error(
        "the service account id's check digit is wrong: mistyped, or not issued by the service"
    )]
    CheckDigit,
    #[error("serial {0} is out of range (at most 11 digits)")]
    Serial(u64),
}

/// Damm's table: a totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The Damm interim digit of `digits` (0 when a valid check digit ends
/// them).
fn damm(digits: impl IntoIterator<Item = u8>) -> u8 {
    digits
        .into_iter()
        .fold(0, |i, d| DAMM[usize::from(i)][usize::from(d)])
}

const SERIAL_DIGITS: usize = 11;
const MAX_SERIAL: u64 = 99_999_999_999;
const PREFIX: &str = "TCA-";

/// Whether the service carries a device account's mail.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    /// Set up and sends are refused until an administrator reactivates it.
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Read from a store column.
impl TryFrom<String> for AccountStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [AccountStatus::Active, AccountStatus::Suspended]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown account status {s:?}"))
    }
}

/// A service account id, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceAccount(u64);

impl ServiceAccount {
    /// The id of serial `serial` (its check digit computed).
    pub fn new(serial: u64) -> Result<Self, AccountError> {
        if serial > MAX_SERIAL {
            return Err(AccountError::Serial(serial));
        }
        Ok(Self(serial))
    }

    pub fn serial(self) -> u64 {
        self.0
    }

    /// The id as someone might mistype it: its check digit one off, so
    /// the check refuses it (for demonstrations and tests of refusals).
    pub fn mistyped(self) -> String {
        let mut id = self.to_string().into_bytes();
        if let Some(last) = id.last_mut() {
            *last = if *last == b'9' { b'0' } else { *last + 1 };
        }
        String::from_utf8(id).expect("ASCII digits")
    }

    fn digits(self) -> [u8; SERIAL_DIGITS + 1] {
        let mut out = [0u8; SERIAL_DIGITS + 1];
        let mut n = self.0;
        for d in out[..SERIAL_DIGITS].iter_mut().rev() {
            *d = u8::try_from(n % 10).expect("a digit");
            n /= 10;
        }
        out[SERIAL_DIGITS] = damm(out[..SERIAL_DIGITS].iter().copied());
        out
    }
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        for (i, d) in self.digits().iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                f.write_str("-")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ServiceAccount {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let len = s.chars().count();
        if len != PREFIX.len() + 14 {
            return Err(AccountError::Length(len));
        }
        let rest = s.strip_prefix(PREFIX).ok_or(AccountError::Prefix)?;
        let mut digits = Vec::with_capacity(SERIAL_DIGITS + 1);
        for (i, c) in rest.chars().enumerate() {
            match (i % 5 == 4, c) {
                (true, '-') => {}
                (false, '0'..='9') => {
                    digits.push(u8::try_from(c.to_digit(10).expect("a digit")).expect("a digit"))
                }
                _ => return Err(AccountError::Shape),
            }
        }
        if digits.len() != SERIAL_DIGITS + 1 {
            return Err(AccountError::Shape);
        }
        if damm(digits.iter().copied()) != 0 {
            return Err(AccountError::CheckDigit);
        }
        let serial = digits[..SERIAL_DIGITS]
            .iter()
            .fold(0u64, |n, &d| n * 10 + u64::from(d));
        Ok(Self(serial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_read_back_and_unknown_ones_are_errors() {
        for a in [AccountStatus::Active, AccountStatus::Suspended] {
            assert_eq!(AccountStatus::try_from(a.as_str().to_owned()), Ok(a));
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
        for bad in ["", "Active", "banned", "suspended "] {
            assert!(AccountStatus::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_read_back_and_known_damm_values_hold() {
        // Damm's worked example: 572 has check digit 4.
        assert_eq!(damm([5, 7, 2]), 4);
        assert_eq!(damm([5, 7, 2, 4]), 0);
        let a = ServiceAccount::new(12_345_678_901).unwrap();
        let text = a.to_string();
        assert!(text.starts_with("TCA-1234-5678-901"), "{text}");
        assert_eq!(text.parse::<ServiceAccount>(), Ok(a));
        assert_eq!(
            ServiceAccount::new(0).unwrap().to_string(),
            "TCA-0000-0000-0000"
        );
        assert_eq!(
            ServiceAccount::new(MAX_SERIAL + 1),
            Err(AccountError::Serial(MAX_SERIAL + 1))
        );
        for (bad, want) in [
            ("TCA-1234", AccountError::Length(8)),
            ("XYZ-1234-5678-9012", AccountError::Prefix),
            ("TCA-1234-5678-90a2", AccountError::Shape),
            ("TCA-1234+5678-9012", AccountError::Shape),
        ] {
            assert_eq!(bad.parse::<ServiceAccount>(), Err(want), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_single_digit_error_is_caught(serial in 0..=MAX_SERIAL, at in 0usize..12, delta in 1u8..10) {
            let text = ServiceAccount::new(serial).unwrap().to_string();
            let mut chars: Vec<char> = text.chars().collect();
            let positions: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_digit()).collect();
            let i = positions[at];
            let d = chars[i].to_digit(10).unwrap() as u8;
            chars[i] = char::from(b'0' + (d + delta) % 10);
            let typo: String = chars.into_iter().collect();
            prop_assert_eq!(typo.parse::<ServiceAccount>(), Err(AccountError::CheckDigit));
        }

        #[test]
        fn every_neighbour_swap_is_caught(serial in 0..=MAX_SERIAL, at in 0usize..11) {
            let text = ServiceAccount::new(serial).unwrap().to_string();
            let mut chars: Vec<char> = text.chars().collect();
            let positions: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_digit()).collect();
            let (i, j) = (positions[at], positions[at + 1]);
            prop_assume!(chars[i] != chars[j]);
            chars.swap(i, j);
            let swapped: String = chars.into_iter().collect();
            prop_assert_eq!(swapped.parse::<ServiceAccount>(), Err(AccountError::CheckDigit));
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in "\\PC{0,24}") {
            let _ = s.parse::<ServiceAccount>();
        }
    }
}
