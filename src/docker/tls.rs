//! The client side of an engine reached over TLS, as the docker CLI reads
//! it: `DOCKER_TLS_VERIFY` set, `ca.pem`, `cert.pem` and `key.pem` in
//! `DOCKER_CERT_PATH` (default `~/.docker`). bollard reads the same for the
//! API calls; this is the same setup for relctl's own `/build` connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why the engine's TLS client setup cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {file}")]
    Read {
        file: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{file} holds no certificate")]
    Empty { file: String },
    #[error("the TLS client setup was refused")]
    Config(#[source] tokio_rustls::rustls::Error),
    #[error("`{host}` is not a host name or an IP address for TLS")]
    ServerName { host: String },
}

/// `DOCKER_CERT_PATH`, else `~/.docker`.
pub fn cert_path() -> PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_default()
}

/// A client that trusts only `ca.pem` and presents `cert.pem` / `key.pem`, as `docker --tlsverify` does.
pub fn client_config(dir: &Path) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let file = |name: &str| dir.join(name);
    let read_err = |name: &str| {
        let file = file(name).display().to_string();
        move |source| TlsSetupError::Read { file, source }
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file("ca.pem")).map_err(read_err("ca.pem"))? {
        roots.add(cert.map_err(read_err("ca.pem"))?).map_err(TlsSetupError::Config)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::Empty { file: file("ca.pem").display().to_string() });
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file("cert.pem"))
        .map_err(read_err("cert.pem"))?
        .collect::<Result<_, _>>()
        .map_err(read_err("cert.pem"))?;
    let key = PrivateKeyDer::from_pem_file(file("key.pem")).map_err(read_err("key.pem"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(TlsSetupError::Config)?;
    Ok(Arc::new(config))
}

/// The name the engine's certificate must carry for `addr` (`host:port`).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsSetupError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| TlsSetupError::ServerName { host: host.to_string() })
}
