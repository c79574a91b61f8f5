use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mandate");

/// A running `mandate serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub database: Option<String>,
}

impl Server {
    /// Starts the server in `data_dir` on a free port and waits for its
    /// "listening" line.
    pub fn start(data_dir: &Path, database: Option<&str>) -> Server {
        Self::start_logged(data_dir, database, None, &[])
    }

    /// As [`Server::start`], writing everything the server prints (stdout
    /// and stderr, logs at `debug`) to `log` when given.
    pub fn start_logged(
        data_dir: &Path,
        database: Option<&str>,
        log: Option<&Path>,
        extra_args: &[&str],
    ) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra_args)
            .env_remove("MANDATE_DATABASE")
            .env_remove("MANDATE_DATA_DIR")
            .env("MANDATE_LOG", if log.is_some() { "debug" } else { "warn" })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut log_file = log.map(|p| std::fs::File::create(p).expect("create the server log"));
        if let Some(f) = &log_file {
            cmd.stderr(f.try_clone().expect("log file"));
        }
        if let Some(db) = database {
            cmd.arg("--database").arg(db);
        }
        let mut child = cmd.spawn().expect("spawn mandate serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(f) = log_file.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
            if let Some(rest) = line.strip_prefix("Mandate listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(f) = log_file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        Server {
            child,
            url,
            data_dir: data_dir.to_owned(),
            database: database.map(str::to_owned),
        }
    }

    /// Runs the CLI against this server with the bootstrap token.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("MANDATE_URL", &self.url)
            .env("MANDATE_TOKEN_FILE", self.data_dir.join("admin-token"))
            .env_remove("MANDATE_TOKEN")
            .env("MANDATE_LOG", "warn")
            .output()
            .expect("run mandate")
    }

    /// Runs the CLI with `input` on its standard input.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .env("MANDATE_URL", &self.url)
            .env("MANDATE_TOKEN_FILE", self.data_dir.join("admin-token"))
            .env_remove("MANDATE_TOKEN")
            .env("MANDATE_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mandate");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("run mandate")
    }

    /// Runs the CLI with an explicit token.
    pub fn cli_with_token(&self, token: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("MANDATE_URL", &self.url)
            .env("MANDATE_TOKEN", token)
            .env("MANDATE_LOG", "warn")
            .output()
            .expect("run mandate")
    }

    /// `mandate audit verify` on this server's database.
    pub fn verify(&self) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(["audit", "verify"])
            .env_remove("MANDATE_DATABASE")
            .env_remove("MANDATE_DATA_DIR");
        match &self.database {
            Some(db) => cmd.arg("--database").arg(db),
            None => cmd.arg("--data-dir").arg(&self.data_dir),
        };
        cmd.output().expect("run verify")
    }

    /// SIGTERM, and wait: the server must drain and exit 0.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "server exited with {status:?} after SIGTERM"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The foreign clients' folder (`interop/`).
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The virtualenv's Python if `interop/install.sh` made one, else `python3`.
pub fn python() -> PathBuf {
    let venv = interop_dir().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}
