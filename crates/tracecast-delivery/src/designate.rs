//! Which edge serves a request (DESIGN.md "001" step 2).

/// What the origin knows of one edge when a request arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeView {
    pub id: i64,
    /// Heard from recently (its last state report is fresh).
    pub alive: bool,
    /// It reported holding the requested rendition.
    pub holds: bool,
    /// Deliveries designated to it lately.
    pub load: u64,
    /// How far it is from the buyer (`region::distance`).
    pub distance: u32,
}

/// Picks the edge for a request: among live edges not in `avoid`, one that
/// already holds the rendition, else any; among those the nearest, then
/// the least loaded. Ties go to the lower id so the choice is stable.
/// `None` when no edge can serve.
pub fn designate(edges: &[EdgeView], avoid: &[i64]) -> Option<i64> {
    edges
        .iter()
        .filter(|e| e.alive && !avoid.contains(&e.id))
        .min_by_key(|e| (!e.holds, e.distance, e.load, e.id))
        .map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(id: i64, alive: bool, holds: bool, load: u64) -> EdgeView {
        EdgeView {
            id,
            alive,
            holds,
            load,
            distance: 0,
        }
    }

    fn far(distance: u32, e: EdgeView) -> EdgeView {
        EdgeView { distance, ..e }
    }

    #[test]
    fn the_nearest_wins_among_holders_and_among_the_rest() {
        // (edges, want): a holder wins over a nearer edge that lacks the
        // rendition; among equals the nearer wins over the less loaded.
        let cases: [(&[EdgeView], Option<i64>); 4] = [
            (
                &[
                    far(2, edge(1, true, false, 0)),
                    far(0, edge(2, true, false, 9)),
                ],
                Some(2),
            ),
            (
                &[
                    far(3, edge(1, true, true, 0)),
                    far(0, edge(2, true, false, 0)),
                ],
                Some(1),
            ),
            (
                &[
                    far(1, edge(1, true, true, 0)),
                    far(0, edge(2, true, true, 5)),
                ],
                Some(2),
            ),
            (
                &[
                    far(0, edge(1, false, false, 0)),
                    far(u32::MAX, edge(2, true, false, 0)),
                ],
                Some(2),
            ),
        ];
        for (edges, want) in cases {
            assert_eq!(designate(edges, &[]), want, "{edges:?}");
        }
    }

    #[test]
    fn a_holder_wins_over_a_less_loaded_edge() {
        let edges = [edge(1, true, false, 0), edge(2, true, true, 9)];
        assert_eq!(designate(&edges, &[]), Some(2));
    }

    #[test]
    fn without_a_holder_the_least_loaded_wins() {
        let edges = [
            edge(1, true, false, 5),
            edge(2, true, false, 3),
            edge(3, true, false, 3),
        ];
        assert_eq!(designate(&edges, &[]), Some(2));
    }

    #[test]
    fn dead_and_avoided_edges_are_passed_over() {
        let edges = [
            edge(1, false, true, 0),
            edge(2, true, true, 4),
            edge(3, true, false, 0),
        ];
        assert_eq!(designate(&edges, &[]), Some(2));
        assert_eq!(designate(&edges, &[2]), Some(3));
        assert_eq!(designate(&edges, &[2, 3]), None);
        assert_eq!(designate(&[], &[]), None);
    }
}
