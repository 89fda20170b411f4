//! Host keys (CSVLKs) and the KMS counted IDs each one accepts (spec 10.7, 8.2).
//!
//! A Windows KMS host has one host key (CSVLK) per application family installed: a Windows key
//! and, optionally, Office keys from the Office volume licence packs. Each key belongs to an ePID
//! group with a key-id range (spec 10.5) and covers a set of KMS counted IDs; a request for a
//! KMS ID no installed key covers is refused with 0xC004F042.
//!
//! This module holds three tables:
//!
//! - [`kms_ids`]: every KMS counted ID of `data/products.csv`, classified by product line,
//!   generation and channel (volume / retail / preview). A unit test checks that the table and
//!   the CSV name exactly the same IDs with the same names and application IDs, so the two can
//!   not drift apart.
//! - [`csvlks`]: the host keys kmsload knows, with ePID group, key-id range, release date,
//!   default host build and coverage (which lines, up to which generation).
//! - [`host_keys`]: the names a user gives to `--host-key`: one CSVLK each, plus `all`, which
//!   installs the newest Windows, Windows China Government, Office 2013+ and Office 2010 keys
//!   side by side, like a Windows host with every licence pack.
//!
//! # Coverage (spec 10.7; the sources' lists are partial, so this is a model)
//!
//! ```text
//! generation  Windows client              Windows server                     Office 2013+ app
//!     1       Vista                       2008 A/B/C                         2013
//!     2       7                           2008 R2 A/B/C                      2016
//!     3       8 (Volume)                  2012                               2019
//!     4       8.1 (Volume)                2012 R2                            2021
//!     5       10/11 2015, 10 2016 (LTSB)  2016                               2024
//!     6       10 2019 (LTSC 2019/2021)    2019, 10 ServerRdsh (multi-session)
//!     7                                   2022
//!     8                                   2025
//! not volume: 8 (Retail) g3, 8.1 (Retail) g4, 10/11 (Retail) g5, Windows Preview g5,
//!             Server Next (Preview) g9, Office 2013 (Pre-release) g1
//! own lines:  Windows 10/11 China Government; Office 2010 (its own application ID)
//! ```
//!
//! - A Windows Server key of generation g covers Windows client and server volume KMS IDs of
//!   generation ≤ g. Restricted to the catalog's KMS IDs, this reproduces py-kms' activation
//!   lists of the Server 2008 C, 2008 R2 C, 2012, 2012 R2, 2016 and 2019 CSVLKs, except that
//!   the Server 2019 key also covers "Windows 10 ServerRdsh" (Enterprise multi-session,
//!   introduced with 1809), which py-kms lists under no key: our choice. py-kms has no lists
//!   for Server 2022/2025; the generation rule extends to them.
//! - The "Windows 10/11" client key (the Windows 10 2019 CSVLK) covers client volume IDs up to
//!   generation 6 and no server IDs (py-kms' list).
//! - An Office 2013+ key covers Office 2013+ volume KMS IDs of its version and older (spec 10.7
//!   "their version and older"; py-kms lists only the key's own version). It stops at the
//!   application boundary: Office 2010 has its own application ID, its own licence pack and
//!   its own ePID group (96), so only the Office 2010 key covers it.
//! - China Government editions have their own CSVLK and ePID group (3858); no Windows Server key
//!   covers them (py-kms, vlmcsd).
//! - Retail, preview and pre-release KMS IDs are never activated by genuine hosts (spec 10.7),
//!   so every key — `all` included — refuses them, unless the host runs with
//!   [`accept_retail`](super::HostConfig::accept_retail), which makes every key accept the
//!   non-volume IDs of its lines regardless of generation (like Microsoft's lab keys).
//! - KMS IDs that are not in the catalog are refused by every key, `all` included: no CSVLK a
//!   real host could hold covers them.
//!
//! # Sources of the ePID numbers
//!
//! [`Source::Spec`]: spec 10.7 (py-kms `CsvlkItems`). [`Source::PyKms`]: the same py-kms
//! database (`py-kms/KmsDataBase.xml` of Py-KMS-Organization/py-kms, commit 6ffb474c), for keys
//! the spec does not list. [`Source::Chosen`]: no source had the key; the values are ours and
//! provisional (Office LTSC 2024, like its KMS ID, spec 14.2 item 3). Release dates are the
//! products' general-availability dates; they only bound the generated activation date.

