//! Fixtures for tests that check our DER against the real `openssl` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::path::Path;
use std::process::Command;

use time::{Duration, OffsetDateTime};
use vsc_core::{KeyAlgorithm, KeyPurpose};

use crate::ca::IssuedCertificate;
use crate::{CaBundle, CardSubject, GeneratedKey, IssuingCa};

pub const ORG: &str = "Test Org";

/// The real time: openssl checks validity against its own clock.
#[allow(clippy::disallowed_methods)]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn ca() -> IssuingCa {
    let b = CaBundle::create(ORG, now()).unwrap();
    IssuingCa::new(ORG, b.issuing_cert_der, b.issuing_key, b.root_cert_der)
}

pub fn subject(serial: &str) -> CardSubject {
    CardSubject {
        forename: "Ada".into(),
        surname: "Lovelace".into(),
        subject_cn: "Ada Lovelace".into(),
        email: "ada@example.org".into(),
        organisation: ORG.into(),
        card_serial: serial.into(),
    }
}

pub fn card(ca: &IssuingCa, key: &GeneratedKey, purpose: KeyPurpose) -> IssuedCertificate {
    let now = now();
    ca.issue(&subject("1000000000000001"), key, purpose, now, now + Duration::days(365)).unwrap()
}

pub fn p256() -> GeneratedKey {
    GeneratedKey::generate(KeyAlgorithm::P256).unwrap()
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), data).unwrap();
}

/// Run openssl in `dir`: (success, stdout, stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
