//! (b) As root: two processes in two network namespaces, one an echo
//! server and one a client, over `net_af_packet` on a veth pair and over
//! `net_memif` (the memif socket is a file both namespaces see). No static
//! neighbour entries: ARP resolution happens for real. The processes are
//! the `dpdk_echo` example (EAL starts once per process, so each side needs
//! its own). Skipped, with the reason printed, when not root.
//!
//! Namespaces, links, sockets and DPDK runtime directories are removed
//! however the test ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The two tests share the machine's cores; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) not installed".into());
    }
    None
}

/// The `dpdk_echo` example. `cargo test` builds examples next to the
/// tests; when only this test was built (`--test netns`), build it here.
fn echo_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = profile_dir.join("examples").join("dpdk_echo");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "homa-dpdk", "--example", "dpdk_echo"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            cmd.arg("--target-dir").arg(target);
        }
        let st = cmd.status().expect("run cargo");
        assert!(st.success(), "building the dpdk_echo example failed");
    }
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything a run creates, removed on drop (also when a test panics).
struct Scene {
    namespaces: Vec<String>,
    files: Vec<PathBuf>,
    prefixes: Vec<String>,
    children: Vec<Child>,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        let id = std::process::id() % 100_000;
        let namespaces = vec![format!("hd{tag}{id}a"), format!("hd{tag}{id}b")];
        let mut s = Scene {
            namespaces: Vec::new(),
            files: Vec::new(),
            prefixes: vec![format!("hd{tag}{id}s"), format!("hd{tag}{id}c")],
            children: Vec::new(),
        };
        for ns in &namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
            s.namespaces.push(ns.clone());
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        s
    }

    /// A veth pair with one end in each namespace, up, with kernel
    /// addresses that differ from the DPDK endpoints' (the kernel ignores
    /// frames for those).
    fn veth(&self) -> (String, String) {
        let (a, b) = (&self.namespaces[0], &self.namespaces[1]);
        let (va, vb) = (format!("{a}v"), format!("{b}v"));
        sh(&[
            "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
        ]);
        sh(&["ip", "link", "set", &va, "netns", a]);
        sh(&["ip", "link", "set", &vb, "netns", b]);
        sh(&["ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", &va]);
        sh(&["ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", &vb]);
        sh(&["ip", "-n", a, "link", "set", &va, "up"]);
        sh(&["ip", "-n", b, "link", "set", &vb, "up"]);
        (va, vb)
    }

    fn spawn(&mut self, ns: usize, args: &[String]) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespaces[ns]])
            .arg(echo_bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dpdk_echo");
        self.children.push(child);
        self.children.len() - 1
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            // Deleting a namespace deletes the veth end in it, and its peer.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for p in &self.prefixes {
            let _ = std::fs::remove_dir_all(PathBuf::from("/var/run/dpdk").join(p));
        }
    }
}

/// Lines of a child's stdout, on a channel (so reads can time out).
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

fn wait(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Server in namespace a, client in namespace b, with these `--vdev`s.
fn run_pair(scene: &mut Scene, server_vdev: &str, client_vdev: &str) {
    let common = |vdev: &str, ip: &str, prefix: &str| {
        vec![
            "--vdev".to_string(),
            vdev.to_string(),
            "--ip".into(),
            ip.into(),
            "--port".into(),
            "4000".into(),
            "--prefix".into(),
            prefix.into(),
        ]
    };
    let mut sargs = vec!["server".to_string()];
    sargs.extend(common(server_vdev, "10.77.0.11", &scene.prefixes[0]));
    let s = scene.spawn(0, &sargs);
    let slines = lines(&mut scene.children[s]);
    let ready = slines
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("server not ready: {}", stderr_of(&mut scene.children[s])));
    assert!(ready.starts_with("ready"), "server said {ready:?}");

    let mut cargs = vec!["client".to_string()];
    cargs.extend(common(client_vdev, "10.77.0.12", &scene.prefixes[1]));
    cargs.extend([
        "--peer".to_string(),
        "10.77.0.11:4000".into(),
        "--rounds".into(),
        "2".into(),
        "--sizes".into(),
        "1,100,1400,1500,3000,10000,100000,1000000".into(),
    ]);
    let c = scene.spawn(1, &cargs);
    let clines = lines(&mut scene.children[c]);
    let status = wait(&mut scene.children[c], Duration::from_secs(180));
    let cerr = stderr_of(&mut scene.children[c]);
    let cout: Vec<String> = clines.try_iter().collect();
    eprintln!("client stdout: {cout:#?}\nclient stderr: {cerr}");
    let status = status.expect("client finished in time");
    assert!(status.success(), "client failed");
    assert!(cout.iter().any(|l| l == "OK 16 RPCs verified"), "{cout:?}");
    // The client knew no MAC address: it resolved the server by ARP.
    let arp = cout
        .iter()
        .find(|l| l.starts_with("arp "))
        .expect("arp line");
    assert!(
        arp.contains("replies_rx=") && !arp.contains("replies_rx=0"),
        "{arp}"
    );
    assert!(arp.contains("resolved=1"), "{arp}");

    // Closing the server's stdin stops it cleanly.
    drop(scene.children[s].stdin.take());
    let st = wait(&mut scene.children[s], Duration::from_secs(30)).expect("server stops");
    let serr = stderr_of(&mut scene.children[s]);
    let sout: Vec<String> = slines.try_iter().collect();
    eprintln!("server stdout: {sout:#?}\nserver stderr: {serr}");
    assert!(st.success(), "server failed");
    assert!(sout.iter().any(|l| l == "served 16 requests"), "{sout:?}");
    let sarp = sout
        .iter()
        .find(|l| l.starts_with("arp "))
        .expect("arp line");
    assert!(
        !sarp.contains("requests_rx=0") && !sarp.contains("replies_tx=0"),
        "{sarp}"
    );
    for p in &scene.prefixes {
        let dir = PathBuf::from("/var/run/dpdk").join(p);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn af_packet_between_namespaces() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED af_packet_between_namespaces: {why}");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut scene = Scene::new("p");
    let (va, vb) = scene.veth();
    run_pair(
        &mut scene,
        &format!("net_af_packet0,iface={va}"),
        &format!("net_af_packet0,iface={vb}"),
    );
}

#[test]
fn memif_between_namespaces() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED memif_between_namespaces: {why}");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut scene = Scene::new("m");
    // A filesystem socket (not DPDK's default abstract one, which is per
    // network namespace) joins the two namespaces.
    let sock = std::env::temp_dir().join(format!("homa-memif-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    scene.files.push(sock.clone());
    let spec = |role: &str| {
        format!(
            "net_memif0,role={role},id=0,socket={},socket-abstract=no",
            sock.display()
        )
    };
    run_pair(&mut scene, &spec("server"), &spec("client"));
}