use std::fmt;

use uuid::{Uuid, uuid};

pub use crate::catalog::Application;

/// Product line of a KMS counted ID: which kind of host key can cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Line {
    /// Windows client editions (N = 25).
    WindowsClient,
    /// Windows Server editions and Enterprise multi-session (N = 5).
    WindowsServer,
    /// Windows 10/11 China Government editions (own CSVLK, ePID group 3858).
    WindowsChinaGovernment,
    /// Office 2010 (own application ID).
    Office2010,
    /// Office 2013 and later.
    Office,
}

/// Licence channel of a KMS counted ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Volume licensing: what KMS hosts activate.
    Volume,
    /// Retail product group; genuine hosts refuse it (spec 10.7).
    Retail,
    /// Preview / pre-release product group; genuine hosts refuse it (spec 10.7).
    Preview,
}

impl Channel {
    /// Lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Retail => "retail",
            Self::Preview => "preview",
        }
    }
}

/// One KMS counted ID (product group) with its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsIdInfo {
    /// The `KmsCountedID`.
    pub id: Uuid,
    /// Its name, exactly as `kms_id_name` in `data/products.csv`.
    pub name: &'static str,
    /// The application its clients send.
    pub application: Application,
    /// Product line.
    pub line: Line,
    /// Generation within the line (see the module table).
    pub generation: u8,
    /// Volume, retail or preview.
    pub channel: Channel,
}

const fn kms(
    id: Uuid,
    name: &'static str,
    application: Application,
    line: Line,
    generation: u8,
    channel: Channel,
) -> KmsIdInfo {
    KmsIdInfo {
        id,
        name,
        application,
        line,
        generation,
        channel,
    }
}

use data::KMS_IDS;

/// The KMS ID table, in a module of its own so its short names stay local.
mod data {
    use super::Application::{Office2010 as APP_O10, Office2013 as APP_O13, Windows as APP_WIN};
    use super::Channel::{Preview, Retail, Volume};
    use super::Line::{
        Office, Office2010 as O2010, WindowsChinaGovernment, WindowsClient, WindowsServer,
    };
    use super::{KmsIdInfo, kms, uuid};

