//! What a scenario is: a kernel, a command line, extra QEMU arguments, a
//! timeout, the expected exit status, and optional host-side hooks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::machine::Machine;
use crate::result_line::ResultLine;

/// QEMU's exit status for `ExitCode::Success` (debug-exit value 0x10).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's exit status for `ExitCode::Failure` (debug-exit value 0x11).
pub const EXIT_FAILURE: i32 = 35;
/// Default per-scenario timeout (a boot takes well under a second on TCG).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Written in [`Scenario::qemu_args`], replaced by the run directory at run
/// time (a scenario renamed for a machine profile runs in another directory).
pub const RUN_DIR: &str = "{run}";
/// Replaced in QEMU arguments by the guest memory (`-m`) of the run (a
/// memory backend's size must match it).
pub const GUEST_MEMORY: &str = "{memory}";
/// Default size of the NVMe disk image.
pub const DEFAULT_DISK_SIZE: u64 = 8 << 20;

/// A hook run before QEMU starts, with the run directory (the disk image is
/// already created at [`RunDir::disk`]).
pub type PrepareHook = Arc<dyn Fn(&RunDir) -> Result<(), String> + Send + Sync>;
/// A host-side check of a finished run (its serial log, result line, disk).
pub type CheckHook = Arc<dyn Fn(&RunOutput) -> Result<(), String> + Send + Sync>;

/// The files of one run, under `tests/out/<scenario>/`.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub dir: PathBuf,
}

impl RunDir {
    /// The raw NVMe disk image.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("nvme.img")
    }
    /// The serial log (COM1).
    pub fn serial(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    /// QEMU's standard error.
    pub fn stderr(&self) -> PathBuf {
        self.dir.join("qemu.stderr")
    }
    /// QEMU's standard output.
    pub fn stdout(&self) -> PathBuf {
        self.dir.join("qemu.stdout")
    }
    /// The QEMU command line, shell-quoted.
    pub fn command(&self) -> PathBuf {
        self.dir.join("command.txt")
    }
    /// Any other file of the run (for hooks).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What a finished run produced, handed to [`Scenario::check`].
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The run's files.
    pub dir: RunDir,
    /// The serial log, lossily decoded.
    pub serial: String,
    /// The scenario's result line, if one was printed.
    pub result: Option<ResultLine>,
    /// QEMU's exit status (`None` when killed).
    pub exit: Option<i32>,
    /// The machine it ran on.
    pub machine: Machine,
}

impl RunOutput {
    /// The disk image path.
    pub fn disk(&self) -> PathBuf {
        self.dir.disk()
    }

    /// The value of `key` on the result line.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.result.as_ref().and_then(|r| r.get(key))
    }
}

