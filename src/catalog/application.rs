//! The application a product is counted under: a KMS host keeps one client count per
//! application ID (spec 10.2, 14.1). The one enum for it, used by the host's client tables,
//! the recorder's threshold trackers, scenario gates and the report.
//!
//! Names, everywhere (files, logs, JSON): `windows`, `office-2010`, `office-2013+`. Reading
//! also accepts `office-2013` (scenario files and older host state files wrote it) and
//! `office2010` / `office2013` (older host state files).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Product, app_id};

/// The application whose clients a host counts together.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Application {
    /// Windows client and server editions (`55c92734-…`).
    #[default]
    #[serde(rename = "windows")]
    Windows,
    /// Office 2010 (`59a52881-…`).
    #[serde(rename = "office-2010", alias = "office2010")]
    Office2010,
    /// Office 2013 and later (`0ff1ce15-…`).
    #[serde(rename = "office-2013+", alias = "office-2013", alias = "office2013")]
    Office2013,
}

impl Application {
    /// All applications, in table order.
    pub const ALL: [Self; 3] = [Self::Windows, Self::Office2010, Self::Office2013];

    /// The application with this `ApplicationID`, if it is one of the three.
    pub fn from_app_id(id: Uuid) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.app_id() == id)
    }

    /// The application a product is counted under. An unknown application ID counts as
    /// Windows, the list vlmcsd uses for anything it does not know (spec 10.2).
    pub fn of(product: &Product) -> Self {
        Self::from_app_id(product.app_id).unwrap_or(Self::Windows)
    }

    /// The `ApplicationID` GUID (spec 14.1).
    pub fn app_id(self) -> Uuid {
        match self {
            Self::Windows => app_id::WINDOWS,
            Self::Office2010 => app_id::OFFICE_2010,
            Self::Office2013 => app_id::OFFICE_2013,
        }
    }

    /// The name used in files, logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Windows => "windows",
            Self::Office2010 => "office-2010",
            Self::Office2013 => "office-2013+",
        }
    }

    /// The N policy of this application's most demanding clients: 25 for Windows (client
    /// editions), 5 for Office (spec 10.2). Used for a charged start.
    pub fn largest_policy(self) -> u32 {
        match self {
            Self::Windows => 25,
            Self::Office2010 | Self::Office2013 => 5,
        }
    }

    /// Index into per-application arrays ([`Self::ALL`] order).
    pub fn index(self) -> usize {
        match self {
            Self::Windows => 0,
            Self::Office2010 => 1,
            Self::Office2013 => 2,
        }
    }
}

impl fmt::Display for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::products;

    #[test]
    fn ids_indices_and_products_agree() {
        for a in Application::ALL {
            assert_eq!(Application::from_app_id(a.app_id()), Some(a));
            assert_eq!(Application::ALL[a.index()], a);
        }
        assert_eq!(Application::from_app_id(Uuid::nil()), None);
        let by_name = |n: &str| products().iter().find(|p| p.name == n).map(Application::of);
        assert_eq!(
            by_name("Windows Server 2019 Datacenter"),
            Some(Application::Windows)
        );
        assert_eq!(
            by_name("Office Professional Plus 2010"),
            Some(Application::Office2010)
        );
        assert_eq!(
            by_name("Office LTSC Professional Plus 2021"),
            Some(Application::Office2013)
        );
        let mut odd = products()[0].clone();
        odd.app_id = Uuid::nil();
        assert_eq!(Application::of(&odd), Application::Windows);
    }

    #[test]
    fn one_name_written_old_spellings_read() {
        let json = |a: Application| serde_json::to_string(&a).unwrap();
        assert_eq!(json(Application::Office2013), "\"office-2013+\"");
        assert_eq!(Application::Office2013.to_string(), "office-2013+");
        for a in Application::ALL {
            assert_eq!(json(a), format!("\"{}\"", a.as_str()));
        }
        let read = |s: &str| serde_json::from_str::<Application>(s).unwrap();
        for (text, a) in [
            ("\"office-2013+\"", Application::Office2013),
            ("\"office-2013\"", Application::Office2013),
            ("\"office2013\"", Application::Office2013),
            ("\"office2010\"", Application::Office2010),
            ("\"office-2010\"", Application::Office2010),
            ("\"windows\"", Application::Windows),
        ] {
            assert_eq!(read(text), a, "{text}");
        }
        assert!(serde_json::from_str::<Application>("\"office\"").is_err());
    }
}