    #[rustfmt::skip]
    pub(super) static KMS_IDS: [KmsIdInfo; 33] = [
        // Windows client
        kms(uuid!("212a64dc-43b1-4d3d-a30c-2fc69d2095c6"), "Windows Vista", APP_WIN, WindowsClient, 1, Volume),
        kms(uuid!("7fde5219-fbfa-484a-82c9-34d1ad53e856"), "Windows 7", APP_WIN, WindowsClient, 2, Volume),
        kms(uuid!("3c40b358-5948-45af-923b-53d21fcc7e79"), "Windows 8 (Volume)", APP_WIN, WindowsClient, 3, Volume),
        kms(uuid!("bbb97b3b-8ca4-4a28-9717-89fabd42c4ac"), "Windows 8 (Retail)", APP_WIN, WindowsClient, 3, Retail),
        kms(uuid!("cb8fc780-2c05-495a-9710-85afffc904d7"), "Windows 8.1 (Volume)", APP_WIN, WindowsClient, 4, Volume),
        kms(uuid!("6d646890-3606-461a-86ab-598bb84ace82"), "Windows 8.1 (Retail)", APP_WIN, WindowsClient, 4, Retail),
        kms(uuid!("58e2134f-8e11-4d17-9cb2-91069c151148"), "Windows 10/11 2015 (Volume)", APP_WIN, WindowsClient, 5, Volume),
        kms(uuid!("969fe3c0-a3ec-491a-9f25-423605deb365"), "Windows 10 2016 (Volume)", APP_WIN, WindowsClient, 5, Volume),
        kms(uuid!("e1c51358-fe3e-4203-a4a2-3b6b20c9734e"), "Windows 10/11 (Retail)", APP_WIN, WindowsClient, 5, Retail),
        kms(uuid!("5f94a0bb-d5a0-4081-a685-5819418b2fe0"), "Windows Preview", APP_WIN, WindowsClient, 5, Preview),
        kms(uuid!("11b15659-e603-4cf1-9c1f-f0ec01b81888"), "Windows 10 2019 (Volume)", APP_WIN, WindowsClient, 6, Volume),
        kms(uuid!("7ba0bf23-d0f5-4072-91d9-d55af5a481b6"), "Windows 10/11 China Government", APP_WIN, WindowsChinaGovernment, 5, Volume),
        // Windows server
        kms(uuid!("33e156e4-b76f-4a52-9f91-f641dd95ac48"), "Windows Server 2008 A (Web and HPC)", APP_WIN, WindowsServer, 1, Volume),
        kms(uuid!("8fe53387-3087-4447-8985-f75132215ac9"), "Windows Server 2008 B (Standard and Enterprise)", APP_WIN, WindowsServer, 1, Volume),
        kms(uuid!("8a21fdf3-cbc5-44eb-83f3-fe284e6680a7"), "Windows Server 2008 C (Datacenter and Itanium)", APP_WIN, WindowsServer, 1, Volume),
        kms(uuid!("0fc6ccaf-ff0e-4fae-9d08-4370785bf7ed"), "Windows Server 2008 R2 A (Web and HPC)", APP_WIN, WindowsServer, 2, Volume),
        kms(uuid!("ca87f5b6-cd46-40c0-b06d-8ecd57a4373f"), "Windows Server 2008 R2 B (Standard and Enterprise)", APP_WIN, WindowsServer, 2, Volume),
        kms(uuid!("b2ca2689-a9a8-42d7-938d-cf8e9f201958"), "Windows Server 2008 R2 C (Datacenter and Itanium)", APP_WIN, WindowsServer, 2, Volume),
        kms(uuid!("8665cb71-468c-4aa3-a337-cb9bc9d5eaac"), "Windows Server 2012", APP_WIN, WindowsServer, 3, Volume),
        kms(uuid!("8456efd3-0c04-4089-8740-5b7238535a65"), "Windows Server 2012 R2", APP_WIN, WindowsServer, 4, Volume),
        kms(uuid!("6e9fc069-257d-4bc4-b4a7-750514d32743"), "Windows Server 2016", APP_WIN, WindowsServer, 5, Volume),
        kms(uuid!("8449b1fb-f0ea-497a-99ab-66ca96e9a0f5"), "Windows Server 2019", APP_WIN, WindowsServer, 6, Volume),
        kms(uuid!("cbdcb1ba-e093-4c81-a463-10775291fdf9"), "Windows 10 ServerRdsh (Volume)", APP_WIN, WindowsServer, 6, Volume),
        kms(uuid!("b74263e4-0f92-46c6-bcf8-c11d5efe2959"), "Windows Server 2022", APP_WIN, WindowsServer, 7, Volume),
        kms(uuid!("4b83307d-7788-50ff-8d1f-1861915bdb9d"), "Windows Server 2025", APP_WIN, WindowsServer, 8, Volume),
        kms(uuid!("6d5f5270-31ac-433e-b90a-39892923c657"), "Windows Server Next (Preview)", APP_WIN, WindowsServer, 9, Preview),
        // Office
        kms(uuid!("e85af946-2e25-47b7-83e1-bebcebeac611"), "Office 2010", APP_O10, O2010, 1, Volume),
        kms(uuid!("e6a6f1bf-9d40-40c3-aa9f-c77ba21578c0"), "Office 2013", APP_O13, Office, 1, Volume),
        kms(uuid!("aa4c7968-b9da-4680-92b6-acb25e2f866c"), "Office 2013 (Pre-release)", APP_O13, Office, 1, Preview),
        kms(uuid!("85b5f61b-320b-4be3-814a-b76b2bfafc82"), "Office 2016", APP_O13, Office, 2, Volume),
        kms(uuid!("617d9eb1-ef36-4f82-86e0-a65ae07b96c6"), "Office 2019", APP_O13, Office, 3, Volume),
        kms(uuid!("86d50b16-4808-41af-b83b-b338274318b2"), "Office 2021", APP_O13, Office, 4, Volume),
        kms(uuid!("1b4db7eb-4057-5ddf-91e0-36dec72071f5"), "Office 2024", APP_O13, Office, 5, Volume),
    ];
}

/// Every KMS counted ID of the catalog, classified.
pub fn kms_ids() -> &'static [KmsIdInfo] {
    &KMS_IDS
}

