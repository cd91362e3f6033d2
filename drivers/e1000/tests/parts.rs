//! Each supported 8254x part from its own model, what differs between them,
//! and the ids the driver refuses.

mod common;

use common::{frame, round_trip};
use paranoid::init::Outcome;
use paranoid::lifecycle::Cause;
use paranoid::mmio::RegisterIo;
use paranoid::pci::offset;
use paranoid_e1000::init::init;
use paranoid_e1000::model::{Behaviour, Harness, Wire};
use paranoid_e1000::{Config, E1000Error, EepromAccess, Part, SUPPORTED_IDS};

/// A `part` on a loopback plug, dirty the way firmware leaves it.
fn harness(part: Part) -> Harness {
    Harness::loopback_part(part)
}

#[test]
fn every_supported_part_reaches_ready_and_carries_frames() {
    for part in Part::ALL {
        let mut h = harness(part);
        let driver = h.driver(Config::default()).unwrap();
        assert_eq!(driver.part(), part);
        let ok = match init(driver, &h.clock) {
            Ok(ok) => ok,
            Err(e) => panic!("{part}: {e}"),
        };
        let mut nic = ok.device.into_inner();
        assert_eq!(nic.mac().0, h.mac, "{part}: address from the EEPROM");
        for len in [60, 1514] {
            let f = frame(h.mac, h.mac, len as u64, len);
            assert_eq!(round_trip(&mut nic, &h, &f).unwrap(), f, "{part}");
        }
        let m = h.model.borrow();
        assert!(
            m.records().violations.is_empty(),
            "{part}: {:?}",
            m.records()
        );
        assert_eq!(m.part(), part);
    }
}

#[test]
fn the_82544gc_model_has_no_eerd_and_its_eeprom_is_read_by_microwire() {
    assert_eq!(Part::I82544Gc.eeprom_access(), EepromAccess::Microwire);
    let mut h = harness(Part::I82544Gc);
    // EERD START of word 0: on the 82544GC the offset is reserved, DONE never
    // comes (QEMU would answer; the part does not).
    h.mmio.write32(0x14, 1);
    h.clock.advance(std::time::Duration::from_micros(10));
    assert_eq!(h.mmio.read32(0x14).into_raw_for_report(), 0);
    // The other parts answer EERD.
    let mut other = harness(Part::I82545Em);
    other.mmio.write32(0x14, 1);
    other.clock.advance(std::time::Duration::from_micros(10));
    assert_ne!(other.mmio.read32(0x14).into_raw_for_report() & 1 << 4, 0);
    // And the driver still comes up on the 82544GC, address and all.
    let driver = h.driver(Config::default()).unwrap();
    let nic = init(driver, &h.clock).unwrap().device.into_inner();
    assert_eq!(nic.mac().0, h.mac);
}

#[test]
fn eeprom_images_carry_the_parts_device_id() {
    for part in Part::ALL {
        let h = harness(part);
        let m = h.model.borrow();
        assert_eq!(m.eeprom[11], part.device_id(), "{part}");
        assert_eq!(m.eeprom[13], part.device_id(), "{part}");
        let sum = m.eeprom.iter().fold(0u16, |s, w| s.wrapping_add(*w));
        assert_eq!(sum, 0xbaba, "{part}");
        assert_eq!(
            h.config.borrow().peek16(offset::DEVICE_ID),
            part.device_id()
        );
    }
}

#[test]
fn a_phy_that_is_not_the_parts_is_a_typed_error_and_fences() {
    // Configuration space says 82544GC (M88E1000 expected); the silicon
    // behind it answers with the 82540EM's M88E1011.
    let mut h = harness(Part::I82544Gc);
    h.model.borrow_mut().set_part(Part::I82540Em);
    let driver = h.driver(Config::default()).unwrap();
    let err = match init(driver, &h.clock) {
        Ok(_) => panic!("init accepted a PHY the part does not have"),
        Err(e) => e,
    };
    assert!(h.fenced());
    assert!(err.trace.any(|o| *o == Outcome::Fenced));
    match err.cause {
        Cause::Device(E1000Error::PhyId { expected, read }) => {
            assert_eq!(expected, Part::I82544Gc.phy_id());
            assert_eq!(read, Part::I82540Em.phy_id());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_ids_are_refused_by_id_fenced_and_their_registers_untouched() {
    for (vendor, device) in [(0x8086u16, 0x10d3u16), (0x8086, 0x1008), (0x10ec, 0x8139)] {
        let mut h = Harness::build(
            paranoid::sim::SimClock::new(),
            Wire::loopback(),
            0,
            Behaviour::spec(),
            false,
        );
        {
            let mut c = h.config.borrow_mut();
            let [v0, v1] = vendor.to_le_bytes();
            let [d0, d1] = device.to_le_bytes();
            c.poke8(offset::VENDOR_ID, v0);
            c.poke8(offset::VENDOR_ID + 1, v1);
            c.poke8(offset::DEVICE_ID, d0);
            c.poke8(offset::DEVICE_ID + 1, d1);
        }
        assert!(!h.fenced(), "firmware left bus mastering on");
        let before = h.mmio.accesses();
        match h.driver(Config::default()) {
            Err(e) => assert_eq!(e, E1000Error::Unsupported { vendor, device }),
            Ok(_) => panic!("{vendor:04x}:{device:04x} accepted"),
        }
        assert_eq!(h.mmio.accesses(), before, "a register was touched");
        assert!(h.fenced(), "{vendor:04x}:{device:04x} left able to DMA");
        assert!(!Part::is_supported(vendor, device));
    }
    assert_eq!(SUPPORTED_IDS.len(), Part::ALL.len());
}

/// The dead kernel stopped in the middle of a Microwire read: CS, SK and DI
/// high, three bits of a command shifted in, flash writes disabled
/// (FWE = 01). The driver drops the lines it owns, starts its own command
/// with CS rising alone (the EEPROM's setup time), reads the right address,
/// and leaves FWE as it found it.
#[test]
fn a_microwire_read_left_mid_command_is_restarted() {
    use paranoid_e1000::regs::eecd;
    let fwe_disabled = 0b01 << 4;
    let mut h = harness(Part::I82544Gc);
    h.model
        .borrow_mut()
        .inherit_eecd(eecd::SK | eecd::CS | eecd::DI | fwe_disabled);
    let driver = h.driver(Config::default()).unwrap();
    let nic = match init(driver, &h.clock) {
        Ok(ok) => ok.device.into_inner(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(nic.mac().0, h.mac, "address from the EEPROM");
    let m = h.model.borrow();
    assert_eq!(
        m.regs.eecd & (0b11 << 4 | eecd::SK | eecd::CS | eecd::DI),
        fwe_disabled,
        "EECD after init: lines low, FWE as found"
    );
    assert!(m.records().violations.is_empty(), "{:?}", m.records());
}
