//! Which cached renditions an edge evicts to stay within its byte budget
//! (least recently used first).

/// One cached item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached<K> {
    pub key: K,
    pub bytes: u64,
    /// Last use, in any monotonic unit (a counter or milliseconds).
    pub last_used: u64,
    /// In use right now (being read or marked): never evicted.
    pub pinned: bool,
}

/// The keys to evict, least recently used first, so that `incoming` more
/// bytes fit in `capacity`. `Err(bytes_short)` when even evicting every
/// unpinned item leaves too little room (nothing should then be evicted).
pub fn victims<K: Clone>(items: &[Cached<K>], capacity: u64, incoming: u64) -> Result<Vec<K>, u64> {
    let used: u64 = items.iter().map(|c| c.bytes).sum();
    let mut need = (used + incoming).saturating_sub(capacity);
    if need == 0 {
        return Ok(Vec::new());
    }
    let mut order: Vec<&Cached<K>> = items.iter().filter(|c| !c.pinned).collect();
    order.sort_by_key(|c| c.last_used);
    let mut out = Vec::new();
    for c in order {
        if need == 0 {
            break;
        }
        need = need.saturating_sub(c.bytes);
        out.push(c.key.clone());
    }
    if need > 0 {
        Err(need)
    } else {
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(key: u32, bytes: u64, last_used: u64, pinned: bool) -> Cached<u32> {
        Cached {
            key,
            bytes,
            last_used,
            pinned,
        }
    }

    #[test]
    fn oldest_go_first_and_only_as_many_as_needed() {
        let items = [
            item(1, 40, 5, false),
            item(2, 40, 1, false),
            item(3, 40, 3, false),
        ];
        assert_eq!(victims(&items, 120, 0), Ok(vec![]));
        assert_eq!(victims(&items, 120, 30), Ok(vec![2]));
        assert_eq!(victims(&items, 120, 50), Ok(vec![2, 3]));
    }

    #[test]
    fn pinned_items_stay_and_an_impossible_fit_evicts_nothing() {
        let items = [item(1, 40, 1, true), item(2, 40, 2, false)];
        assert_eq!(victims(&items, 100, 40), Ok(vec![2]));
        assert_eq!(victims(&items, 100, 90), Err(30));
    }

    proptest! {
        #[test]
        fn after_eviction_the_incoming_item_fits(
            sizes in proptest::collection::vec((1u64..1000, 0u64..100, any::<bool>()), 0..20),
            capacity in 0u64..5000,
            incoming in 0u64..2000,
        ) {
            let items: Vec<_> = sizes.iter().enumerate()
                .map(|(i, &(b, t, p))| item(i as u32, b, t, p)).collect();
            match victims(&items, capacity, incoming) {
                Ok(v) => {
                    let freed: u64 = items.iter().filter(|c| v.contains(&c.key)).map(|c| c.bytes).sum();
                    let used: u64 = items.iter().map(|c| c.bytes).sum();
                    prop_assert!(used - freed + incoming <= capacity);
                    prop_assert!(items.iter().filter(|c| v.contains(&c.key)).all(|c| !c.pinned));
                }
                Err(short) => {
                    let unpinned: u64 = items.iter().filter(|c| !c.pinned).map(|c| c.bytes).sum();
                    let used: u64 = items.iter().map(|c| c.bytes).sum();
                    prop_assert_eq!(used - unpinned + incoming, capacity + short);
                }
            }
        }
    }
}
