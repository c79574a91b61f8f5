//! The instance identity document: JSON read only after its bytes verified.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AwsIidError;

/// An EC2 instance identity document (the JSON AWS signs), as typed fields.
///
/// Members AWS adds later are ignored; the ones below are read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstanceIdentityDocument {
    /// The AWS account that owns the instance (12 digits).
    pub account_id: String,
    /// The region, e.g. `us-west-2`.
    pub region: String,
    /// The availability zone, e.g. `us-west-2a`.
    pub availability_zone: String,
    /// The instance id, e.g. `i-0a30e04d85e6f8793`.
    pub instance_id: String,
    /// The AMI the instance was launched from.
    pub image_id: String,
    /// The instance type, e.g. `t2.nano`.
    pub instance_type: String,
    /// The instance's launch time, RFC 3339, as AWS wrote it.
    pub pending_time: String,
    /// CPU architecture, e.g. `x86_64`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// The primary private IPv4 address.
    #[serde(default)]
    pub private_ip: Option<String>,
    /// The document format version.
    #[serde(default)]
    pub version: Option<String>,
    /// Kernel id (paravirtual instances).
    #[serde(default)]
    pub kernel_id: Option<String>,
    /// RAM disk id (paravirtual instances).
    #[serde(default)]
    pub ramdisk_id: Option<String>,
    /// Billing product codes.
    #[serde(default)]
    pub billing_products: Option<Vec<String>>,
    /// AWS Marketplace product codes.
    #[serde(default)]
    pub marketplace_product_codes: Option<Vec<String>>,
    /// DevPay product codes.
    #[serde(default)]
    pub devpay_product_codes: Option<Vec<String>>,
    #[serde(skip)]
    pending_time_unix: i64,
}

impl InstanceIdentityDocument {
    /// Parses document bytes. Callers verify the bytes first.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, AwsIidError> {
        let mut doc: Self =
            serde_json::from_slice(bytes).map_err(|e| AwsIidError::Document(e.to_string()))?;
        if doc.account_id.len() != 12 || !doc.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AwsIidError::Document(format!(
                "account id `{}` is not 12 digits",
                doc.account_id
            )));
        }
        let pending = OffsetDateTime::parse(&doc.pending_time, &Rfc3339).map_err(|e| {
            AwsIidError::Document(format!("pending time `{}`: {e}", doc.pending_time))
        })?;
        doc.pending_time_unix = pending.unix_timestamp();
        Ok(doc)
    }

    /// `pendingTime` as unix seconds.
    pub fn pending_time_unix(&self) -> i64 {
        self.pending_time_unix
    }
}
