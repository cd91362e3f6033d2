// Fixture for `panic_in_recovery`: panics in `#[paranoid_init]` code and its callees.

#[paranoid_init(budget_ms = 500)]
fn init(dev: Device<Unknown>, queues: &[Queue]) -> Result<Nvme, Error> {
    let cap = read_cap(&dev).unwrap(); //~ panic_in_recovery
    let q = &queues[0]; //~ panic_in_recovery
    setup_admin(&dev, q)?;
    assert!(cap.mqes() > 0); //~ panic_in_recovery
    Ok(Nvme::new(dev))
}

fn setup_admin(dev: &Device<Unknown>, q: &Queue) -> Result<(), Error> {
    let depth = q.depth().expect("depth"); //~ panic_in_recovery
    if depth == 0 {
        unreachable!("checked above"); //~ panic_in_recovery
    }
    Ok(())
}

// Negatives: error handling, and code not reachable from recovery.
fn read_cap(dev: &Device<Unknown>) -> Result<Cap, Error> {
    let q = dev.queues().get(0).ok_or(Error::NoQueue)?;
    Ok(q.cap())
}

fn host_tool(args: &[String]) {
    let n: u32 = args[1].parse().unwrap();
    println!("{n}");
}

// Constant indexes into arrays of known length cannot panic.
struct Sqe {
    dw: [u32; 16],
}

impl Sqe {
    fn set_cid(&mut self, cid: u16) {
        self.dw[0] = u32::from(cid) << 16;
        let kinds = [1u8, 2];
        let _ = kinds[1];
        let _ = &self.dw[10..=15];
        let _ = self.dw[16]; //~ panic_in_recovery
    }
}

#[paranoid_init(budget_ms = 500)]
fn init_sqe(sqe: &mut Sqe, buf: &[u8; 4]) -> Result<(), Error> {
    sqe.set_cid(buf[3] as u16);
    let _ = buf[4]; //~ panic_in_recovery
    Ok(())
}

// A loop over a collection's own indices indexes it in bounds; another collection indexed
// with the same variable, or one the body shrinks, may be shorter.
#[paranoid_init(budget_ms = 500)]
fn init_rings(ring: &mut Vec<Desc>, bufs: &[Buf]) -> Result<(), Error> {
    for i in 0..ring.len() {
        ring[i].addr = bufs[i].phys(); //~ panic_in_recovery
    }
    for (i, d) in ring.iter().enumerate() {
        let _ = (d, ring[i].addr);
    }
    for i in 0..ring.len() {
        ring.truncate(1);
        ring[i].addr = 0; //~ panic_in_recovery
    }
    for i in 0..=ring.len() {
        ring[i].addr = 0; //~ panic_in_recovery
    }
    Ok(())
}
