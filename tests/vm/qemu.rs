//! Booting the tier-3 guest under QEMU (software emulation) and pulling its plug.
//!
//! The disk is a raw file attached as a virtio disk with a volatile write cache
//! (`write-cache=on`, so the guest kernel issues flushes as it would to a real disk) while QEMU
//! drops the flushes towards the host (`cache.no-flush=on`, i.e. `cache=unsafe`). Killing QEMU
//! is then a power cut of the guest: its page cache, its dirty ext4 metadata and every request
//! still queued in its block layer are gone; every write QEMU had completed is in the file, which
//! the host (never crashing) keeps. That is a disk that persisted exactly what it acknowledged;
//! the other half of a power cut, a disk losing or reordering writes it acknowledged but was not
//! asked to flush, is replayed from the block log (`blocklog.rs`). A host fsync per guest flush
//! (any other cache mode) would change no byte of either, only the speed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Paths from `target/vm/env`, written by `tests/vm/build.sh`.
#[derive(Debug, Clone)]
pub struct Env {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub base_img: PathBuf,
    /// The static release CLI: run in the guest, and on the host to read replayed states.
    pub turnwal: PathBuf,
    pub qemu: PathBuf,
    pub e2fsck: PathBuf,
    pub debugfs: PathBuf,
}

