//! A private Docker engine for the service tests, started once per test
//! binary by `scripts/dockerd.sh` (host networking only, a `busybox:latest`
//! image imported from busybox-static). A watchdog in the script removes the
//! containers and stops the daemon when this process exits. A test that needs
//! the engine fails when it cannot start: it is never skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The running engine.
pub struct Engine {
    /// `unix:///.../docker.sock`, for `DOCKER_HOST`.
    pub host: String,
    /// Its directory (data root, exec root, log).
    pub dir: PathBuf,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/dockerd.sh")
}

impl Engine {
    /// The engine of this test run, started on first use.
    pub fn shared() -> &'static Engine {
        ENGINE.get_or_init(|| {
            // The script makes the folder and its watchdog deletes it.
            let dir = std::env::temp_dir().join(format!("pc-docker-{}-{:x}", std::process::id(), rand::random::<u32>()));
            let out = Command::new(script())
                .arg("start")
                .arg(&dir)
                .arg(std::process::id().to_string())
                .output()
                .expect("scripts/dockerd.sh must run");
            assert!(
                out.status.success(),
                "the Docker engine did not start (install docker.io and busybox-static; run as root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Engine { host, dir }
        })
    }

    /// Runs the docker CLI against this engine; stdout, panicking on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker").arg("-H").arg(&self.host).args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the docker CLI; whether it succeeded.
    pub fn try_docker(&self, args: &[&str]) -> bool {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}
