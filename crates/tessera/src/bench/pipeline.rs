//! Many requests in flight on one stream connection (RFC 6614 §2.5, RFC 9765 §4): which
//! Identifier or Token a new request gets, which request a reply answers, and where one
//! packet ends in the byte stream. Pure: no sockets, no clock.

use super::proto::{Dialect, Key};
use std::collections::{HashMap, VecDeque};
use tessera_radius::DecodeError;

/// The requests outstanding on one connection, by the key their replies carry.
///
/// RFC 6614: the Identifier space is per connection, so at most 256 requests are
/// outstanding; a freed Identifier goes to the back of the queue (the longest unused is
/// taken first), and the Identifier of a request given up on is never used again on this
/// connection, since a late reply to it could otherwise be taken for its successor's.
/// RADIUS/1.1: Tokens count up from 1, never repeat (2^32 of them), and bound nothing.
#[derive(Debug)]
pub struct Pipeline<T> {
    dialect: Dialect,
    free_ids: VecDeque<u8>,
    by_id: Vec<Option<T>>,
    next_token: u32,
    by_token: HashMap<u32, T>,
    outstanding: usize,
}

impl<T> Pipeline<T> {
    pub fn new(dialect: Dialect) -> Self {
        Pipeline {
            dialect,
            free_ids: (0..=u8::MAX).collect(),
            by_id: (0..256).map(|_| None).collect(),
            next_token: 1,
            by_token: HashMap::new(),
            outstanding: 0,
        }
    }

    /// Registers a request; its key, or `None` when no Identifier is free (the caller waits
    /// for a reply).
    pub fn start(&mut self, request: T) -> Option<Key> {
        let key = match self.dialect {
            Dialect::Radius11 => {
                let t = self.next_token;
                self.next_token = self.next_token.wrapping_add(1).max(1);
                self.by_token.insert(t, request);
                Key::Token(t)
            }
            Dialect::Udp | Dialect::Rfc6614 => {
                let id = self.free_ids.pop_front()?;
                self.by_id[usize::from(id)] = Some(request);
                Key::Id(id)
            }
        };
        self.outstanding += 1;
        Some(key)
    }

    /// The request a reply with this key answers, taken out (its Identifier free again);
    /// `None` for a key with nothing outstanding (a duplicate, or a reply too late).
    pub fn finish(&mut self, key: Key) -> Option<T> {
        let r = self.take(key)?;
        if let Key::Id(id) = key {
            self.free_ids.push_back(id);
        }
        Some(r)
    }

    /// Gives up on a request (timed out): taken out, its Identifier retired.
    pub fn abandon(&mut self, key: Key) -> Option<T> {
        self.take(key)
    }

    fn take(&mut self, key: Key) -> Option<T> {
        let r = match key {
            Key::Id(id) => self.by_id.get_mut(usize::from(id))?.take(),
            Key::Token(t) => self.by_token.remove(&t),
        }?;
        self.outstanding -= 1;
        Some(r)
    }

    /// Requests outstanding.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Whether another request can start now.
    pub fn has_room(&self) -> bool {
        self.dialect == Dialect::Radius11 || !self.free_ids.is_empty()
    }
}

/// The length of the packet at the front of `buf` if all of it has arrived (RFC 6613 §2.4:
/// each packet is delimited by its Length field), `None` if more is needed. An error means
/// the stream lost its framing and the connection is unusable.
pub fn complete_packet(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(header) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let n = tessera_radius::stream_packet_length(*header)?;
    Ok((buf.len() >= n).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn at_most_256_identifiers_outstanding_each_unique() {
        let mut p = Pipeline::new(Dialect::Rfc6614);
        let mut seen = HashSet::new();
        for i in 0..256 {
            let Some(Key::Id(id)) = p.start(i) else {
                panic!("no identifier for request {i}");
            };
            assert!(seen.insert(id), "identifier {id} handed out twice");
        }
        assert!(!p.has_room());
        assert_eq!(p.start(999), None);
        assert_eq!(p.outstanding(), 256);
        // a reply frees its identifier for the next request
        assert_eq!(p.finish(Key::Id(17)), Some(17));
        assert_eq!(p.start(1000), Some(Key::Id(17)));
        assert_eq!(p.finish(Key::Id(17)), Some(1000));
        assert_eq!(p.finish(Key::Id(17)), None, "answered twice");
    }

    #[test]
    fn replies_out_of_order_find_their_requests() {
        let mut p = Pipeline::new(Dialect::Rfc6614);
        let keys: Vec<Key> = (0..10).map(|i| p.start(i).unwrap()).collect();
        for i in [7usize, 2, 9, 0, 5, 1, 8, 3, 6, 4] {
            assert_eq!(p.finish(keys[i]), Some(i));
        }
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn freed_identifiers_are_reused_last() {
        let mut p = Pipeline::new(Dialect::Rfc6614);
        let a = p.start('a').unwrap();
        p.finish(a);
        let next: Vec<Key> = (0..255).map(|_| p.start('x').unwrap()).collect();
        assert!(!next.contains(&a), "{a:?} reused before the untouched ones");
        assert_eq!(p.start('b'), Some(a));
    }

    #[test]
    fn an_abandoned_identifier_is_never_reused() {
        let mut p = Pipeline::new(Dialect::Rfc6614);
        let lost = p.start("lost").unwrap();
        assert_eq!(p.abandon(lost), Some("lost"));
        assert_eq!(p.finish(lost), None, "a late reply matches nothing");
        for _ in 0..10_000 {
            let k = p.start("x").unwrap();
            assert_ne!(k, lost);
            p.finish(k);
        }
        for _ in 0..255 {
            assert_ne!(p.start("y"), Some(lost));
        }
        assert_eq!(p.start("z"), None, "255 identifiers left");
    }

    #[test]
    fn tokens_are_distinct_and_unbounded() {
        let mut p = Pipeline::new(Dialect::Radius11);
        let keys: Vec<Key> = (0..1000).map(|i| p.start(i).unwrap()).collect();
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 1000);
        assert!(p.has_room());
        assert_eq!(p.outstanding(), 1000);
        assert_eq!(p.finish(keys[500]), Some(500));
        assert_eq!(p.finish(keys[500]), None);
        assert_eq!(p.abandon(keys[3]), Some(3));
        let k = p.start(5000).unwrap();
        assert!(!keys.contains(&k), "a token came round again");
        assert_eq!(
            p.finish(Key::Id(1)),
            None,
            "an Identifier means nothing here"
        );
    }

    #[test]
    fn stream_framing() {
        let pkt = tessera_radius::PacketBuilder::new_v1_1(
            tessera_radius::Code::AccessAccept,
            [0, 0, 0, 1],
        )
        .finish_v1_1();
        assert_eq!(pkt.len(), 20);
        let mut two = pkt.clone();
        two.extend_from_slice(&pkt);
        assert_eq!(complete_packet(&[]).unwrap(), None);
        assert_eq!(complete_packet(&pkt[..3]).unwrap(), None);
        assert_eq!(complete_packet(&pkt[..19]).unwrap(), None);
        assert_eq!(complete_packet(&pkt).unwrap(), Some(20));
        assert_eq!(complete_packet(&two).unwrap(), Some(20));
        assert!(complete_packet(&[2, 0, 0, 19]).is_err());
        assert!(complete_packet(&[2, 0, 0x10, 1]).is_err());
    }
}
