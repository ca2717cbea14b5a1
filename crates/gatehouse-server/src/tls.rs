//! TLS for the internal TLS listener (rustls with ring): the operator's certificate and key, or a self-signed
//! certificate made once and kept in Gatehouse's data folder, so that it stays the same across restarts and
//! clients can pin it (`gatehouse guard` does).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where a certificate and its key are.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertificateFiles {
    /// The self-signed pair Gatehouse keeps in `folder`.
    pub fn generated_in(folder: &Path) -> Self {
        CertificateFiles { cert: folder.join("internal-tls.crt"), key: folder.join("internal-tls.key") }
    }
}

/// Makes a self-signed certificate for `names` (host names and IP addresses) at `files`, unless both files
/// exist already; returns whether it made one. The key file is created readable by its owner only.
pub fn ensure_self_signed(files: &CertificateFiles, names: &[String]) -> Result<bool, Error> {
    if files.cert.exists() && files.key.exists() {
        return Ok(false);
    }
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|err| Error::Internal(format!("cannot make a self-signed certificate: {err}")))?;
    let write = |path: &Path, contents: &str, mode: u32| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut file| file.write_all(contents.as_bytes()))
            .map_err(|err| Error::Unavailable(format!("cannot write {}: {err}", path.display())))
    };
    write(&files.key, &certified.signing_key.serialize_pem(), 0o600)?;
    write(&files.cert, &certified.cert.pem(), 0o644)?;
    Ok(true)
}

/// The certificates of a PEM file.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| Error::invalid(format!("cannot read certificates from {}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// The server configuration for `files`.
pub fn server_config(files: &CertificateFiles) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs = load_certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|err| Error::invalid(format!("cannot read a private key from {}: {err}", files.key.display())))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| Error::invalid(format!("the certificate and key do not fit together: {err}")))?;
    Ok(Arc::new(config))
}

/// A client configuration that trusts exactly the certificates in `cert` (the internal listener's own).
pub fn client_config_trusting(cert: &Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in load_certificates(cert)? {
        roots.add(certificate).map_err(|err| Error::invalid(format!("{}: {err}", cert.display())))?;
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_loads() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles::generated_in(dir.path());
        assert!(ensure_self_signed(&files, &["127.0.0.1".into(), "localhost".into()]).unwrap());
        let first = std::fs::read(&files.cert).unwrap();
        assert!(!ensure_self_signed(&files, &["127.0.0.1".into()]).unwrap(), "kept, not remade");
        assert_eq!(std::fs::read(&files.cert).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
        server_config(&files).unwrap();
        client_config_trusting(&files.cert).unwrap();
    }
}