/// The classification of one KMS counted ID, if the catalog knows it.
pub fn kms_id(id: Uuid) -> Option<&'static KmsIdInfo> {
    KMS_IDS.iter().find(|k| k.id == id)
}

/// Where a CSVLK's ePID group and key range come from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Spec 10.7.
    Spec,
    /// py-kms `KmsDataBase.xml` (the database spec 10.7 quotes).
    PyKms,
    /// Chosen by kmsload; no source had this key.
    Chosen,
}

/// A calendar date (proleptic Gregorian), used for release dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year, e.g. 2024.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
}

const fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

/// One host key (CSVLK) type.
#[derive(Debug, PartialEq, Eq)]
pub struct Csvlk {
    /// Display name, e.g. "Windows Server 2019".
    pub name: &'static str,
    /// ePID group id (spec 10.5 `GGGGG`).
    pub group_id: u32,
    /// Smallest key id of the CSVLK's range (spec 10.5 `KKK-KKKKKK`).
    pub min_key_id: u32,
    /// Largest key id of the range, inclusive.
    pub max_key_id: u32,
    /// Product lines the key covers.
    pub lines: &'static [Line],
    /// Highest generation of volume KMS IDs it covers.
    pub max_generation: u8,
    /// General availability of the product; the earliest possible activation date.
    pub released: Date,
    /// Host OS build the key is typically installed on; the default `BBBB` of the ePID.
    pub default_build: u32,
    /// Where `group_id` and the key range come from.
    pub source: Source,
}

impl Csvlk {
    /// True if this key activates `kms`. Non-volume (retail, preview) IDs of the key's lines
    /// are covered only when `accept_non_volume` is set, and then regardless of generation.
    pub fn covers(&self, kms: &KmsIdInfo, accept_non_volume: bool) -> bool {
        self.lines.contains(&kms.line)
            && match kms.channel {
                Channel::Volume => kms.generation <= self.max_generation,
                Channel::Retail | Channel::Preview => accept_non_volume,
            }
    }

    /// True if `key_id` lies in this key's range.
    pub fn contains_key_id(&self, key_id: u32) -> bool {
        (self.min_key_id..=self.max_key_id).contains(&key_id)
    }
}

const WINDOWS: &[Line] = &[Line::WindowsClient, Line::WindowsServer];

macro_rules! csvlk {
    ($ident:ident, $name:literal, $group:literal, $min:literal ..= $max:literal, $lines:expr,
     $gen:literal, $released:expr, $build:literal, $source:ident) => {
        #[doc = concat!("The \"", $name, "\" host key.")]
        pub static $ident: Csvlk = Csvlk {
            name: $name,
            group_id: $group,
            min_key_id: $min,
            max_key_id: $max,
            lines: $lines,
            max_generation: $gen,
            released: $released,
            default_build: $build,
            source: Source::$source,
        };
    };
}

