//! Where buyers and edges are (DESIGN.md "001" step 2: without an edge
//! that holds the rendition, the nearest one serves). A region is a path
//! of labels, widest first (`eu-west-1`): two regions are as far apart as
//! the labels they do not share, so `eu-west-1` is nearer `eu-west-2` than
//! `us-east-1`. An administrator declares each edge's region; a buyer
//! names theirs, or the origin estimates it from the buyer's address by
//! the operator's table of networks.

use core::net::IpAddr;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Labels of a-z, 0-9, separated by `-`; at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error(
        "a region is 1-64 characters of labels a-z, 0-9 joined by '-' (like eu-west-1), not {0:?}"
    )]
    Malformed(String),
    #[error("{0:?} is not a network like 10.1.0.0/16 or 2001:db8::/32")]
    Network(String),
}

/// How far a region is when one side's is unknown: beyond any known one.
pub const UNKNOWN_DISTANCE: u32 = u32::MAX;

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('-')
    }

    /// The labels the two do not share, counted on the longer side: 0 for
    /// the same region.
    pub fn distance(&self, other: &Region) -> u32 {
        let shared = self
            .labels()
            .zip(other.labels())
            .take_while(|(a, b)| a == b)
            .count();
        let longer = self.labels().count().max(other.labels().count());
        (longer - shared) as u32
    }
}

/// From a buyer to an edge: when the buyer's region is unknown every edge
/// is as near as any other (designation falls back to load); an edge with
/// no declared region is farther than any that declared one.
pub fn distance(buyer: Option<&Region>, edge: Option<&Region>) -> u32 {
    match (buyer, edge) {
        (None, _) => 0,
        (Some(_), None) => UNKNOWN_DISTANCE,
        (Some(b), Some(e)) => b.distance(e),
    }
}

impl FromStr for Region {
    type Err = RegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.split('-').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if ok {
            Ok(Region(s.to_owned()))
        } else {
            Err(RegionError::Malformed(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for Region {
    type Error = RegionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The operator's table of networks by region, for estimating a buyer's
/// region from their address: the most specific network wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionMap {
    networks: Vec<(IpNet, Region)>,
}

impl RegionMap {
    /// From `region = ["network", ...]` entries.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> Result<Self, RegionError> {
        let mut networks = Vec::new();
        for (region, nets) in entries {
            let region: Region = region.parse()?;
            for n in nets {
                let net: IpNet = n.parse().map_err(|_| RegionError::Network(n.clone()))?;
                networks.push((net.trunc(), region.clone()));
            }
        }
        Ok(Self { networks })
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// The region of the most specific network holding `ip`. An IPv4
    /// address seen as IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener
    /// reports it) is matched as IPv4.
    pub fn estimate(&self, ip: IpAddr) -> Option<&Region> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks
            .iter()
            .filter(|(net, _)| net.contains(&ip))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Region {
        s.parse().unwrap()
    }

    #[test]
    fn regions_are_checked() {
        for ok in ["eu", "eu-west-1", "ap-southeast-2", "x9"] {
            assert!(ok.parse::<Region>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "EU",
            "eu--west",
            "-eu",
            "eu-",
            "eu west",
            "eu_west",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<Region>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Region>("\"Eu\"").is_err());
        assert_eq!(serde_json::to_string(&r("eu-west")).unwrap(), "\"eu-west\"");
    }

    #[test]
    fn distance_counts_the_labels_not_shared() {
        let cases = [
            ("eu-west-1", "eu-west-1", 0),
            ("eu-west-1", "eu-west-2", 1),
            ("eu-west-1", "eu-north-1", 2),
            ("eu-west-1", "us-east-1", 3),
            ("eu-west", "eu-west-1", 1),
            ("eu", "us", 1),
        ];
        for (a, b, d) in cases {
            assert_eq!(r(a).distance(&r(b)), d, "{a} {b}");
            assert_eq!(r(b).distance(&r(a)), d, "{b} {a}");
        }
        assert_eq!(distance(None, Some(&r("eu"))), 0);
        assert_eq!(distance(None, None), 0);
        assert_eq!(distance(Some(&r("eu")), None), UNKNOWN_DISTANCE);
        assert_eq!(distance(Some(&r("eu")), Some(&r("eu"))), 0);
    }

    #[test]
    fn the_most_specific_network_wins() {
        let eu = vec!["10.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()];
        let west = vec!["10.1.0.0/16".to_owned()];
        let map = RegionMap::new([("eu", eu.as_slice()), ("eu-west", west.as_slice())]).unwrap();
        let cases: [(&str, Option<&str>); 6] = [
            ("10.2.3.4", Some("eu")),
            ("10.1.3.4", Some("eu-west")),
            ("::ffff:10.1.0.9", Some("eu-west")),
            ("2001:db8:5::1", Some("eu")),
            ("192.0.2.1", None),
            ("::1", None),
        ];
        for (ip, want) in cases {
            let got = map.estimate(ip.parse().unwrap()).map(Region::as_str);
            assert_eq!(got, want, "{ip}");
        }
        let bad = vec!["10.0.0.0/33".to_owned()];
        assert!(RegionMap::new([("eu", bad.as_slice())]).is_err());
        assert!(RegionMap::new([("EU", eu.as_slice())]).is_err());
    }
}
