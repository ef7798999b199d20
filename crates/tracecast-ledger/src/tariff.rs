//! Rental tariffs: the fee of a rental follows how long, or on how many
//! days, the user watched (DESIGN.md "001" step 6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{money, parse_money, LedgerError};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// What a tariff counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TariffUnit {
    /// Each started minute of viewing.
    Minute,
    /// Each started hour of viewing.
    Hour,
    /// Each calendar day (UTC) on which the user watched.
    Day,
}

/// A price per unit of viewing, with an optional cap: written
/// `0.50/hour`, `0.02/minute max 3.00`, `1.50/day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RentalTariff {
    pub cents: i64,
    pub unit: TariffUnit,
    pub cap_cents: Option<i64>,
}

/// The viewing sessions of one rental: (start, end) in Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewing {
    pub sessions: Vec<(i64, i64)>,
}

impl Viewing {
    /// Milliseconds watched (overlapping sessions count once).
    pub fn total_ms(&self) -> i64 {
        let mut s: Vec<(i64, i64)> = self
            .sessions
            .iter()
            .filter(|(a, b)| b > a)
            .copied()
            .collect();
        s.sort_unstable();
        let mut total = 0i64;
        let mut reach = i64::MIN;
        for (a, b) in s {
            let a = a.max(reach);
            if b > a {
                total = total.saturating_add(b - a);
                reach = b;
            }
        }
        total
    }

    /// UTC days on which any session ran.
    pub fn days(&self) -> u64 {
        let mut days = std::collections::BTreeSet::new();
        for &(a, b) in self.sessions.iter().filter(|(a, b)| b >= a) {
            let (first, last) = (a.div_euclid(DAY_MS), b.div_euclid(DAY_MS));
            // A session longer than the rental period is a bad report;
            // bounding the walk keeps it cheap.
            for d in first..=last.min(first + 366) {
                days.insert(d);
            }
        }
        days.len() as u64
    }
}

impl RentalTariff {
    /// The fee for a rental's viewing.
    pub fn fee(&self, viewing: &Viewing) -> i64 {
        let units = match self.unit {
            TariffUnit::Minute => ceil_div(viewing.total_ms(), MINUTE_MS),
            TariffUnit::Hour => ceil_div(viewing.total_ms(), HOUR_MS),
            TariffUnit::Day => viewing.days() as i64,
        };
        let fee = self.cents.saturating_mul(units);
        self.cap_cents.map_or(fee, |cap| fee.min(cap))
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    if a <= 0 {
        0
    } else {
        (a - 1) / b + 1
    }
}

impl fmt::Display for RentalTariff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            TariffUnit::Minute => "minute",
            TariffUnit::Hour => "hour",
            TariffUnit::Day => "day",
        };
        write!(f, "{}/{unit}", money(self.cents))?;
        if let Some(cap) = self.cap_cents {
            write!(f, " max {}", money(cap))?;
        }
        Ok(())
    }
}

impl FromStr for RentalTariff {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            LedgerError::BadTariff(format!(
                "{s:?} is not a rental tariff ({why}); write e.g. 0.50/hour, 0.02/minute max 3.00 or 1.50/day"
            ))
        };
        let mut words = s.split_whitespace();
        let rate = words.next().ok_or_else(|| bad("empty"))?;
        let (price, unit) = rate.split_once('/').ok_or_else(|| bad("no /unit"))?;
        let cents = parse_money(price).map_err(|e| bad(&e))?;
        let unit = match unit {
            "minute" | "min" => TariffUnit::Minute,
            "hour" | "h" => TariffUnit::Hour,
            "day" | "d" => TariffUnit::Day,
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        let cap_cents = match (words.next(), words.next()) {
            (None, _) => None,
            (Some("max"), Some(cap)) => Some(parse_money(cap).map_err(|e| bad(&e))?),
            _ => return Err(bad("only \"max AMOUNT\" may follow the rate")),
        };
        if words.next().is_some() {
            return Err(bad("trailing words"));
        }
        Ok(Self {
            cents,
            unit,
            cap_cents,
        })
    }
}

impl Serialize for RentalTariff {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RentalTariff {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tariffs_count_started_units_and_days() {
        let per_hour: RentalTariff = "0.50/hour max 1.20".parse().unwrap();
        let v = |s: &[(i64, i64)]| Viewing {
            sessions: s.to_vec(),
        };
        assert_eq!(per_hour.fee(&v(&[])), 0);
        assert_eq!(per_hour.fee(&v(&[(0, 1)])), 50);
        assert_eq!(per_hour.fee(&v(&[(0, HOUR_MS + 1)])), 100);
        assert_eq!(per_hour.fee(&v(&[(0, 5 * HOUR_MS)])), 120, "capped");
        let per_min: RentalTariff = "0.02/minute".parse().unwrap();
        // Overlapping sessions count once: 90 s → 2 minutes.
        assert_eq!(per_min.fee(&v(&[(0, 60_000), (30_000, 90_000)])), 4);
        let per_day: RentalTariff = "1.50/day".parse().unwrap();
        assert_eq!(
            per_day.fee(&v(&[
                (DAY_MS - 10, DAY_MS + 10),
                (3 * DAY_MS, 3 * DAY_MS + 5)
            ])),
            450
        );
        assert_eq!(per_hour.to_string(), "0.50/hour max 1.20");
        for bad in [
            "",
            "0.5",
            "0.5/week",
            "x/hour",
            "0.5/hour cap 3",
            "0.5/hour max",
        ] {
            assert!(bad.parse::<RentalTariff>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_fee_never_exceeds_its_cap_and_grows_with_viewing(
            cents in 0i64..10_000, cap in 0i64..100_000,
            a in 0i64..10_000_000, len in 0i64..100_000_000, more in 0i64..100_000_000,
        ) {
            for unit in [TariffUnit::Minute, TariffUnit::Hour, TariffUnit::Day] {
                let t = RentalTariff { cents, unit, cap_cents: Some(cap) };
                let short = t.fee(&Viewing { sessions: vec![(a, a + len)] });
                let long = t.fee(&Viewing { sessions: vec![(a, a + len + more)] });
                prop_assert!(short <= cap && long <= cap);
                prop_assert!(short <= long);
                prop_assert!(short >= 0);
            }
        }

        #[test]
        fn tariff_text_round_trips(s in ".{0,30}") {
            if let Ok(t) = s.parse::<RentalTariff>() {
                prop_assert_eq!(t.to_string().parse::<RentalTariff>().unwrap(), t);
            }
        }
    }
}
