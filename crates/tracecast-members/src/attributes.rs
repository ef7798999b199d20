//! Attribute trust: what an applicant's occupation, place of activity and
//! history say, from a table the operator configures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{unit, MembersError};

/// What an applicant declares (and an operator or referrer may check).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attributes {
    pub occupation: String,
    pub place: String,
    pub history: String,
}

/// Factors per attribute value; an applicant's attribute trust is the
/// product of their three factors (an unknown value counts `unknown`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeTable {
    pub occupation: BTreeMap<String, f64>,
    pub place: BTreeMap<String, f64>,
    pub history: BTreeMap<String, f64>,
    pub unknown: f64,
}

impl Default for AttributeTable {
    fn default() -> Self {
        let m = |v: &[(&str, f64)]| v.iter().map(|(k, f)| ((*k).to_owned(), *f)).collect();
        Self {
            occupation: m(&[
                ("civil-servant", 0.95),
                ("teacher", 0.95),
                ("office-worker", 0.9),
                ("self-employed", 0.85),
                ("student", 0.8),
                ("unemployed", 0.7),
            ]),
            place: m(&[
                ("registered-business", 1.0),
                ("home", 0.9),
                ("online-only", 0.7),
            ]),
            history: m(&[
                ("long-standing", 1.0),
                ("new", 0.8),
                ("prior-infringement", 0.3),
            ]),
            unknown: 0.6,
        }
    }
}

impl AttributeTable {
    /// Checks every factor is in [0, 1].
    pub fn check(&self) -> Result<(), MembersError> {
        unit(self.unknown)?;
        for (name, table) in [
            ("occupation", &self.occupation),
            ("place", &self.place),
            ("history", &self.history),
        ] {
            for (k, v) in table {
                unit(*v).map_err(|_| {
                    MembersError::BadTable(format!("{name} {k:?}: {v} is not in [0, 1]"))
                })?;
            }
        }
        Ok(())
    }

    /// The attribute trust of `a`.
    pub fn trust(&self, a: &Attributes) -> f64 {
        let f = |t: &BTreeMap<String, f64>, v: &str| {
            t.get(&v.trim().to_ascii_lowercase())
                .copied()
                .unwrap_or(self.unknown)
                .clamp(0.0, 1.0)
        };
        f(&self.occupation, &a.occupation) * f(&self.place, &a.place) * f(&self.history, &a.history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_multiply_and_unknown_ones_count_the_default() {
        let t = AttributeTable::default();
        t.check().unwrap();
        let a = Attributes {
            occupation: "Teacher".into(),
            place: "home".into(),
            history: "long-standing".into(),
        };
        assert!((t.trust(&a) - 0.95 * 0.9).abs() < 1e-12);
        let b = Attributes {
            occupation: "astronaut".into(),
            ..a
        };
        assert!((t.trust(&b) - 0.6 * 0.9).abs() < 1e-12);
        let mut bad = t.clone();
        bad.place.insert("moon".into(), 1.5);
        assert!(bad.check().is_err());
    }
}
