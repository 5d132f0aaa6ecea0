//! A network namespace of the test's own, joined to the root namespace by a veth pair
//! with addresses from the documentation range 198.51.100.0/24 (RFC 5737): a "phone on
//! another host" for tests that start the real binary. Used through `#[path]`.
//!
//! Each namespace gets unique names (process id and a counter) and its own /30, so
//! parallel runs do not collide; [`NetNs`]'s `Drop` removes the pair and the namespace,
//! also when the test fails. Nothing routes beyond the /30: the only addresses reached
//! are the two ends of the pair.
//!
//! Needs root and `ip` (iproute2). Without them the test is skipped with a loud
//! message, except under `CI=true`, where it fails.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A namespace `name` with `ns_ip` inside, reachable from the root namespace's
/// `host_ip` on interface `host_if`.
pub(crate) struct NetNs {
    pub(crate) name: String,
    pub(crate) host_if: String,
    pub(crate) host_ip: Ipv4Addr,
    pub(crate) ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<String, String> {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `ip` (iproute2): {e}")),
    }
}

fn unavailable(why: &str) -> Option<NetNs> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "a network namespace is required under CI=true (root and iproute2): {why}"
    );
    eprintln!(
        "\n!!! NO NETWORK NAMESPACE ({why}): run as root with iproute2; SKIPPING this test !!!\n"
    );
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Namespaces of earlier runs that were killed before their `Drop` ran (their process
/// is gone): removed so they do not pile up.
fn remove_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix("parleyt") else {
            continue;
        };
        let pid = rest.split('n').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl NetNs {
    /// A new namespace with its veth pair up, or `None` (a loud skip) where namespaces
    /// cannot be made.
    pub(crate) fn create() -> Option<NetNs> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        if !is_root() {
            return unavailable("not root");
        }
        if let Err(e) = ip(&["-V"]) {
            return unavailable(&e);
        }
        remove_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Interface names have at most 15 bytes.
        let tag = format!("{}{n}", pid % 10_000_000);
        let name = format!("parleyt{pid}n{n}");
        let host_if = format!("pth{tag}");
        let ns_if = format!("ptn{tag}");
        // A /30 of 198.51.100.0/24 that no interface has yet.
        let used = ip(&["-4", "-o", "addr", "show"]).unwrap_or_default();
        let start = (pid + n * 17) % 64;
        let Some(k) = (0..64)
            .map(|i| (start + i) % 64)
            .find(|k| !used.contains(&format!("198.51.100.{}/30", 4 * k + 1)))
        else {
            return unavailable("every /30 of 198.51.100.0/24 is in use");
        };
        let host_ip = Ipv4Addr::new(198, 51, 100, u8::try_from(4 * k + 1).ok()?);
        let ns_ip = Ipv4Addr::new(198, 51, 100, u8::try_from(4 * k + 2).ok()?);
        if let Err(e) = ip(&["netns", "add", &name]) {
            return unavailable(&e);
        }
        // From here on, Drop cleans up whatever was made.
        let ns = NetNs {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        let failed = {
            let host_cidr = format!("{host_ip}/30");
            let ns_cidr = format!("{ns_ip}/30");
            let steps: [&[&str]; 6] = [
                &[
                    "link",
                    "add",
                    &ns.host_if,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &ns_if,
                    "netns",
                    &ns.name,
                ],
                &["addr", "add", &host_cidr, "dev", &ns.host_if],
                &["link", "set", &ns.host_if, "up"],
                &["-n", &ns.name, "addr", "add", &ns_cidr, "dev", &ns_if],
                &["-n", &ns.name, "link", "set", &ns_if, "up"],
                &["-n", &ns.name, "link", "set", "lo", "up"],
            ];
            steps.iter().find_map(|step| ip(step).err())
        };
        if let Some(e) = failed {
            drop(ns);
            return unavailable(&e);
        }
        Some(ns)
    }

    /// `program` run inside the namespace (`ip netns exec`).
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Whether `addr` is one of the pair's two addresses (the only ones a test in this
    /// namespace may send to).
    pub(crate) fn is_ours(&self, addr: std::net::IpAddr) -> bool {
        addr == std::net::IpAddr::V4(self.host_ip) || addr == std::net::IpAddr::V4(self.ns_ip)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; deleting the namespace ends the other too.
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
