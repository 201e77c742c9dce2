//! Per-peer state, in a slab so that RPCs refer to their peer by index and
//! the hot path does not hash the peer's address again and again.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::config::NUM_PRIORITIES;
use crate::time::Instant;
use crate::util::{FastMap, FastSet};
use crate::wire::AckRecord;

/// State kept per peer address.
#[derive(Debug)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    /// Cutoffs this peer announced as a receiver (what we use sending to it).
    pub cutoffs: [u32; NUM_PRIORITIES],
    pub cutoff_version: u16,
    pub last_cutoffs_sent: Option<Instant>,
    /// Client side: acks owed to this server, with when they were queued.
    pub pending_acks: VecDeque<(AckRecord, Instant)>,
    /// Server side: recently acknowledged client ids (at-most-once).
    pub tombstones: VecDeque<(u64, Instant)>,
    pub tombstone_set: FastSet<u64>,
    /// RPCs that refer to this peer (it is not freed while any do).
    pub rpcs: usize,
}

impl Peer {
    pub fn remembers(&self, client_id: u64) -> bool {
        !self.tombstones.is_empty() && self.tombstone_set.contains(&client_id)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Peers {
    slots: Vec<Option<Peer>>,
    free: Vec<u32>,
    index: FastMap<SocketAddr, u32>,
}

impl Peers {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn find(&self, addr: &SocketAddr) -> Option<u32> {
        self.index.get(addr).copied()
    }

    pub fn get(&self, addr: &SocketAddr) -> Option<&Peer> {
        self.find(addr).map(|i| self.at(i))
    }

    pub fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Peer> {
        let i = self.find(addr)?;
        Some(self.at_mut(i))
    }

    pub fn at(&self, i: u32) -> &Peer {
        self.slots[i as usize].as_ref().expect("live peer index")
    }

    pub fn at_mut(&mut self, i: u32) -> &mut Peer {
        self.slots[i as usize].as_mut().expect("live peer index")
    }

    /// The peer at `addr`, created with `cutoffs` if new.
    pub fn entry(&mut self, addr: SocketAddr, cutoffs: [u32; NUM_PRIORITIES]) -> u32 {
        if let Some(i) = self.find(&addr) {
            return i;
        }
        let peer = Peer {
            addr,
            cutoffs,
            // Version 0: not yet heard from the peer; the first DATA we send
            // makes it answer with its real cutoffs.
            cutoff_version: 0,
            last_cutoffs_sent: None,
            pending_acks: VecDeque::new(),
            tombstones: VecDeque::new(),
            tombstone_set: FastSet::default(),
            rpcs: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(peer);
                i
            }
            None => {
                self.slots.push(Some(peer));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(addr, i);
        i
    }

    /// One RPC no longer refers to peer `i`; free the peer if nothing else
    /// keeps it (no RPCs, owed acks or remembered ids).
    pub fn release(&mut self, i: u32) {
        let p = self.at_mut(i);
        p.rpcs = p.rpcs.saturating_sub(1);
        if p.rpcs == 0 && p.pending_acks.is_empty() && p.tombstones.is_empty() {
            let addr = p.addr;
            self.index.remove(&addr);
            self.slots[i as usize] = None;
            self.free.push(i);
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &Peer> {
        self.slots.iter().flatten()
    }

    /// Keep the peers for which `keep` returns true; free the others. The
    /// caller guarantees no RPC refers to a peer it drops (`rpcs == 0`).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Peer) -> bool) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(p) = slot.as_mut() else { continue };
            if !keep(p) {
                debug_assert_eq!(p.rpcs, 0);
                self.index.remove(&p.addr);
                *slot = None;
                self.free.push(i as u32);
            }
        }
    }
}
