//! Creating a cluster on disk: `initdb` with a SCRAM password for the
//! superuser, the `postgresql.conf` settings pgpulse's tests rely on,
//! `pg_hba.conf`, and (optionally) a TLS certificate signed by a throw-away CA.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::PgOptions;
use crate::bins;
use crate::error::{Result, TestkitError};
use crate::privilege::{self, RunAs};

/// The superuser every local cluster gets.
pub(crate) const SUPERUSER: &str = "pgpulse";

/// Paths of one local cluster.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The temporary directory holding everything; also the socket directory.
    pub(crate) dir: PathBuf,
    /// `dir/data`, the cluster itself.
    pub(crate) data: PathBuf,
    /// `dir/postgres.log`, the server log (`pg_ctl -l`).
    pub(crate) log: PathBuf,
    /// Directory of `initdb`, `pg_ctl`, `postgres`.
    pub(crate) bin: PathBuf,
    /// Who runs the server programs (`None`: ourselves).
    pub(crate) run_as: Option<&'static RunAs>,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf, bin: PathBuf, run_as: Option<&'static RunAs>) -> Layout {
        Layout {
            data: dir.join("data"),
            log: dir.join("postgres.log"),
            dir,
            bin,
            run_as,
        }
    }

    /// A command running server program `program` as the cluster's user.
    pub(crate) fn command(&self, program: &str) -> std::process::Command {
        privilege::command(self.run_as, &self.bin.join(program), &self.dir)
    }

    /// Writes `contents` to `path` and gives it to the cluster's user.
    fn write(&self, path: &Path, contents: &str, mode: u32) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(contents.as_bytes()).map(|()| f))
            .map_err(|e| TestkitError::io(format!("cannot write {}", path.display()), e))?;
        file.flush()
            .map_err(|e| TestkitError::io(format!("cannot write {}", path.display()), e))?;
        privilege::give_to(self.run_as, path)
    }
}

/// 32 hex characters from the kernel's random source.
pub(crate) fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| TestkitError::io("cannot read /dev/urandom", e))?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Runs `initdb` for `SUPERUSER` with `password` (stored as SCRAM).
pub(crate) fn initdb(layout: &Layout, password: &str) -> Result<()> {
    privilege::give_to(layout.run_as, &layout.dir)?;
    let pwfile = layout.dir.join("pwfile");
    layout.write(&pwfile, &format!("{password}\n"), 0o600)?;
    let result = bins::run(
        layout
            .command("initdb")
            .arg("-D")
            .arg(&layout.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]),
    );
    let _ = std::fs::remove_file(&pwfile);
    result.map(drop)
}

/// Quotes a configuration value for `postgresql.conf`.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The settings appended to `postgresql.conf` (later lines win).
pub(crate) fn conf_text(socket_dir: &Path, opts: &PgOptions) -> String {
    let socket = socket_dir.to_string_lossy();
    let mut conf = String::from("\n# --- pgpulse-testkit ---\n");
    let fixed: [(&str, &str); 12] = [
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", &socket),
        ("shared_preload_libraries", "pg_stat_statements"),
        ("wal_level", "logical"),
        ("max_replication_slots", "10"),
        ("max_wal_senders", "10"),
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "300"),
        ("password_encryption", "scram-sha-256"),
        ("logging_collector", "off"),
    ];
    for (key, value) in fixed {
        let _ = writeln!(conf, "{key} = {}", conf_quote(value));
    }
    if opts.ssl {
        conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    }
    for (key, value) in &opts.extra_conf {
        let _ = writeln!(conf, "{key} = {}", conf_quote(value));
    }
    conf
}

/// `pg_hba.conf`: the caller's lines first, then trust on the socket and
/// SCRAM over TCP (with or without TLS: `host` matches both).
pub(crate) fn hba_text(opts: &PgOptions) -> String {
    let mut hba = String::from("# pgpulse-testkit\n");
    for line in &opts.hba_extra {
        hba.push_str(line);
        hba.push('\n');
    }
    hba.push_str(
        "local all all trust\n\
         local replication all trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n\
         host all all ::1/128 scram-sha-256\n\
         host replication all 127.0.0.1/32 scram-sha-256\n\
         host replication all ::1/128 scram-sha-256\n",
    );
    hba
}