impl Env {
    /// Runs `tests/vm/build.sh` (installing packages and building as needed) and reads its env.
    pub fn build(root: &Path) -> Result<Env, String> {
        let out = Command::new("bash")
            .arg(root.join("tests/vm/build.sh"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running tests/vm/build.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tests/vm/build.sh failed ({}): the VM tier needs the Debian packages \
                 qemu-system-x86, linux-image-cloud-amd64, busybox-static, e2fsprogs, cpio \
                 (installed by the script as root) and a Rust toolchain.\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = std::fs::read_to_string(root.join("target/vm/env"))
            .map_err(|e| format!("target/vm/env: {e}"))?;
        let get = |k: &str| -> Result<PathBuf, String> {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(PathBuf::from)
                .ok_or_else(|| format!("target/vm/env has no {k}"))
        };
        Ok(Env {
            kernel: get("KERNEL")?,
            initrd: get("INITRD")?,
            base_img: get("BASE_IMG")?,
            turnwal: get("TURNWAL")?,
            qemu: get("QEMU")?,
            e2fsck: get("E2FSCK")?,
            debugfs: get("DEBUGFS")?,
        })
    }
}

/// One boot's disks and parameters.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The ext4 disk under test.
    pub disk: PathBuf,
    /// The report disk (raw; recreated empty by [`Vm::start`]).
    pub report: PathBuf,
    /// With a path: the disk goes through QEMU's `blklogwrites` driver, logging to it.
    pub log: Option<PathBuf>,
    /// The guest's kernel log.
    pub console: PathBuf,
    /// `twl.<name>=<value>` parameters for the guest's `/init`.
    pub params: Vec<(&'static str, String)>,
}

/// Bytes of the report disk.
pub const REPORT_DISK_BYTES: u64 = 48 << 20;

/// A line the guest printed on ttyS1, when it came, and how long the block log was by then.
#[derive(Debug, Clone)]
pub struct ConsoleLine {
    pub at: Instant,
    pub text: String,
    /// It ended with a newline (the last line before a kill may be cut short).
    pub complete: bool,
    /// Bytes of the block log when the host read the line (recorded boots).
    pub log_len: Option<u64>,
}

/// A running guest. Dropping it kills QEMU (a panicking test leaves no emulator behind).
pub struct Vm {
    child: Child,
    lines: Receiver<ConsoleLine>,
    pub started: Instant,
}

impl Vm {
    /// Boots `boot`.
    pub fn start(env: &Env, boot: &Boot) -> Result<Vm, String> {
        let report = File::create(&boot.report).map_err(|e| format!("report disk: {e}"))?;
        report
            .set_len(REPORT_DISK_BYTES)
            .map_err(|e| format!("report disk: {e}"))?;
        drop(report);
        let mut append = String::from("console=ttyS0 panic=-1 quiet");
        for (k, v) in &boot.params {
            append += &format!(" twl.{k}={v}");
        }
        let file = |node: &str, path: &Path| {
            format!(
                "driver=file,node-name={node},filename={},cache.no-flush=on",
                path.display()
            )
        };
        let mut cmd = Command::new(&env.qemu);
        cmd.args(["-M", "q35", "-m", "384", "-smp", "1", "-accel", "tcg"])
            .args([
                "-nodefaults",
                "-no-reboot",
                "-display",
                "none",
                "-monitor",
                "none",
            ])
            .arg("-kernel")
            .arg(&env.kernel)
            .arg("-initrd")
            .arg(&env.initrd)
            .args(["-append", &append])
            .arg("-serial")
            .arg(format!("file:{}", boot.console.display()))
            .args(["-serial", "stdio"])
            .args(["-blockdev", &file("disk0", &boot.disk)]);
        let drive = match &boot.log {
            Some(log) => {
                File::create(log).map_err(|e| format!("block log: {e}"))?;
                cmd.args(["-blockdev", &file("log0", log)]).args([
                    "-blockdev",
                    "driver=blklogwrites,node-name=lw0,file=disk0,log=log0,log-sector-size=512",
                ]);
                "lw0"
            }
            None => "disk0",
        };
        cmd.args([
            "-device",
            &format!("virtio-blk-pci,drive={drive},write-cache=on"),
        ])
        .args(["-blockdev", &file("rep0", &boot.report)])
        .args(["-device", "virtio-blk-pci,drive=rep0,write-cache=on"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?;
        let started = Instant::now();
        let stdout = child.stdout.take().ok_or("no QEMU stdout")?;
        let stderr = child.stderr.take().ok_or("no QEMU stderr")?;
        let (tx, rx) = mpsc::channel();
        let log = boot.log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let log_len = log
                    .as_ref()
                    .and_then(|l| std::fs::metadata(l).ok())
                    .map(|m| m.len());
                let complete = buf.ends_with(b"\n");
                let text = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                let line = ConsoleLine {
                    at: Instant::now(),
                    text,
                    complete,
                    log_len,
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // QEMU's own complaints go to the kernel log file's neighbour, for the failure report.
        let err_path = boot.console.with_extension("qemu-stderr");
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = BufReader::new(stderr).read_to_end(&mut text);
            let _ = std::fs::write(err_path, text);
        });
        Ok(Vm {
            child,
            lines: rx,
            started,
        })
    }

    /// The next console line, waiting at most until `deadline`; `Err(true)` on timeout,
    /// `Err(false)` once QEMU is gone and every line was read.
    pub fn next_line(&self, deadline: Instant) -> Result<ConsoleLine, bool> {
        match self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err(true),
            Err(RecvTimeoutError::Disconnected) => Err(false),
        }
    }

    /// Pulls the plug: SIGKILL, then waits for QEMU to be gone. Returns the lines printed
    /// before the kill that were still unread.
    pub fn power_cut(mut self) -> Vec<ConsoleLine> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain()
    }

    /// Waits (at most `limit`) for the guest to power itself off; kills it after that.
    /// Returns the unread lines and whether it exited by itself.
    pub fn wait_exit(mut self, limit: Duration) -> (Vec<ConsoleLine>, bool) {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            match self.next_line(deadline) {
                Ok(l) => lines.push(l),
                Err(false) => break,
                Err(true) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    lines.extend(self.drain());
                    return (lines, false);
                }
            }
        }
        let exited = matches!(self.child.wait(), Ok(s) if s.success());
        (lines, exited)
    }

    fn drain(&self) -> Vec<ConsoleLine> {
        // The reader thread ends at EOF, which comes once QEMU is dead.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while let Ok(l) = self.next_line(deadline) {
            lines.push(l);
        }
        lines
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
