//! A throwaway certificate authority for TLS tests: a CA and one certificate for 127.0.0.1 and
//! localhost that every node of a test cluster shares, written as PEM files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// PEM files of a test CA and a node certificate it signed.
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub node_cert: PathBuf,
    pub node_key: PathBuf,
}

impl TestPki {
    /// Generates the CA and the node certificate into `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<TestPki> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Link Loom test CA");
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut node_params = CertificateParams::new(vec!["localhost".to_string()])?;
        node_params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        node_params.distinguished_name.push(DnType::CommonName, "loom-node");
        let node_key = KeyPair::generate()?;
        let node_cert = node_params.signed_by(&node_key, &issuer)?;

        let pki = TestPki {
            ca_cert: dir.join("ca.pem"),
            node_cert: dir.join("node.pem"),
            node_key: dir.join("node-key.pem"),
        };
        std::fs::write(&pki.ca_cert, ca_cert.pem()).context("writing the CA")?;
        std::fs::write(&pki.node_cert, node_cert.pem()).context("writing the node certificate")?;
        std::fs::write(&pki.node_key, node_key.serialize_pem()).context("writing the node key")?;
        Ok(pki)
    }
}
