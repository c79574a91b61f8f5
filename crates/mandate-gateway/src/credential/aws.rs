//! `aws-sigv4`: requests signed with stored AWS keys by the official signer
//! (`aws-sigv4`). The payload's SHA-256 is part of the canonical request,
//! so the body must be buffered. The signing time comes from the caller
//! (the engine's clock), so a known-answer test can fix it.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::header::{HeaderName, HeaderValue};
use mandate_jose::{ExposeSecret, SecretString};

use super::{CredentialError, Injected, Outbound};

/// Headers the signer may set; inbound copies are removed by the proxy.
pub(crate) const INJECTED_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The provider: the key pair (and session token) and where it signs for.
pub struct AwsSigV4 {
    name: String,
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    region: String,
    service: String,
}

impl AwsSigV4 {
    /// `value` is the secret access key, optionally followed by a newline
    /// and a session token.
    pub(super) fn new(
        name: String,
        access_key_id: String,
        value: &SecretString,
        region: String,
        service: String,
    ) -> Self {
        let v = value.expose_secret();
        let (secret, token) = match v.split_once('\n') {
            Some((s, t)) => (s.trim(), Some(t.trim())),
            None => (v.trim(), None),
        };
        Self {
            name,
            access_key_id,
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: token
                .filter(|t| !t.is_empty())
                .map(|t| SecretString::from(t.to_owned())),
            region,
            service,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("access_key_id", self.access_key_id.clone()),
            ("region", self.region.clone()),
            ("service", self.service.clone()),
            ("session_token", self.session_token.is_some().to_string()),
        ]
    }

    fn settings(&self) -> SigningSettings {
        let mut s = SigningSettings::default();
        if self.service == "s3" {
            // S3 wants the payload hash in a header, and paths as sent.
            s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            s.percent_encoding_mode = PercentEncodingMode::Single;
            s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        s
    }

    /// Signs `out` as of `time`: adds `Authorization`, `X-Amz-Date` and,
    /// when there is one, `X-Amz-Security-Token`.
    pub fn sign_at(
        &self,
        out: Outbound<'_>,
        time: SystemTime,
    ) -> Result<Injected, CredentialError> {
        let fail = |m: &str| CredentialError::Sign(m.to_owned());
        let body = out
            .body
            .ok_or_else(|| fail("the request body was not buffered for signing"))?;
        let identity = Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            self.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "mandate",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(self.settings())
            .build()
            .map_err(|e| fail(&e.to_string()))?
            .into();
        let mut headers = Vec::with_capacity(out.headers.len());
        for (k, v) in out.headers.iter() {
            let v = v
                .to_str()
                .map_err(|_| fail(&format!("header `{k}` is not visible ascii")))?;
            headers.push((k.as_str(), v));
        }
        let request = SignableRequest::new(
            out.method.as_str(),
            out.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail(&e.to_string()))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| fail(&e.to_string()))?
            .into_parts();
        let (set, _query) = instructions.into_parts();
        for h in set {
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|_| fail("the signer produced an invalid header"))?;
            value.set_sensitive(h.sensitive() || h.name() == "authorization");
            let name = HeaderName::from_bytes(h.name().as_bytes())
                .map_err(|_| fail("the signer produced an invalid header"))?;
            out.headers.insert(name, value);
        }
        Ok(Injected {
            expires_at: None,
            scrub: self.session_token.iter().cloned().collect(),
        })
    }
}