/// Writes the configuration (and TLS files when asked); returns the CA
/// certificate PEM when `opts.ssl`.
pub(crate) fn configure(layout: &Layout, opts: &PgOptions) -> Result<Option<String>> {
    let conf_path = layout.data.join("postgresql.conf");
    let mut conf = std::fs::read_to_string(&conf_path)
        .map_err(|e| TestkitError::io(format!("cannot read {}", conf_path.display()), e))?;
    conf.push_str(&conf_text(&layout.dir, opts));
    layout.write(&conf_path, &conf, 0o600)?;
    layout.write(&layout.data.join("pg_hba.conf"), &hba_text(opts), 0o600)?;
    if !opts.ssl {
        return Ok(None);
    }
    let tls = generate_tls()?;
    layout.write(&layout.data.join("server.crt"), &tls.server_cert, 0o644)?;
    // PostgreSQL refuses a key readable by group or others.
    layout.write(&layout.data.join("server.key"), &tls.server_key, 0o600)?;
    Ok(Some(tls.ca_cert))
}

/// PEM texts of a throw-away CA and a server certificate it signed.
#[derive(Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): what a client trusts.
    pub ca_cert: String,
    /// The server certificate (PEM), for `localhost` and `127.0.0.1`.
    pub server_cert: String,
    /// The server's private key (PEM).
    pub server_key: String,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret, even a throw-away one.
        f.debug_struct("TlsFiles").finish_non_exhaustive()
    }
}

/// A CA plus a server certificate for `localhost` and `127.0.0.1`.
///
/// A separate CA (rather than one self-signed leaf) is what every TLS client
/// accepts as a root: webpki refuses a CA certificate used as the server's.
pub fn generate_tls() -> Result<TlsFiles> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let tls = |e: rcgen::Error| TestkitError::Tls(e.to_string());
    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pgpulse-testkit CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(tls)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(tls)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = params.signed_by(&server_key, &issuer).map_err(tls)?;
    Ok(TlsFiles {
        ca_cert: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn conf_has_required_settings_and_extra_last() {
        let opts = PgOptions {
            ssl: true,
            extra_conf: vec![("max_connections".into(), "50".into())],
            hba_extra: vec![],
        };
        let conf = conf_text(Path::new("/tmp/x"), &opts);
        for needle in [
            "shared_preload_libraries = 'pg_stat_statements'",
            "wal_level = 'logical'",
            "fsync = 'off'",
            "unix_socket_directories = '/tmp/x'",
            "ssl = on",
        ] {
            assert!(conf.contains(needle), "missing {needle}:\n{conf}");
        }
        let default = conf.find("max_connections = '300'").unwrap();
        let extra = conf.find("max_connections = '50'").unwrap();
        assert!(extra > default, "caller settings must come last to win");
    }

    #[test]
    fn conf_values_are_quoted() {
        assert_eq!(conf_quote("it's"), "'it''s'");
    }

    #[test]
    fn hba_extra_lines_come_before_defaults() {
        let opts = PgOptions {
            hba_extra: vec!["host all bob 127.0.0.1/32 reject".into()],
            ..PgOptions::default()
        };
        let hba = hba_text(&opts);
        assert!(hba.find("bob").unwrap() < hba.find("scram-sha-256").unwrap());
    }

    #[test]
    fn tls_files_are_pem() {
        let tls = generate_tls().unwrap();
        assert!(tls.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.server_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(tls.ca_cert, tls.server_cert);
        assert!(tls.server_key.contains("PRIVATE KEY"));
    }

    #[test]
    fn random_hex_is_random() {
        let (a, b) = (random_hex().unwrap(), random_hex().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
