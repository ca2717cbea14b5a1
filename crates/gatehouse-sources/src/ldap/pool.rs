//! LDAP connections: the TLS configuration, failover over the configured hosts, and a small pool of connections
//! bound as the service account (user binds always get a fresh connection).

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::Error;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};

use super::{LdapDirectory, LdapSecurity, LdapSettings, unavailable};

/// Most idle service connections kept.
const POOL_SIZE: usize = 4;

/// The TLS client configuration for a CA file, when one is configured for a TLS transport.
pub(super) fn tls_config(settings: &LdapSettings) -> Result<Option<Arc<rustls::ClientConfig>>, Error> {
    let (Some(path), LdapSecurity::StartTls | LdapSecurity::Ldaps) = (&settings.ca_file, settings.security) else {
        return Ok(None);
    };
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
        roots.add(cert).map_err(|err| Error::invalid(format!("LDAP CA file {}: {err}", path.display())))?;
    }
    Ok(Some(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())))
}

impl LdapDirectory {
    pub(super) fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_seconds.max(1))
    }

    pub(super) fn url(&self, host: &str) -> String {
        let (scheme, default_port) = match self.settings.security {
            LdapSecurity::Ldaps => ("ldaps", 636),
            _ => ("ldap", 389),
        };
        format!("{scheme}://{host}:{}", self.settings.port.unwrap_or(default_port))
    }

    /// Opens a connection to the first host that answers.
    pub(super) async fn connect(&self) -> Result<Ldap, Error> {
        let mut failures = Vec::new();
        for host in &self.settings.hosts {
            let mut conn_settings = LdapConnSettings::new()
                .set_conn_timeout(self.timeout())
                .set_starttls(self.settings.security == LdapSecurity::StartTls)
                .set_no_tls_verify(self.settings.ignore_tls_errors);
            if let Some(config) = &self.tls {
                conn_settings = conn_settings.set_config(config.clone());
            }
            match LdapConnAsync::with_settings(conn_settings, &self.url(host)).await {
                Ok((conn, ldap)) => {
                    ldap3::drive!(conn);
                    return Ok(ldap);
                }
                Err(err) => {
                    tracing::warn!(host, "LDAP server unreachable: {err}");
                    failures.push(format!("{host}: {err}"));
                }
            }
        }
        Err(unavailable(format!("no server answered ({})", failures.join("; "))))
    }

    /// A service connection from the pool, or a new one bound as the service account.
    pub(super) async fn service_connection(&self) -> Result<Ldap, Error> {
        if let Some(ldap) = self.idle.lock().await.pop() {
            return Ok(ldap);
        }
        let mut ldap = self.connect().await?;
        let bound = ldap
            .with_timeout(self.timeout())
            .simple_bind(&self.settings.bind_dn, self.bind_password.expose())
            .await
            .map_err(unavailable)?;
        if bound.rc != 0 {
            return Err(unavailable(format!("the service account cannot bind: {}", bound)));
        }
        Ok(ldap)
    }

    pub(super) async fn give_back(&self, ldap: Ldap) {
        let mut idle = self.idle.lock().await;
        if idle.len() < POOL_SIZE {
            idle.push(ldap);
        }
    }
}
