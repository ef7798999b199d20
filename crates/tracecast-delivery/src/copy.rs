//! How an edge makes the copy a ticket asks for (DESIGN.md "001" step 4),
//! decided from what the edge knows and the ticket says: no copy for a
//! revoked delivery, the kept copy again for a repeated request, a video's
//! A/B variants assembled into the buyer's own HLS playlist (or a site's
//! copy), an audio copy assembled from pieces of the A/B variants, or a copy
//! marked now from the rendition. No I/O: the edge gathers the facts, this
//! decides, the edge does it.

/// What the edge knows when a ticket arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyFacts {
    /// The delivery was replaced and revoked here.
    pub revoked: bool,
    /// This edge already made and keeps the delivery's copy.
    pub kept: bool,
    /// The ticket sends the copy on to a home server or kiosk.
    pub via_site: bool,
    /// The ticket names the copy's key: the copy is encrypted.
    pub protected: bool,
    /// The rendition is a video with HLS A/B variants (read only when the
    /// copy is neither revoked nor kept).
    pub hls: bool,
    /// The rendition has audio A/B variants (likewise).
    pub ab: bool,
}

/// Where the copy goes once made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Served to the buyer by a signed link.
    Buyer,
    /// Pushed to the home server or kiosk the ticket names.
    Site,
}

/// How the copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPlan {
    /// The kept copy, the same bytes: nothing is marked again.
    Kept(Destination),
    /// The buyer's own HLS playlist over the A/B video segments (a site
    /// gets a copy assembled to one file).
    Hls(Destination),
    /// Assembled from byte pieces of the two audio variants, for the
    /// buyer.
    AbPieces,
    /// Marked now from the rendition, by its kind; encrypted when the
    /// ticket names a key.
    Mark(Destination),
}

/// Why no copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CopyRefusal {
    #[error("the delivery was replaced: no copy is made for it")]
    Revoked,
    #[error("A/B video is delivered unprotected")]
    ProtectedVideo,
}

/// Decides how to make the copy.
pub fn copy_plan(f: CopyFacts) -> Result<CopyPlan, CopyRefusal> {
    let to = if f.via_site {
        Destination::Site
    } else {
        Destination::Buyer
    };
    if f.revoked {
        return Err(CopyRefusal::Revoked);
    }
    if f.kept {
        // A resumed or repeated request.
        return Ok(CopyPlan::Kept(to));
    }
    if f.hls {
        if f.protected {
            return Err(CopyRefusal::ProtectedVideo);
        }
        return Ok(CopyPlan::Hls(to));
    }
    // A site's push and a protected copy are whole files: marked as
    // before, not assembled.
    if f.ab && !f.via_site && !f.protected {
        return Ok(CopyPlan::AbPieces);
    }
    Ok(CopyPlan::Mark(to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CopyPlan::*;
    use Destination::*;

    #[test]
    fn copies_are_made_as_the_table_says() {
        let base = CopyFacts::default();
        let cases: [(&str, CopyFacts, Result<CopyPlan, CopyRefusal>); 13] = [
            ("plain audio or a picture", base, Ok(Mark(Buyer))),
            (
                "through a home",
                CopyFacts {
                    via_site: true,
                    ..base
                },
                Ok(Mark(Site)),
            ),
            (
                "protected",
                CopyFacts {
                    protected: true,
                    ..base
                },
                Ok(Mark(Buyer)),
            ),
            ("A/B audio", CopyFacts { ab: true, ..base }, Ok(AbPieces)),
            (
                "A/B audio through a kiosk is marked whole",
                CopyFacts {
                    ab: true,
                    via_site: true,
                    ..base
                },
                Ok(Mark(Site)),
            ),
            (
                "protected A/B audio is marked whole",
                CopyFacts {
                    ab: true,
                    protected: true,
                    ..base
                },
                Ok(Mark(Buyer)),
            ),
            ("A/B video", CopyFacts { hls: true, ..base }, Ok(Hls(Buyer))),
            (
                "A/B video through a home",
                CopyFacts {
                    hls: true,
                    via_site: true,
                    ..base
                },
                Ok(Hls(Site)),
            ),
            (
                "protected A/B video",
                CopyFacts {
                    hls: true,
                    protected: true,
                    ..base
                },
                Err(CopyRefusal::ProtectedVideo),
            ),
            (
                "a repeated request",
                CopyFacts {
                    kept: true,
                    hls: true,
                    ..base
                },
                Ok(Kept(Buyer)),
            ),
            (
                "a repeated push",
                CopyFacts {
                    kept: true,
                    via_site: true,
                    ..base
                },
                Ok(Kept(Site)),
            ),
            (
                "revoked",
                CopyFacts {
                    revoked: true,
                    ..base
                },
                Err(CopyRefusal::Revoked),
            ),
            (
                "revoked wins over a kept copy",
                CopyFacts {
                    revoked: true,
                    kept: true,
                    ..base
                },
                Err(CopyRefusal::Revoked),
            ),
        ];
        for (name, facts, want) in cases {
            assert_eq!(copy_plan(facts), want, "{name}");
        }
    }
}