#[rustfmt::skip]
csvlk!(WS2025, "Windows Server 2025", 4918, 30_000..=20_029_999, WINDOWS, 8, date(2024, 11, 1), 26100, Spec);
#[rustfmt::skip]
csvlk!(WS2022, "Windows Server 2022", 4573, 0..=20_029_999, WINDOWS, 7, date(2021, 8, 18), 20348, Spec);
#[rustfmt::skip]
csvlk!(WS2019, "Windows Server 2019", 206, 551_000_000..=570_999_999, WINDOWS, 6, date(2018, 10, 2), 17763, Spec);
#[rustfmt::skip]
csvlk!(WS2016, "Windows Server 2016", 206, 491_000_000..=530_999_999, WINDOWS, 5, date(2016, 10, 12), 14393, PyKms);
#[rustfmt::skip]
csvlk!(WS2012R2, "Windows Server 2012 R2", 206, 271_000_000..=310_999_999, WINDOWS, 4, date(2013, 10, 17), 9600, PyKms);
#[rustfmt::skip]
csvlk!(WS2012, "Windows Server 2012", 206, 152_000_000..=191_999_999, WINDOWS, 3, date(2012, 9, 4), 9200, PyKms);
#[rustfmt::skip]
csvlk!(WS2008R2, "Windows Server 2008 R2", 168, 305_000_000..=312_119_999, WINDOWS, 2, date(2009, 10, 22), 7601, PyKms);
#[rustfmt::skip]
csvlk!(WS2008, "Windows Server 2008", 152, 381_000_000..=392_999_999, WINDOWS, 1, date(2008, 2, 27), 6002, PyKms);
#[rustfmt::skip]
csvlk!(WIN10, "Windows 10/11", 206, 256_000_000..=265_999_999, &[Line::WindowsClient], 6, date(2018, 10, 2), 17763, PyKms);
#[rustfmt::skip]
csvlk!(WIN_CHINA_GOV, "Windows 10/11 China Government", 3858, 15_000_000..=999_999_999, &[Line::WindowsChinaGovernment], 9, date(2017, 5, 23), 17763, PyKms);
#[rustfmt::skip]
csvlk!(OFFICE2024, "Office LTSC 2024", 206, 686_000_000..=705_999_999, &[Line::Office], 5, date(2024, 9, 16), 26100, Chosen);
#[rustfmt::skip]
csvlk!(OFFICE2021, "Office LTSC 2021", 206, 571_000_000..=590_999_999, &[Line::Office], 4, date(2021, 9, 16), 20348, Spec);
#[rustfmt::skip]
csvlk!(OFFICE2019, "Office 2019", 206, 666_000_000..=685_999_999, &[Line::Office], 3, date(2018, 9, 24), 17763, Spec);
#[rustfmt::skip]
csvlk!(OFFICE2016, "Office 2016", 206, 437_000_000..=458_999_999, &[Line::Office], 2, date(2015, 9, 22), 14393, PyKms);
#[rustfmt::skip]
csvlk!(OFFICE2013, "Office 2013", 206, 234_000_000..=255_999_999, &[Line::Office], 1, date(2013, 1, 29), 9600, PyKms);
#[rustfmt::skip]
csvlk!(OFFICE2010, "Office 2010", 96, 199_000_000..=217_999_999, &[Line::Office2010], 1, date(2010, 6, 15), 7601, Spec);

static CSVLKS: [&Csvlk; 16] = [
    &WS2025,
    &WS2022,
    &WS2019,
    &WS2016,
    &WS2012R2,
    &WS2012,
    &WS2008R2,
    &WS2008,
    &WIN10,
    &WIN_CHINA_GOV,
    &OFFICE2024,
    &OFFICE2021,
    &OFFICE2019,
    &OFFICE2016,
    &OFFICE2013,
    &OFFICE2010,
];

/// Every CSVLK kmsload knows.
pub fn csvlks() -> &'static [&'static Csvlk] {
    &CSVLKS
}

/// A host-key configuration a user names with `--host-key`: the CSVLKs installed on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct HostKey {
    /// Canonical name, e.g. "Windows Server 2016" or "all".
    pub name: &'static str,
    /// Other accepted spellings (matched like the name).
    pub aliases: &'static [&'static str],
    /// The installed CSVLKs, first match wins; the first one also gives the default host build.
    pub csvlks: &'static [&'static Csvlk],
}

impl HostKey {
    /// The CSVLK that activates `kms`, if any is installed.
    pub fn csvlk_for(&self, kms: &KmsIdInfo, accept_non_volume: bool) -> Option<&'static Csvlk> {
        self.csvlks
            .iter()
            .copied()
            .find(|c| c.covers(kms, accept_non_volume))
    }

    /// The catalog KMS IDs this host key accepts.
    pub fn accepted(&self, accept_non_volume: bool) -> impl Iterator<Item = &'static KmsIdInfo> {
        KMS_IDS
            .iter()
            .filter(move |k| self.csvlk_for(k, accept_non_volume).is_some())
    }

    /// The host build an ePID uses when the configuration names none.
    pub fn default_build(&self) -> u32 {
        self.csvlks
            .first()
            .map_or(WS2025.default_build, |c| c.default_build)
    }

    /// Looks a host key up by name or alias: case-insensitive, ignoring spaces, dashes,
    /// underscores, dots and slashes ("windows-server-2016", "Office2019", "ALL").
    ///
    /// # Errors
    /// [`UnknownHostKey`] with up to three close names and the full list of valid names.
    pub fn lookup(name: &str) -> Result<&'static Self, UnknownHostKey> {
        let wanted = normalise(name);
        let found = HOST_KEYS.iter().find(|k| {
            normalise(k.name) == wanted || k.aliases.iter().any(|a| normalise(a) == wanted)
        });
        found.ok_or_else(|| UnknownHostKey {
            name: name.to_owned(),
            suggestions: suggestions(&wanted),
            valid: HOST_KEYS.iter().map(|k| k.name).collect(),
        })
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// `--host-key` named nothing kmsload knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown host key {name:?}{}; valid host keys: {}", did_you_mean(suggestions), valid.join(", "))]
pub struct UnknownHostKey {
    /// What the user asked for.
    pub name: String,
    /// Close matches, best first (possibly empty).
    pub suggestions: Vec<&'static str>,
    /// Every valid canonical name.
    pub valid: Vec<&'static str>,
}

