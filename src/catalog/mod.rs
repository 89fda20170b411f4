//! `catalog`: the products (spec 14.1, `data/products.csv`) and the HRESULT codes
//! (`data/hresults.csv`), embedded in the binary so kmsload runs without any data files.
//!
//! - [`products`]: every row of `data/products.csv`; [`lookup`] finds one by name, GVLK or SKU
//!   ID the way admins write them, and resolves family names.
//! - [`Application`]: the three applications a host counts clients under, with the one
//!   mapping from application ID and the one set of names.
//! - [`hresult`]: every row of `data/hresults.csv`, with a parser for codes as users copy them.
//!
//! The CSV files are parsed once, on first use. They are part of the build: a malformed row
//! is a bug in the shipped data and is caught by this module's tests, not at a user's run.

use std::sync::OnceLock;

use serde::Deserialize;
use uuid::Uuid;

mod application;
pub mod hresult;
pub mod lookup;

pub use application::Application;

const PRODUCTS_CSV: &str = include_str!("../../data/products.csv");

/// Product family: decides the N policy and which application the host counts it under.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Windows client editions (N = 25).
    WindowsClient,
    /// Windows Server editions and Enterprise multi-session (N = 5).
    WindowsServer,
    /// Office 2010 and later (N = 5).
    Office,
}

impl Family {
    /// Every family, in the CSV's order.
    pub const ALL: [Self; 3] = [Self::WindowsClient, Self::WindowsServer, Self::Office];

    /// The name used in the CSV, on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WindowsClient => "windows-client",
            Self::WindowsServer => "windows-server",
            Self::Office => "office",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Application IDs (spec 14.1): the host counts clients per application.
pub mod app_id {
    use uuid::{Uuid, uuid};
    /// Windows.
    pub const WINDOWS: Uuid = uuid!("55c92734-d682-4d71-983e-d6ec3f16059f");
    /// Office 2010.
    pub const OFFICE_2010: Uuid = uuid!("59a52881-a989-479d-af46-f275c6370663");
    /// Office 2013 and later.
    pub const OFFICE_2013: Uuid = uuid!("0ff1ce15-a989-479d-af46-f275c6370663");
}

/// One row of `data/products.csv`: one edition (SKU).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Product {
    /// Edition name, e.g. "Windows 10/11 Pro".
    pub name: String,
    /// Product family.
    pub family: Family,
    /// `ApplicationID` the client sends.
    pub app_id: Uuid,
    /// `SkuID` the client sends.
    pub sku_id: Uuid,
    /// `KmsCountedID` the client sends.
    pub kms_id: Uuid,
    /// Name of the KMS counted ID (product group), e.g. "Windows 10 2019 (Volume)".
    pub kms_id_name: String,
    /// `RequiredClientCount` the client sends: 25 or 5.
    pub n_policy: u32,
    /// Protocol major version the client uses: 4, 5 or 6.
    pub protocol: u16,
    /// Public generic volume licence key, if one is known.
    #[serde(deserialize_with = "empty_as_none")]
    pub gvlk: Option<String>,
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// All products, in the CSV's order.
pub fn products() -> &'static [Product] {
    static PRODUCTS: OnceLock<Vec<Product>> = OnceLock::new();
    PRODUCTS.get_or_init(|| {
        csv::Reader::from_reader(PRODUCTS_CSV.as_bytes())
            .deserialize()
            .collect::<Result<Vec<Product>, _>>()
            // The CSV is compiled in and checked by `tests::every_product_row_parses`.
            .expect("embedded products.csv is valid")
    })
}

/// Where `product`, a row of [`products`], stands in it (0 for a product that is not a
/// catalog row, which plans and scenarios never hold).
pub fn index_of(product: &Product) -> usize {
    products()
        .iter()
        .position(|p| std::ptr::eq(p, product))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_product_row_parses() {
        let all = products();
        assert_eq!(all.len(), 262);
        let count = |f| all.iter().filter(|p| p.family == f).count();
        assert_eq!(count(Family::WindowsClient), 89);
        assert_eq!(count(Family::WindowsServer), 55);
        assert_eq!(count(Family::Office), 118);
        for p in all {
            assert!(matches!(p.protocol, 4..=6), "{}", p.name);
            assert!(matches!(p.n_policy, 5 | 25), "{}", p.name);
            assert!(
                [app_id::WINDOWS, app_id::OFFICE_2010, app_id::OFFICE_2013].contains(&p.app_id),
                "{}",
                p.name
            );
        }
    }
}
