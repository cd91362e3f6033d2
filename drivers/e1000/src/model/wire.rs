//! A simulated Ethernet wire: what the model NICs transmit is captured, and
//! delivered to a peer, looped back, or dropped; tests inject frames and can
//! attach a background stream (a NIC that keeps receiving).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Frames a port keeps in its inbox or capture log before dropping the oldest.
pub const PORT_QUEUE_LIMIT: usize = 256;

/// Where a transmitted frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireMode {
    /// Back into the inbox of the port that sent it.
    Loopback,
    /// Into the inbox of the other port (two NICs on one segment).
    Pair,
    /// Nowhere (only captured).
    Open,
}

/// Frames arriving at a port at a fixed period: the traffic a NIC keeps
/// receiving while its kernel is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The frame repeated.
    pub frame: Vec<u8>,
    /// Time between frames.
    pub period_ns: u64,
    /// When the next one arrives.
    pub next_ns: u64,
}

#[derive(Debug, Default)]
struct Port {
    inbox: VecDeque<Vec<u8>>,
    captured: VecDeque<Vec<u8>>,
    stream: Option<Stream>,
    dropped: u64,
}

#[derive(Debug)]
struct Inner {
    mode: WireMode,
    ports: [Port; 2],
}

/// A two-port wire shared by models and tests (clones share it).
#[derive(Debug, Clone)]
pub struct Wire(Rc<RefCell<Inner>>);

impl Wire {
    /// A wire in `mode`.
    pub fn new(mode: WireMode) -> Self {
        Self(Rc::new(RefCell::new(Inner {
            mode,
            ports: [Port::default(), Port::default()],
        })))
    }

    /// A loopback plug on port 0.
    pub fn loopback() -> Self {
        Self::new(WireMode::Loopback)
    }

    /// Changes where transmitted frames go.
    pub fn set_mode(&self, mode: WireMode) {
        self.0.borrow_mut().mode = mode;
    }

    /// Queues `frame` for reception on `port` (0 or 1).
    pub fn inject(&self, port: usize, frame: &[u8]) {
        if let Some(p) = self.0.borrow_mut().ports.get_mut(port) {
            push_bounded(&mut p.inbox, frame.to_vec(), &mut p.dropped);
        }
    }

    /// Takes the frames `port` transmitted so far.
    pub fn take_captured(&self, port: usize) -> Vec<Vec<u8>> {
        self.0
            .borrow_mut()
            .ports
            .get_mut(port)
            .map(|p| p.captured.drain(..).collect())
            .unwrap_or_default()
    }

    /// Frames waiting in `port`'s inbox.
    pub fn pending(&self, port: usize) -> usize {
        self.0.borrow().ports.get(port).map_or(0, |p| p.inbox.len())
    }

    /// Drops every frame waiting in `port`'s inbox.
    pub fn clear_inbox(&self, port: usize) {
        if let Some(p) = self.0.borrow_mut().ports.get_mut(port) {
            p.inbox.clear();
        }
    }

    /// Attaches (or with `None` detaches) a background stream to `port`.
    pub fn set_stream(&self, port: usize, stream: Option<Stream>) {
        if let Some(p) = self.0.borrow_mut().ports.get_mut(port) {
            p.stream = stream;
        }
    }

    /// Called by a model NIC on `port` when it sends a frame.
    pub(crate) fn transmit(&self, port: usize, frame: Vec<u8>) {
        let mut w = self.0.borrow_mut();
        let to = match w.mode {
            WireMode::Loopback => Some(port),
            WireMode::Pair => Some(1 - port.min(1)),
            WireMode::Open => None,
        };
        if let Some(p) = w.ports.get_mut(port) {
            push_bounded(&mut p.captured, frame.clone(), &mut p.dropped);
        }
        if let Some(p) = to.and_then(|to| w.ports.get_mut(to)) {
            push_bounded(&mut p.inbox, frame, &mut p.dropped);
        }
    }

    /// Called by a model NIC on `port`: the next frame that has arrived by `now`.
    pub(crate) fn receive(&self, port: usize, now: u64) -> Option<Vec<u8>> {
        let mut w = self.0.borrow_mut();
        let p = w.ports.get_mut(port)?;
        if let Some(s) = p.stream.as_mut() {
            // At most a few frames per call: a stream cannot flood a tick.
            let mut burst = 0;
            while s.next_ns <= now && burst < 4 {
                let frame = s.frame.clone();
                s.next_ns = s.next_ns.saturating_add(s.period_ns.max(1));
                push_bounded(&mut p.inbox, frame, &mut p.dropped);
                burst += 1;
            }
            if s.next_ns <= now {
                s.next_ns = now.saturating_add(s.period_ns.max(1));
            }
        }
        p.inbox.pop_front()
    }

    /// True when `port` has something to receive by `now` (cheap check).
    pub(crate) fn has_traffic(&self, port: usize, now: u64) -> bool {
        let w = self.0.borrow();
        w.ports.get(port).is_some_and(|p| {
            !p.inbox.is_empty() || p.stream.as_ref().is_some_and(|s| s.next_ns <= now)
        })
    }
}

fn push_bounded(q: &mut VecDeque<Vec<u8>>, frame: Vec<u8>, dropped: &mut u64) {
    if q.len() >= PORT_QUEUE_LIMIT {
        q.pop_front();
        *dropped += 1;
    }
    q.push_back(frame);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_route_frames() {
        let w = Wire::new(WireMode::Pair);
        w.transmit(0, vec![1]);
        assert_eq!(w.receive(1, 0), Some(vec![1]));
        assert_eq!(w.receive(0, 0), None);
        assert_eq!(w.take_captured(0), vec![vec![1]]);
        w.set_mode(WireMode::Loopback);
        w.transmit(1, vec![2]);
        assert_eq!(w.receive(1, 0), Some(vec![2]));
        w.set_stream(
            0,
            Some(Stream {
                frame: vec![3],
                period_ns: 10,
                next_ns: 5,
            }),
        );
        assert!(!w.has_traffic(0, 4));
        assert!(w.has_traffic(0, 5));
        assert_eq!(w.receive(0, 25), Some(vec![3]));
        assert_eq!(w.pending(0), 2);
    }
}
