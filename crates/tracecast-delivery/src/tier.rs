//! Quality tiers (renditions) made at ingest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of work a content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    Audio,
    Picture,
    /// Video, delivered as HLS assembled from A/B segments.
    Video,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Audio => "audio",
            ContentKind::Picture => "picture",
            ContentKind::Video => "video",
        }
    }

    /// The tiers made for this kind at ingest, best first.
    pub fn tiers(self) -> &'static [Tier] {
        match self {
            ContentKind::Audio => &[Tier::Lossless, Tier::High, Tier::Preview],
            ContentKind::Picture => &[Tier::Full, Tier::Large, Tier::Small],
            ContentKind::Video => &[Tier::Stream],
        }
    }

    /// The tier a purchase gets when the buyer names none.
    pub fn default_tier(self) -> Tier {
        self.tiers()[0]
    }
}

impl fmt::Display for ContentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "audio" => Ok(ContentKind::Audio),
            "picture" => Ok(ContentKind::Picture),
            "video" => Ok(ContentKind::Video),
            _ => Err(format!("unknown content kind {s:?}")),
        }
    }
}

/// A rendition's quality tier.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Audio at the master's rate and depth (FLAC).
    Lossless,
    /// Audio at CD quality: 44.1 kHz, 16 bit (FLAC).
    High,
    /// A 30-second excerpt, mono, 22.05 kHz (FLAC).
    Preview,
    /// The picture at its own size.
    Full,
    /// The picture fitted into 2048 px.
    Large,
    /// The picture fitted into 512 px.
    Small,
    /// Video as HLS (fMP4), each buyer's segments chosen from A/B variants.
    Stream,
}

impl Tier {
    pub const ALL: [Tier; 7] = [
        Tier::Lossless,
        Tier::High,
        Tier::Preview,
        Tier::Full,
        Tier::Large,
        Tier::Small,
        Tier::Stream,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Lossless => "lossless",
            Tier::High => "high",
            Tier::Preview => "preview",
            Tier::Full => "full",
            Tier::Large => "large",
            Tier::Small => "small",
            Tier::Stream => "stream",
        }
    }

    pub fn kind(self) -> ContentKind {
        match self {
            Tier::Lossless | Tier::High | Tier::Preview => ContentKind::Audio,
            Tier::Full | Tier::Large | Tier::Small => ContentKind::Picture,
            Tier::Stream => ContentKind::Video,
        }
    }

    /// The longest side a picture tier is fitted into.
    pub fn max_side(self) -> Option<u32> {
        match self {
            Tier::Large => Some(2048),
            Tier::Small => Some(512),
            _ => None,
        }
    }

    /// Whether a buyer pays the content's price for this tier (previews
    /// are free, but still marked).
    pub fn is_paid(self) -> bool {
        !matches!(self, Tier::Preview)
    }
}

/// Read from a store column.
impl TryFrom<String> for Tier {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Read from a store column.
impl TryFrom<String> for ContentKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown tier {s:?}: one of lossless, high, preview (audio), full, large, small (pictures) or stream (video)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_round_trip_and_belong_to_their_kind() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>().unwrap(), t);
            assert!(t.kind().tiers().contains(&t));
        }
        assert!("ultra".parse::<Tier>().is_err());
        assert!(!Tier::Preview.is_paid());
    }
}
