//! The DPDK environment (EAL): started once per process from a typed
//! configuration, released when the last user of it is gone.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::ffi;

/// How to start DPDK's environment abstraction layer (EAL).
///
/// The defaults run without privileges, hugepages or PCI devices — what
/// tests and virtual devices need:
/// `-l 0 --no-huge -m 256 --no-pci --no-shconf --no-telemetry
/// --file-prefix=homa-<pid>-<n> --log-level=warning`. On a real NIC, turn
/// `no_huge` and `no_pci` off and name the device (see the README).
///
/// ```
/// use homa_dpdk::EalConfig;
/// let mut eal = EalConfig::default();
/// eal.vdevs.push("net_memif0,role=server,socket=/run/homa.sock,socket-abstract=no".into());
/// let args = eal.args();
/// assert!(args.contains(&"--no-huge".to_string()));
/// assert!(args.iter().any(|a| a.starts_with("--vdev=net_memif0")));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EalConfig {
    /// The EAL core list (`-l`). EAL pins the thread that starts it to the
    /// first of these; this crate restores that thread's affinity afterwards
    /// and pins only its polling thread (see
    /// [`PollerConfig::core`](crate::PollerConfig::core)). Default `"0"`.
    pub cores: String,
    /// Memory for EAL in megabytes (`-m`). Default 256.
    pub memory_mb: u32,
    /// Run without hugepages (`--no-huge`). Default `true`.
    pub no_huge: bool,
    /// Do not scan PCI devices (`--no-pci`). Default `true`.
    pub no_pci: bool,
    /// PCI devices to use (`-a <address>`), for real NICs.
    pub allow_pci: Vec<String>,
    /// Virtual devices (`--vdev=<spec>`), e.g.
    /// `net_af_packet0,iface=eth0` or `net_memif0,role=client,socket=/run/x.sock`.
    pub vdevs: Vec<String>,
    /// `--file-prefix`: the name of this instance's runtime directory.
    /// `None` picks a unique one per process and instance.
    pub file_prefix: Option<String>,
    /// No shared configuration files (`--no-shconf`). Default `true`.
    pub no_shconf: bool,
    /// No telemetry socket (`--no-telemetry`). Default `true`.
    pub no_telemetry: bool,
    /// `--log-level`; default `"warning"` (EAL is chatty).
    pub log_level: Option<String>,
    /// More arguments, passed last as they are.
    pub extra_args: Vec<String>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            cores: "0".into(),
            memory_mb: 256,
            no_huge: true,
            no_pci: true,
            allow_pci: Vec::new(),
            vdevs: Vec::new(),
            file_prefix: None,
            no_shconf: true,
            no_telemetry: true,
            log_level: Some("warning".into()),
            extra_args: Vec::new(),
        }
    }
}

static PREFIX_SEQ: AtomicU32 = AtomicU32::new(0);

impl EalConfig {
    /// The EAL command line this configuration stands for (without the
    /// program name). A missing file prefix is filled in with a unique one.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["-l".to_string(), self.cores.clone()];
        a.push("-m".into());
        a.push(self.memory_mb.to_string());
        if self.no_huge {
            a.push("--no-huge".into());
        }
        if self.no_pci {
            a.push("--no-pci".into());
        }
        for p in &self.allow_pci {
            a.push("-a".into());
            a.push(p.clone());
        }
        for v in &self.vdevs {
            a.push(format!("--vdev={v}"));
        }
        if self.no_shconf {
            a.push("--no-shconf".into());
        }
        if self.no_telemetry {
            a.push("--no-telemetry".into());
        }
        let prefix = self.file_prefix.clone().unwrap_or_else(|| {
            format!(
                "homa-{}-{}",
                std::process::id(),
                PREFIX_SEQ.fetch_add(1, Ordering::Relaxed)
            )
        });
        a.push(format!("--file-prefix={prefix}"));
        if let Some(l) = &self.log_level {
            a.push(format!("--log-level={l}"));
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// EAL runs at most once per process (DPDK cannot start it again, even
/// after cleanup).
static STARTED: AtomicBool = AtomicBool::new(false);

/// Things that must be freed after every port is closed and before EAL
/// is cleaned up.
#[derive(Default)]
pub(crate) struct Resources {
    pub pools: Vec<Arc<ffi::Mempool>>,
    pub rings: Vec<ffi::RingPair>,
}

/// A running DPDK environment. Shared (`Arc`) by the ports opened on it;
/// when the last holder drops it, the rings and pools it owns are freed,
/// `rte_eal_cleanup` runs, and its runtime directory
/// (`/var/run/dpdk/<prefix>`) is removed.
pub struct Dpdk {
    pub(crate) resources: Mutex<Resources>,
    runtime_dir: Option<PathBuf>,
    names: AtomicU32,
}

impl std::fmt::Debug for Dpdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpdk")
            .field("runtime_dir", &self.runtime_dir)
            .finish_non_exhaustive()
    }
}

