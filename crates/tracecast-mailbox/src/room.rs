//! The client's room: before each fetch it checks there is space by bytes
//! or by count, and makes space by overwriting messages the user has read,
//! never protected ones.

use serde::{Deserialize, Serialize};

use crate::MessageId;

/// Limits of the client's store; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub max_bytes: Option<u64>,
    pub max_count: Option<u64>,
}

/// What the client knows of one stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalMessage {
    pub id: MessageId,
    pub length: u64,
    pub read: bool,
    pub protected: bool,
}

/// The answer to "may I fetch a message of this length?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomPlan {
    /// Fetch, after removing these read, unprotected messages (oldest
    /// first; often none).
    Fetch { overwrite: Vec<MessageId> },
    /// No room even after overwriting every read, unprotected message:
    /// stop and leave the mail on the server.
    Full,
}

impl Room {
    /// Plans room for one more message. `incoming` is its length when the
    /// server announced it; unknown, the check is that some byte is free.
    pub fn plan(&self, stored: &[LocalMessage], incoming: Option<u64>) -> RoomPlan {
        let mut count = stored.len() as u64;
        let mut bytes: u64 = stored.iter().map(|m| m.length).sum();
        let fits = |count: u64, bytes: u64| {
            let count_ok = self.max_count.is_none_or(|max| count < max);
            let bytes_ok = self.max_bytes.is_none_or(|max| match incoming {
                Some(len) => bytes.saturating_add(len) <= max,
                None => bytes < max,
            });
            count_ok && bytes_ok
        };
        if let (Some(max), Some(len)) = (self.max_bytes, incoming) {
            if len > max {
                return RoomPlan::Full;
            }
        }
        let mut candidates: Vec<&LocalMessage> =
            stored.iter().filter(|m| m.read && !m.protected).collect();
        candidates.sort_by_key(|m| m.id);
        let mut overwrite = Vec::new();
        let mut next = candidates.into_iter();
        while !fits(count, bytes) {
            match next.next() {
                Some(m) => {
                    overwrite.push(m.id);
                    count -= 1;
                    bytes -= m.length;
                }
                None => return RoomPlan::Full,
            }
        }
        RoomPlan::Fetch { overwrite }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(id: i64, length: u64, read: bool, protected: bool) -> LocalMessage {
        LocalMessage {
            id: MessageId::new(id).unwrap(),
            length,
            read,
            protected,
        }
    }

    #[test]
    fn overwrites_oldest_read_unprotected_first() {
        let room = Room {
            max_bytes: Some(120),
            max_count: None,
        };
        let stored = [
            msg(1, 40, true, true),
            msg(2, 30, true, false),
            msg(3, 20, true, false),
            msg(4, 10, false, false),
        ];
        assert_eq!(
            room.plan(&stored, Some(10)),
            RoomPlan::Fetch { overwrite: vec![] }
        );
        assert_eq!(
            room.plan(&stored, Some(35)),
            RoomPlan::Fetch {
                overwrite: vec![MessageId::new(2).unwrap()]
            }
        );
        assert_eq!(
            room.plan(&stored, Some(60)),
            RoomPlan::Fetch {
                overwrite: vec![MessageId::new(2).unwrap(), MessageId::new(3).unwrap()]
            }
        );
        // Removing 2 and 3 leaves 50 bytes: 80 more does not fit, and the
        // unread and protected ones stay.
        assert_eq!(room.plan(&stored, Some(80)), RoomPlan::Full);
        assert_eq!(room.plan(&stored, Some(121)), RoomPlan::Full);
    }

    #[test]
    fn counts_messages() {
        let room = Room {
            max_bytes: None,
            max_count: Some(2),
        };
        assert_eq!(
            room.plan(&[msg(1, 5, false, false)], None),
            RoomPlan::Fetch { overwrite: vec![] }
        );
        assert_eq!(
            room.plan(&[msg(1, 5, false, false), msg(2, 5, false, false)], None),
            RoomPlan::Full
        );
        assert_eq!(
            room.plan(&[msg(1, 5, true, false), msg(2, 5, false, false)], None),
            RoomPlan::Fetch {
                overwrite: vec![MessageId::new(1).unwrap()]
            }
        );
    }

    proptest! {
        #[test]
        fn a_plan_never_touches_protected_or_unread_and_always_fits(
            stored in proptest::collection::vec((1u64..500, any::<bool>(), any::<bool>()), 0..30),
            incoming in proptest::option::of(0u64..800),
            max_bytes in proptest::option::of(1u64..3000),
            max_count in proptest::option::of(1u64..40),
        ) {
            let stored: Vec<LocalMessage> = stored
                .iter()
                .enumerate()
                .map(|(i, &(len, read, protected))| msg(i as i64 + 1, len, read, protected))
                .collect();
            let room = Room { max_bytes, max_count };
            if let RoomPlan::Fetch { overwrite } = room.plan(&stored, incoming) {
                let left: Vec<&LocalMessage> =
                    stored.iter().filter(|m| !overwrite.contains(&m.id)).collect();
                for id in &overwrite {
                    let m = stored.iter().find(|m| m.id == *id).unwrap();
                    prop_assert!(m.read && !m.protected);
                }
                let bytes: u64 = left.iter().map(|m| m.length).sum();
                if let Some(max) = max_count {
                    prop_assert!((left.len() as u64) < max);
                }
                if let Some(max) = max_bytes {
                    prop_assert!(bytes + incoming.unwrap_or(1) <= max);
                }
            }
        }
    }
}