/// One QEMU boot with its expectations. Build with [`Scenario::new`] and the
/// chained setters; register it in [`crate::scenarios::all`].
#[derive(Clone)]
pub struct Scenario {
    /// Unique name: the `tests/out/` directory and the summary row.
    pub name: String,
    /// Kernel binary (a `[[bin]]` of `examples/kernels`) given to `-kernel`.
    pub kernel: String,
    /// The `-append` command line.
    pub cmdline: String,
    /// A second kernel binary (or any file under the repo, by relative path)
    /// given to `-initrd`.
    pub initrd: Option<String>,
    /// Extra QEMU arguments, appended after the standard machine.
    pub qemu_args: Vec<String>,
    /// The `test=` value of the result line to require (default: `name`).
    pub result_test: String,
    /// Per-run timeout; QEMU is killed after it.
    pub timeout: Duration,
    /// Required QEMU exit status.
    pub expected_exit: i32,
    /// Required verdict on the result line: `pass` (true) or `fail` (false).
    pub expect_pass: bool,
    /// Netdev the standard e1000 connects to (`None`: no peer).
    pub nic_netdev: Option<String>,
    /// The run must end in a machine reset (a watchdog firing) before any result
    /// line: QEMU exits 0 on a reset under `-no-reboot`.
    pub expect_reset: bool,
    /// Size of the NVMe disk image, created sparse with `set_len` (like `truncate -s`).
    pub disk_size: u64,
    /// Guest memory (`-m`).
    pub memory: String,
    /// Runs before QEMU (e.g. writes a pattern to the disk image).
    pub prepare: Option<PrepareHook>,
    /// Runs after QEMU on its output; an `Err` fails the scenario.
    pub check: Option<CheckHook>,
    /// The machine it boots on (default: the standard machine).
    pub machine: Machine,
    /// Whether the command line names the machine's dump target
    /// (`dump_serial=`, `dump_nsid=`), appended at run time.
    pub names_target: bool,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("kernel", &self.kernel)
            .field("cmdline", &self.cmdline)
            .field("initrd", &self.initrd)
            .field("qemu_args", &self.qemu_args)
            .field("timeout", &self.timeout)
            .field("expected_exit", &self.expected_exit)
            .field("machine", &self.machine.name)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// A scenario booting `test-kernel` with `test=NAME`, expecting success.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kernel: "test-kernel".to_string(),
            cmdline: format!("test={name}"),
            initrd: None,
            qemu_args: Vec::new(),
            result_test: name.to_string(),
            timeout: DEFAULT_TIMEOUT,
            expected_exit: EXIT_SUCCESS,
            expect_pass: true,
            expect_reset: false,
            nic_netdev: None,
            disk_size: DEFAULT_DISK_SIZE,
            memory: "256M".to_string(),
            prepare: None,
            check: None,
            machine: Machine::standard(),
            names_target: false,
        }
    }

    /// Runs on `machine`; a profile other than the standard one renames the
    /// scenario `NAME@MACHINE` (its own run directory).
    pub fn on(mut self, machine: &Machine) -> Self {
        if !machine.is_standard() {
            self.name = format!("{}@{}", self.name, machine.name);
        }
        self.machine = machine.clone();
        if self.names_target && machine.expect.refusal.is_some() {
            // The recovery kernel must refuse to write: it reports a failure.
            self.expect_pass = false;
            self.expected_exit = EXIT_FAILURE;
        }
        self
    }

    /// Names the machine's dump target on the command line at run time.
    pub fn names_target(mut self) -> Self {
        self.names_target = true;
        self
    }

    /// The command line QEMU gets: the scenario's, plus the target's name
    /// when [`names_target`](Self::names_target) is set.
    pub fn full_cmdline(&self) -> String {
        if self.names_target {
            format!("{} {}", self.cmdline, self.machine.target_words())
        } else {
            self.cmdline.clone()
        }
    }

    /// Guest memory: the machine's when it sets one, else the scenario's.
    pub fn guest_memory(&self) -> &str {
        self.machine.memory.as_deref().unwrap_or(&self.memory)
    }

    /// The namespace images of a run in `dir`.
    pub fn images(&self, dir: &RunDir) -> Vec<crate::machine::Image> {
        self.machine.images(dir, self.disk_size)
    }

    /// Boots another kernel binary of `examples/kernels`.
    pub fn kernel(mut self, bin: &str) -> Self {
        self.kernel = bin.to_string();
        self
    }

    /// Replaces the whole command line.
    pub fn cmdline(mut self, cmdline: &str) -> Self {
        self.cmdline = cmdline.to_string();
        self
    }

    /// Appends `word` to the command line.
    pub fn append(mut self, word: &str) -> Self {
        if !self.cmdline.is_empty() {
            self.cmdline.push(' ');
        }
        self.cmdline.push_str(word);
        self
    }

    /// Loads a kernel binary (or repo-relative file) as `-initrd`.
    pub fn initrd(mut self, bin: &str) -> Self {
        self.initrd = Some(bin.to_string());
        self
    }

    /// Adds QEMU arguments, e.g. `["-device", "edu"]`.
    pub fn qemu_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.qemu_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Requires the result line of another `test=` name.
    pub fn result_test(mut self, test: &str) -> Self {
        self.result_test = test.to_string();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the required exit status (33: success, 35: failure, 0: triple fault).
    pub fn expected_exit(mut self, status: i32) -> Self {
        self.expected_exit = status;
        self
    }

    /// Connects the standard e1000 to netdev `id` (declare it with
    /// [`qemu_args`](Self::qemu_args), e.g. `-netdev hubport,id=h0,hubid=0`).
    pub fn nic_netdev(mut self, id: &str) -> Self {
        self.nic_netdev = Some(id.to_string());
        self
    }

    /// Expects the machine to be reset (a watchdog firing) before any result
    /// line: QEMU exits 0 on a reset under `-no-reboot`. The check hook should
    /// confirm from the serial log how far the run got.
    pub fn expect_reset(mut self) -> Self {
        self.expect_reset = true;
        self.expected_exit = 0;
        self
    }

    /// Expects the kernel to report `verdict=fail` and exit with the failure
    /// status: for scenarios that prove a failure is detected.
    pub fn expect_failure(mut self) -> Self {
        self.expect_pass = false;
        self.expected_exit = EXIT_FAILURE;
        self
    }

    /// Sets the NVMe disk image size.
    pub fn disk_size(mut self, bytes: u64) -> Self {
        self.disk_size = bytes;
        self
    }

    /// Sets guest memory (`-m`).
    pub fn memory(mut self, memory: &str) -> Self {
        self.memory = memory.to_string();
        self
    }

    /// Runs `hook` before QEMU starts.
    pub fn prepare(
        mut self,
        hook: impl Fn(&RunDir) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.prepare = Some(Arc::new(hook));
        self
    }

    /// Checks the run's output on the host after QEMU exits.
    pub fn check(
        mut self,
        hook: impl Fn(&RunOutput) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(hook));
        self
    }

    /// The run directory under `out`.
    pub fn run_dir(&self, out: &Path) -> RunDir {
        RunDir {
            dir: out.join(&self.name),
        }
    }
}