impl Dpdk {
    /// Start EAL with `config`.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`] if EAL was started before in this process
    /// (DPDK allows it once); [`Error::Dpdk`] if `rte_eal_init` fails (bad
    /// arguments, no memory, a device that does not probe).
    pub fn init(config: &EalConfig) -> Result<Arc<Dpdk>, Error> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyStarted);
        }
        let mut args = vec!["homa-dpdk".to_string()];
        args.extend(config.args());
        tracing::debug!(?args, "rte_eal_init");
        // EAL pins the calling thread to its first core; threads spawned
        // later (tokio's workers) would inherit that. Undo it.
        let affinity = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
        let r = ffi::eal_init(&args);
        if let Some(set) = affinity {
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
        r.map_err(|e| Error::dpdk("rte_eal_init", e))?;
        Ok(Arc::new(Dpdk {
            resources: Mutex::new(Resources::default()),
            runtime_dir: ffi::runtime_dir(),
            names: AtomicU32::new(0),
        }))
    }

    /// EAL's runtime directory, removed when this value is dropped.
    pub fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.runtime_dir.as_deref()
    }

    /// Mbufs in use across the pools of every port opened on this
    /// environment (0 once the ports are closed, unless mbufs leaked).
    pub fn mbufs_in_use(&self) -> u64 {
        let r = self.resources.lock().unwrap_or_else(|e| e.into_inner());
        r.pools.iter().map(|p| u64::from(p.in_use())).sum()
    }

    /// A name unique in this process, for DPDK objects.
    pub(crate) fn unique_name(&self, what: &str) -> String {
        format!("{what}{}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// Create two ports joined back to back by a pair of in-memory rings
    /// (DPDK's `net_ring` driver): what one sends, the other receives. For
    /// tests without privileges or NICs. Returns the two port ids, to use as
    /// [`Device::PortId`](crate::Device::PortId).
    ///
    /// # Errors
    /// [`Error::Dpdk`] if the rings or ports cannot be created.
    pub fn ring_pair(&self) -> Result<(u16, u16), Error> {
        let a = self.unique_name("homa_ring_a");
        let b = self.unique_name("homa_ring_b");
        let (rings, pa, pb) = ffi::RingPair::create(&a, &b, 1024)
            .map_err(|e| Error::dpdk("rte_eth_from_rings", e))?;
        self.resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rings
            .push(rings);
        Ok((pa, pb))
    }
}

impl Drop for Dpdk {
    fn drop(&mut self) {
        let res = std::mem::take(&mut *self.resources.lock().unwrap_or_else(|e| e.into_inner()));
        // Rings first: freeing them returns their mbufs to the pools.
        drop(res.rings);
        for p in &res.pools {
            if p.in_use() > 0 {
                tracing::warn!(in_use = p.in_use(), "mbufs still in use at shutdown");
            }
        }
        drop(res.pools);
        if let Err(e) = ffi::eal_cleanup() {
            tracing::warn!(error = %ffi::strerror(e), "rte_eal_cleanup failed");
        }
        if let Some(dir) = &self.runtime_dir {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove DPDK runtime dir");
                }
            }
        }
    }
}
