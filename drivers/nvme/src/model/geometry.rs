//! Controller geometries for campaigns: namespaces with their LBA formats,
//! MDTS, MQES and the queues the controller grants, and what the driver must
//! do on each (work, or refuse with a named error class).
//!
//! [`any_geometry`] is a proptest strategy; [`Geometry::apply`] puts a fresh
//! [`Bench`] into it and [`Geometry::config`] is the driver configuration that
//! targets its namespace. A campaign checks `init` against
//! [`Geometry::expected_refusal`] and, when the driver comes up, that every
//! namespace but the target is left byte-for-byte unchanged
//! ([`Geometry::untouched`]).

use proptest::collection::vec;
use proptest::prelude::*;

use super::{Bench, NamespaceParams};
use crate::Config;

/// One controller geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// The namespaces (ids 1..=NN that are not listed are inactive).
    pub namespaces: Vec<NamespaceParams>,
    /// The namespace the driver is told to use.
    pub target: u32,
    /// Identify Controller MDTS (0: no limit).
    pub mdts: u8,
    /// CAP.MQES (0's based, ≥ 1).
    pub mqes: u16,
    /// I/O queue pairs the controller grants (≥ 1).
    pub max_ioqpairs: u16,
}

impl Geometry {
    /// QEMU's default: one 512-byte namespace of 2048 blocks, MDTS 7.
    pub fn qemu_default() -> Self {
        Self {
            namespaces: vec![NamespaceParams::lba512(1, 2048)],
            target: 1,
            mdts: 7,
            mqes: 2047,
            max_ioqpairs: 64,
        }
    }

    /// Puts `bench` (fresh, before the driver runs) into this geometry.
    pub fn apply(&self, bench: &Bench) {
        let mut params = bench.model.borrow().params.clone();
        params.mdts = self.mdts;
        params.mqes = self.mqes.max(1);
        params.max_ioqpairs = self.max_ioqpairs.max(1);
        bench.set_params(params);
        bench.set_namespaces(&self.namespaces);
    }

    /// A bench in this geometry.
    pub fn bench(&self) -> Bench {
        let b = Bench::qemu_like();
        self.apply(&b);
        b
    }

    /// The driver configuration targeting [`target`](Self::target).
    pub fn config(&self) -> Config {
        Config {
            nsid: self.target,
            ..Config::default()
        }
    }

    /// NN the controller reports after [`apply`](Self::apply).
    pub fn nn(&self) -> u32 {
        self.namespaces
            .iter()
            .map(|n| n.nsid)
            .max()
            .unwrap_or(1)
            .max(256)
    }

    /// The [`NvmeError::class`](crate::NvmeError::class) init must end with,
    /// or `None` when the driver must come up and write the target.
    pub fn expected_refusal(&self) -> Option<&'static str> {
        if self.target == 0 || self.target > self.nn() {
            return Some("namespace absent");
        }
        match self.namespaces.iter().find(|n| n.nsid == self.target) {
            Some(n) if !n.attached => Some("namespace inactive"),
            None => Some("namespace inactive"),
            Some(n) if !n.writable() => Some("unsupported format"),
            Some(_) => None,
        }
    }

    /// The namespaces other than the target: none of their blocks may be
    /// written.
    pub fn untouched(&self) -> impl Iterator<Item = u32> + '_ {
        self.namespaces
            .iter()
            .map(|n| n.nsid)
            .filter(move |&n| n != self.target)
    }
}

/// A namespace of one of QEMU's eight LBA formats, sometimes with metadata
/// interleaved or protection information, sometimes detached.
pub fn any_namespace(nsid: u32) -> impl Strategy<Value = NamespaceParams> {
    (
        8u64..4096,
        prop_oneof![4 => Just(0u8), 4 => Just(4u8), 1 => 1u8..4, 1 => 5u8..8],
        any::<bool>(),
        prop_oneof![8 => Just(0u8), 1 => 1u8..4],
        prop_oneof![9 => Just(true), 1 => Just(false)],
    )
        .prop_map(move |(nsze, format, extended, pi, attached)| {
            let pi = if format % 4 == 0 { 0 } else { pi };
            NamespaceParams {
                nsid,
                nsze,
                format,
                extended: extended && format % 4 != 0,
                pi,
                attached,
            }
        })
}

/// Any geometry: 1 to 4 namespaces (ids 1..=4, some missing), a target that
/// is mostly one of them (sometimes an inactive or absent id), MDTS 0..=9,
/// MQES 1..=2047, 1..=8 granted queue pairs.
pub fn any_geometry() -> impl Strategy<Value = Geometry> {
    (
        vec(any::<bool>(), 4),
        vec(any_namespace(0), 4),
        prop_oneof![8 => 1u32..=4, 1 => Just(0u32), 1 => 257u32..=300],
        0u8..=9,
        prop_oneof![3 => Just(2047u16), 1 => 1u16..64],
        1u16..=8,
    )
        .prop_map(|(present, nss, target, mdts, mqes, max_ioqpairs)| {
            let namespaces = nss
                .into_iter()
                .zip(present)
                .enumerate()
                .filter(|(i, (_, p))| *p || *i == 0)
                .map(|(i, (n, _))| NamespaceParams {
                    nsid: i as u32 + 1,
                    ..n
                })
                .collect();
            Geometry {
                namespaces,
                target,
                mdts,
                mqes,
                max_ioqpairs,
            }
        })
}