fn did_you_mean(suggestions: &[&str]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = suggestions.iter().map(|s| format!("{s:?}")).collect();
        format!(" (did you mean {}?)", quoted.join(" or "))
    }
}

/// The key `all` installs: newest Windows, China Government, newest Office 2013+, Office 2010.
pub const ALL: &str = "all";

static HOST_KEYS: [HostKey; 17] = [
    HostKey {
        name: ALL,
        aliases: &["any", "everything"],
        csvlks: &[&WS2025, &WIN_CHINA_GOV, &OFFICE2024, &OFFICE2010],
    },
    HostKey {
        name: "Windows Server 2025",
        aliases: &["ws2025", "server 2025"],
        csvlks: &[&WS2025],
    },
    HostKey {
        name: "Windows Server 2022",
        aliases: &["ws2022", "server 2022"],
        csvlks: &[&WS2022],
    },
    HostKey {
        name: "Windows Server 2019",
        aliases: &["ws2019", "server 2019"],
        csvlks: &[&WS2019],
    },
    HostKey {
        name: "Windows Server 2016",
        aliases: &["ws2016", "server 2016"],
        csvlks: &[&WS2016],
    },
    HostKey {
        name: "Windows Server 2012 R2",
        aliases: &["ws2012r2", "server 2012 r2"],
        csvlks: &[&WS2012R2],
    },
    HostKey {
        name: "Windows Server 2012",
        aliases: &["ws2012", "server 2012"],
        csvlks: &[&WS2012],
    },
    HostKey {
        name: "Windows Server 2008 R2",
        aliases: &["ws2008r2", "server 2008 r2"],
        csvlks: &[&WS2008R2],
    },
    HostKey {
        name: "Windows Server 2008",
        aliases: &["ws2008", "server 2008"],
        csvlks: &[&WS2008],
    },
    HostKey {
        name: "Windows 10/11",
        aliases: &["windows 10", "windows 11"],
        csvlks: &[&WIN10],
    },
    HostKey {
        name: "Windows 10/11 China Government",
        aliases: &["china government", "windows china government"],
        csvlks: &[&WIN_CHINA_GOV],
    },
    HostKey {
        name: "Office LTSC 2024",
        aliases: &["office 2024"],
        csvlks: &[&OFFICE2024],
    },
    HostKey {
        name: "Office LTSC 2021",
        aliases: &["office 2021"],
        csvlks: &[&OFFICE2021],
    },
    HostKey {
        name: "Office 2019",
        aliases: &[],
        csvlks: &[&OFFICE2019],
    },
    HostKey {
        name: "Office 2016",
        aliases: &[],
        csvlks: &[&OFFICE2016],
    },
    HostKey {
        name: "Office 2013",
        aliases: &[],
        csvlks: &[&OFFICE2013],
    },
    HostKey {
        name: "Office 2010",
        aliases: &[],
        csvlks: &[&OFFICE2010],
    },
];

/// Every host key a user can name, `all` first.
pub fn host_keys() -> &'static [HostKey] {
    &HOST_KEYS
}

