//! The activation request a volume client sends, built in one place for the commands and
//! tests that send one for a catalog product.

use uuid::Uuid;

use crate::catalog::Product;
use crate::wire::{FileTime, RequestBase, Version};

/// The request of a volume client of `product`: protocol `version`, CMID `cmid`, stamped
/// `time`, named `machine_name`; a physical machine, licence status 2, a 43,200-minute
/// (30-day) binding expiration, no previous CMID, and the product's N policy as the required
/// client count.
pub fn volume_request(
    product: &Product,
    version: u16,
    cmid: Uuid,
    time: FileTime,
    machine_name: &str,
) -> RequestBase {
    RequestBase {
        version: Version::new(version),
        is_client_vm: 0,
        license_status: 2,
        binding_expiration: 43_200,
        application_id: product.app_id,
        sku_id: product.sku_id,
        kms_counted_id: product.kms_id,
        client_machine_id: cmid,
        required_client_count: product.n_policy,
        request_time: time,
        previous_client_machine_id: Uuid::nil(),
        machine_name: machine_name.to_owned(),
    }
}
