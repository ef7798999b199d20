//! Recordable media and what they hold.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DiscError;

/// A medium a kiosk writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Medium {
    /// 80-minute CD-R: 360,000 sectors.
    CdR,
    /// Single-layer DVD±R: 2,295,104 sectors (the smaller of -R and +R).
    DvdR,
    /// Dual-layer DVD±R: 4,171,712 sectors.
    DvdRDl,
    /// Single-layer BD-R: 12,219,392 sectors.
    BdR,
    /// Dual-layer BD-R: 24,438,784 sectors.
    BdRDl,
    /// A USB stick of this many megabytes (10^6 bytes, as sold; 2% is kept
    /// back for the stick's own tables). Written `usb-16g` or `usb-512m`.
    Usb(u32),
}

impl Medium {
    /// Bytes of image the medium takes.
    pub fn capacity(self) -> u64 {
        let sectors: u64 = match self {
            Medium::CdR => 360_000,
            Medium::DvdR => 2_295_104,
            Medium::DvdRDl => 4_171_712,
            Medium::BdR => 12_219_392,
            Medium::BdRDl => 24_438_784,
            Medium::Usb(mb) => return u64::from(mb) * 1_000_000 / 100 * 98,
        };
        sectors * crate::SECTOR
    }

    /// Whether a burner writes it (else it is copied to a stick).
    pub fn is_disc(self) -> bool {
        !matches!(self, Medium::Usb(_))
    }

    /// Checks an image of `bytes` fits.
    pub fn check_fits(self, bytes: u64) -> Result<(), DiscError> {
        if bytes > self.capacity() {
            return Err(DiscError::TooBig {
                medium: self.to_string(),
                needed: bytes,
                capacity: self.capacity(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Medium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Medium::CdR => f.write_str("cd-r"),
            Medium::DvdR => f.write_str("dvd-r"),
            Medium::DvdRDl => f.write_str("dvd-r-dl"),
            Medium::BdR => f.write_str("bd-r"),
            Medium::BdRDl => f.write_str("bd-r-dl"),
            Medium::Usb(mb) if mb % 1000 == 0 => write!(f, "usb-{}g", mb / 1000),
            Medium::Usb(mb) => write!(f, "usb-{mb}m"),
        }
    }
}

impl FromStr for Medium {
    type Err = DiscError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "cd-r" | "cdr" | "cd" => Medium::CdR,
            "dvd-r" | "dvdr" | "dvd" | "dvd+r" => Medium::DvdR,
            "dvd-r-dl" | "dvd-dl" => Medium::DvdRDl,
            "bd-r" | "bdr" | "bd" => Medium::BdR,
            "bd-r-dl" | "bd-dl" => Medium::BdRDl,
            other => {
                let size = other.strip_prefix("usb-");
                let mb = size
                    .and_then(|g| g.strip_suffix('g'))
                    .and_then(|g| g.parse::<u32>().ok())
                    .filter(|g| (1..=4096).contains(g))
                    .map(|g| g * 1000)
                    .or_else(|| {
                        size.and_then(|m| m.strip_suffix('m'))
                            .and_then(|m| m.parse::<u32>().ok())
                            .filter(|m| (1..=4_096_000).contains(m))
                    })
                    .ok_or_else(|| DiscError::UnknownMedium(s.to_owned()))?;
                Medium::Usb(mb)
            }
        })
    }
}

impl Serialize for Medium {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Medium {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_read_back_and_know_their_size() {
        for m in [
            "cd-r", "dvd-r", "dvd-r-dl", "bd-r", "bd-r-dl", "usb-16g", "usb-64m",
        ] {
            assert_eq!(m.parse::<Medium>().unwrap().to_string(), m);
        }
        assert_eq!(Medium::CdR.capacity(), 737_280_000);
        assert!(Medium::BdR.capacity() > 25_000_000_000);
        assert!(Medium::CdR.check_fits(737_280_000).is_ok());
        assert!(matches!(
            Medium::CdR.check_fits(737_280_001),
            Err(DiscError::TooBig { .. })
        ));
        assert_eq!(Medium::Usb(16_000).capacity(), 15_680_000_000);
        for bad in ["floppy", "usb-0g", "usb-x", "usb-0m", ""] {
            assert!(bad.parse::<Medium>().is_err(), "{bad}");
        }
    }
}