/// The host key `all`.
pub fn all() -> &'static HostKey {
    &HOST_KEYS[0]
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Up to three canonical names close to `wanted` (already normalised): those that contain it
/// or are contained in it, then those within a small edit distance.
fn suggestions(wanted: &str) -> Vec<&'static str> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &'static str)> = HOST_KEYS
        .iter()
        .filter_map(|k| {
            let best = std::iter::once(k.name)
                .chain(k.aliases.iter().copied())
                .map(|n| {
                    let n = normalise(n);
                    if n.contains(wanted) || (wanted.len() >= 4 && wanted.contains(n.as_str())) {
                        0
                    } else {
                        edit_distance(&n, wanted)
                    }
                })
                .min()?;
            (best <= 3).then_some((best, k.name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance over chars; inputs are short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::catalog::products;

    fn id(name: &str) -> &'static KmsIdInfo {
        KMS_IDS.iter().find(|k| k.name == name).unwrap()
    }

    fn accepts(key: &str, kms: &str) -> bool {
        HostKey::lookup(key)
            .unwrap()
            .csvlk_for(id(kms), false)
            .is_some()
    }

    #[test]
    fn table_matches_products_csv_exactly() {
        let csv: BTreeSet<(Uuid, String, Uuid)> = products()
            .iter()
            .map(|p| (p.kms_id, p.kms_id_name.clone(), p.app_id))
            .collect();
        let ours: BTreeSet<(Uuid, String, Uuid)> = KMS_IDS
            .iter()
            .map(|k| (k.id, k.name.to_owned(), k.application.app_id()))
            .collect();
        assert_eq!(csv, ours);
    }

    #[test]
    fn channel_and_line_agree_with_products_csv() {
        for p in products() {
            let k = kms_id(p.kms_id).unwrap();
            let lower = p.kms_id_name.to_lowercase();
            let expected = if lower.contains("retail") {
                Channel::Retail
            } else if lower.contains("preview") || lower.contains("pre-release") {
                Channel::Preview
            } else {
                Channel::Volume
            };
            assert_eq!(k.channel, expected, "{}", p.kms_id_name);
            let line_family = match k.line {
                Line::WindowsClient | Line::WindowsChinaGovernment => "windows-client",
                Line::WindowsServer => "windows-server",
                Line::Office2010 | Line::Office => "office",
            };
            assert_eq!(line_family, p.family.as_str(), "{}", p.name);
        }
    }

    #[test]
    fn key_ranges_are_well_formed_and_fit_the_epid() {
        for c in csvlks() {
            assert!(c.min_key_id <= c.max_key_id, "{}", c.name);
            assert!(c.max_key_id <= 999_999_999, "{}", c.name);
            assert!(c.group_id <= 99_999, "{}", c.name);
        }
    }

    #[test]
    fn spec_10_7_numbers() {
        assert_eq!(
            (WS2019.group_id, WS2019.min_key_id, WS2019.max_key_id),
            (206, 551_000_000, 570_999_999)
        );
        assert_eq!(
            (WS2022.group_id, WS2022.min_key_id, WS2022.max_key_id),
            (4573, 0, 20_029_999)
        );
        assert_eq!(
            (WS2025.group_id, WS2025.min_key_id, WS2025.max_key_id),
            (4918, 30_000, 20_029_999)
        );
        assert_eq!(
            (OFFICE2021.group_id, OFFICE2021.min_key_id),
            (206, 571_000_000)
        );
        assert_eq!(
            (OFFICE2019.group_id, OFFICE2019.max_key_id),
            (206, 685_999_999)
        );
        assert_eq!(
            (OFFICE2010.group_id, OFFICE2010.min_key_id),
            (96, 199_000_000)
        );
    }

    #[test]
    fn server_keys_cover_their_generation_and_older() {
        assert!(accepts(
            "Windows Server 2016",
            "Windows 10/11 2015 (Volume)"
        ));
        assert!(accepts("Windows Server 2016", "Windows Server 2016"));
        assert!(accepts(
            "Windows Server 2016",
            "Windows Server 2008 A (Web and HPC)"
        ));
        assert!(!accepts("Windows Server 2016", "Windows Server 2019"));
        assert!(!accepts("Windows Server 2016", "Windows Server 2025"));
        assert!(!accepts("Windows Server 2016", "Windows 10 2019 (Volume)"));
        assert!(accepts(
            "Windows Server 2019",
            "Windows 10 ServerRdsh (Volume)"
        ));
        assert!(accepts("Windows Server 2025", "Windows Server 2025"));
        assert!(accepts("Windows Server 2022", "Windows Server 2022"));
        assert!(!accepts("Windows Server 2022", "Windows Server 2025"));
        assert!(accepts("Windows Server 2008 R2", "Windows 7"));
        assert!(!accepts("Windows Server 2008 R2", "Windows 8 (Volume)"));
        assert!(!accepts(
            "Windows Server 2025",
            "Windows 10/11 China Government"
        ));
        assert!(!accepts("Windows Server 2025", "Office 2016"));
    }

    #[test]
    fn client_key_covers_clients_only() {
        assert!(accepts("Windows 10/11", "Windows 10 2019 (Volume)"));
        assert!(accepts("Windows 10/11", "Windows Vista"));
        assert!(!accepts("Windows 10/11", "Windows Server 2019"));
    }

    #[test]
    fn office_keys_cover_their_version_and_older_within_the_application() {
        assert!(accepts("Office 2016", "Office 2016"));
        assert!(accepts("Office 2016", "Office 2013"));
        assert!(!accepts("Office 2016", "Office 2019"));
        assert!(accepts("Office LTSC 2024", "Office 2024"));
        assert!(accepts("Office LTSC 2021", "Office 2019"));
        assert!(!accepts("Office LTSC 2024", "Office 2010"));
        assert!(accepts("Office 2010", "Office 2010"));
        assert!(!accepts("Office 2010", "Office 2013"));
        assert!(!accepts("Office 2019", "Windows 7"));
    }

    #[test]
    fn retail_and_preview_are_refused_by_every_key_unless_accepted() {
        for k in KMS_IDS.iter().filter(|k| k.channel != Channel::Volume) {
            for key in host_keys() {
                assert!(
                    key.csvlk_for(k, false).is_none(),
                    "{} by {}",
                    k.name,
                    key.name
                );
            }
            assert!(
                all().csvlk_for(k, true).is_some(),
                "{} with accept_retail",
                k.name
            );
        }
        assert!(
            HostKey::lookup("Office 2013")
                .unwrap()
                .csvlk_for(id("Office 2013 (Pre-release)"), true)
                .is_some()
        );
    }

    #[test]
    fn all_accepts_every_volume_kms_id_with_the_right_csvlk() {
        for k in KMS_IDS.iter().filter(|k| k.channel == Channel::Volume) {
            assert!(all().csvlk_for(k, false).is_some(), "{}", k.name);
        }
        assert_eq!(all().csvlk_for(id("Windows 7"), false), Some(&WS2025));
        assert_eq!(
            all().csvlk_for(id("Windows 10/11 China Government"), false),
            Some(&WIN_CHINA_GOV)
        );
        assert_eq!(all().csvlk_for(id("Office 2013"), false), Some(&OFFICE2024));
        assert_eq!(all().csvlk_for(id("Office 2010"), false), Some(&OFFICE2010));
        assert_eq!(all().accepted(false).count(), 27);
        assert_eq!(all().accepted(true).count(), 33);
    }

    #[test]
    fn every_csvlk_is_reachable_by_a_name() {
        for c in csvlks() {
            assert!(
                host_keys().iter().any(|k| k.csvlks.contains(c)),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn lookup_is_case_and_punctuation_insensitive() {
        assert_eq!(
            HostKey::lookup("windows server 2016").unwrap().name,
            "Windows Server 2016"
        );
        assert_eq!(
            HostKey::lookup("WINDOWS-SERVER-2012-R2").unwrap().name,
            "Windows Server 2012 R2"
        );
        assert_eq!(HostKey::lookup("ALL").unwrap().name, "all");
        assert_eq!(
            HostKey::lookup("office 2021").unwrap().name,
            "Office LTSC 2021"
        );
        assert_eq!(
            HostKey::lookup("ws2025").unwrap().name,
            "Windows Server 2025"
        );
    }

    #[test]
    fn unknown_name_gives_suggestions_and_the_valid_list() {
        let e = HostKey::lookup("Windows Server 2017").unwrap_err();
        assert_eq!(e.name, "Windows Server 2017");
        assert!(
            e.suggestions.contains(&"Windows Server 2016"),
            "{:?}",
            e.suggestions
        );
        assert!(e.suggestions.len() <= 3);
        assert_eq!(e.valid.len(), host_keys().len());
        let msg = e.to_string();
        assert!(msg.contains("did you mean"), "{msg}");
        assert!(msg.contains("Office 2010"), "{msg}");

        let e = HostKey::lookup("2025").unwrap_err();
        assert_eq!(e.suggestions.first(), Some(&"Windows Server 2025"));

        let e = HostKey::lookup("").unwrap_err();
        assert!(e.suggestions.is_empty());
        assert!(!e.to_string().contains("did you mean"));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
