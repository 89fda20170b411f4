//! `sim`: the synthetic fleet. Every client's identity (CMID, workstation name, product,
//! protocol version, VM flag, clock skew) is a pure function of `(seed, index)`.
//!
//! A [`Fleet`] holds only its [`FleetSpec`], a cumulative weight table (one entry per
//! weighted product) and a handful of stream keys. [`Fleet::client`] computes an identity in
//! O(log k) for k weighted products, allocating nothing: a million-client fleet is exactly as
//! large and as fast to build as a thousand-client one, and the same seed always gives the same
//! fleet.
//!
//! ```text
//! (seed, index) ──┬─ product stream ──► cumulative table ──► product, protocol
//!                 ├─ vm stream ───────► unit < vm_fraction ─► IsClientVM
//!                 ├─ skew streams ────► Fixed | Uniform | Normal (Box–Muller) | List[index]
//!                 ├─ name stream ─────► WS-XXXXXXXXXX | DEPT-KIND-NNNNNN [.domain]
//! (cmid_namespace, index or index mod pool) ── cmid streams ──► UUID v4 (variant 10)
//! ```
//!
//! The mixing function is documented in [`mix`]. Left out: no per-client state (licence
//! status, previous CMID, renewal timers); the runner keeps whatever state a client must carry
//! between attempts. No I/O, no clock, no tokio.

use uuid::Uuid;

use crate::catalog::{Family, Product, products};
use crate::wire::base::{FileTime, Version};

pub mod mix;
pub mod name;

pub use mix::Stream;
pub use name::{DomainError, MachineName, NameStyle};

/// One product in the fleet's mix.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductWeight {
    /// Index into [`products()`].
    pub product: usize,
    /// Relative weight, finite and `>= 0`; the weights of a fleet need not sum to 1.
    pub weight: f64,
    /// Protocol this product's clients use instead of the catalog's.
    pub protocol: Option<Version>,
}

impl ProductWeight {
    /// `product` (index into [`products()`]) with `weight`, speaking the catalog's protocol.
    pub fn new(product: usize, weight: f64) -> Self {
        Self {
            product,
            weight,
            protocol: None,
        }
    }
}

/// How each client's clock differs from true time, in whole seconds (positive = ahead).
#[derive(Debug, Clone, PartialEq)]
pub enum SkewDist {
    /// Every client has this offset.
    Fixed(i64),
    /// Uniform over `min..=max`.
    Uniform {
        /// Smallest offset.
        min: i64,
        /// Largest offset (inclusive).
        max: i64,
    },
    /// Normal, rounded to whole seconds.
    Normal {
        /// Mean offset in seconds.
        mean: f64,
        /// Standard deviation in seconds, finite and `>= 0`.
        stddev: f64,
    },
    /// Client `i` gets `offsets[i % len]`: every listed offset is used, in order.
    List(Vec<i64>),
}

impl Default for SkewDist {
    fn default() -> Self {
        Self::Fixed(0)
    }
}

/// Where CMIDs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CmidSource {
    /// A distinct CMID per client index.
    #[default]
    Unique,
    /// Client `i` gets the CMID of pool slot `i % n`: only `n` distinct CMIDs ever reach the
    /// host, and with a fixed `cmid_namespace` the same ones in every run.
    Pool(u64),
}

/// Which client an attempt brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// Attempt `a` is client `a`: every attempt is a new machine (first activations).
    #[default]
    NewClients,
    /// Attempt `a` is client `a % clients`: the fleet cycles, so later attempts are renewals.
    Renewals,
}

/// The fleet as the scenario describes it: plain data, checked by [`Fleet::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSpec {
    /// Number of distinct clients (`>= 1`).
    pub clients: u64,
    /// Product mix, by weight.
    pub products: Vec<ProductWeight>,
    /// Fraction of clients that say they are virtual machines, `0.0..=1.0`.
    pub vm_fraction: f64,
    /// Protocol every client uses, overriding the per-product choice and the catalog.
    pub forced_protocol: Option<Version>,
    /// Clock skew distribution.
    pub skew: SkewDist,
    /// Where CMIDs come from.
    pub cmid: CmidSource,
    /// Key for CMIDs instead of the seed, so runs with different seeds (different schedules,
    /// skews, products) can still present the same machines to a host.
    pub cmid_namespace: Option<u64>,
    /// Workstation name style.
    pub names: NameStyle,
    /// DNS domain appended to workstation names (`WS-...corp.example.com`).
    pub domain: Option<String>,
    /// Whether attempts bring new clients or cycle over the fleet.
    pub reuse: Reuse,
}

impl FleetSpec {
    /// `clients` clients of the given mix; no VMs, no skew, unique CMIDs, hashed names, no
    /// domain, a new client per attempt.
    pub fn new(clients: u64, products: Vec<ProductWeight>) -> Self {
        Self {
            clients,
            products,
            vm_fraction: 0.0,
            forced_protocol: None,
            skew: SkewDist::default(),
            cmid: CmidSource::default(),
            cmid_namespace: None,
            names: NameStyle::default(),
            domain: None,
            reuse: Reuse::default(),
        }
    }
}

/// Why a [`FleetSpec`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// `clients` is 0.
    #[error("the fleet has no clients; give at least 1")]
    NoClients,
    /// The product list is empty.
    #[error("the fleet has no products; list at least one with a weight")]
    NoProducts,
    /// A product index is outside the catalog.
    #[error("product #{index} is not in the catalog ({len} products)")]
    UnknownProduct {
        /// The index given.
        index: usize,
        /// Catalog size.
        len: usize,
    },
    /// A weight is negative, NaN or infinite.
    #[error("weight {weight} of product #{index} must be a finite number >= 0")]
    BadWeight {
        /// Product index.
        index: usize,
        /// The weight given.
        weight: f64,
    },
    /// The weights do not sum to a positive finite number (all 0, or overflow).
    #[error("product weights must sum to a positive finite number (sum = {total})")]
    WeightTotal {
        /// The sum of the weights.
        total: f64,
    },
    /// `vm_fraction` outside `0..=1`.
    #[error("vm_fraction {0} must be between 0 and 1")]
    VmFraction(f64),
    /// `Uniform` with `min > max`.
    #[error("uniform skew has min {min} > max {max}")]
    SkewRange {
        /// Given min.
        min: i64,
        /// Given max.
        max: i64,
    },
    /// `Normal` with a non-finite mean or a negative or non-finite stddev.
    #[error("normal skew needs a finite mean and a finite stddev >= 0 (got {mean}, {stddev})")]
    SkewNormal {
        /// Given mean.
        mean: f64,
        /// Given standard deviation.
        stddev: f64,
    },
    /// `List` with no offsets.
    #[error("the skew list is empty; give at least one offset")]
    EmptySkewList,
    /// `Pool(0)`.
    #[error("a CMID pool needs at least 1 CMID")]
    EmptyCmidPool,
    /// The domain is not usable in a machine name.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// Everything a client sends that identifies it. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Index in the fleet.
    pub index: u64,
    /// `ClientMachineID`: a version-4 UUID.
    pub cmid: Uuid,
    /// Index of the product in [`products()`].
    pub product_index: usize,
    /// The product (edition).
    pub product: &'static Product,
    /// Protocol version the client speaks.
    pub protocol: Version,
    /// `IsClientVM`.
    pub is_vm: bool,
    /// Clock offset in seconds (positive = the client's clock is ahead).
    pub skew_secs: i64,
    /// `MachineName`, at most 63 ASCII characters.
    pub machine_name: MachineName,
}

impl ClientIdentity {
    /// The `RequestTime` this client sends when the true time is `now`.
    pub fn request_time(&self, now: FileTime) -> FileTime {
        now.offset_secs(self.skew_secs)
    }

    /// `IsClientVM` as the wire field: 1 for a virtual machine, 0 otherwise.
    pub fn is_client_vm(&self) -> u32 {
        u32::from(self.is_vm)
    }
}

/// Stream tags: one per kind of value (arbitrary distinct constants).
mod tag {
    pub(super) const PRODUCT: u64 = 1;
    pub(super) const VM: u64 = 2;
    pub(super) const SKEW_A: u64 = 3;
    pub(super) const SKEW_B: u64 = 4;
    pub(super) const NAME: u64 = 5;
    pub(super) const CMID_HI: u64 = 6;
    pub(super) const CMID_LO: u64 = 7;
}

/// One weighted product, resolved.
#[derive(Debug, Clone, Copy)]
struct ResolvedProduct {
    product_index: usize,
    product: &'static Product,
    protocol: Version,
}

/// A checked fleet: identities on demand, no per-client storage.
#[derive(Debug, Clone)]
pub struct Fleet {
    seed: u64,
    spec: FleetSpec,
    entries: Vec<ResolvedProduct>,
    /// `cumulative[i]` = (w_0 + .. + w_i) / total; the last is exactly 1.0.
    cumulative: Vec<f64>,
    product: Stream,
    vm: Stream,
    skew_a: Stream,
    skew_b: Stream,
    name: Stream,
    cmid_hi: Stream,
    cmid_lo: Stream,
}

impl Fleet {
    /// Checks `spec` and prepares the weight table.
    ///
    /// # Errors
    /// [`SpecError`] naming the first field that is out of range.
    pub fn new(seed: u64, spec: FleetSpec) -> Result<Self, SpecError> {
        if spec.clients == 0 {
            return Err(SpecError::NoClients);
        }
        if spec.products.is_empty() {
            return Err(SpecError::NoProducts);
        }
        let catalog = products();
        let mut entries = Vec::with_capacity(spec.products.len());
        let mut cumulative = Vec::with_capacity(spec.products.len());
        let mut total = 0.0;
        for pw in &spec.products {
            let product = catalog.get(pw.product).ok_or(SpecError::UnknownProduct {
                index: pw.product,
                len: catalog.len(),
            })?;
            if !pw.weight.is_finite() || pw.weight < 0.0 {
                return Err(SpecError::BadWeight {
                    index: pw.product,
                    weight: pw.weight,
                });
            }
            total += pw.weight;
            cumulative.push(total);
            let protocol = spec
                .forced_protocol
                .or(pw.protocol)
                .unwrap_or(Version::new(product.protocol));
            entries.push(ResolvedProduct {
                product_index: pw.product,
                product,
                protocol,
            });
        }
        if !(total > 0.0 && total.is_finite()) {
            return Err(SpecError::WeightTotal { total });
        }
        for c in &mut cumulative {
            *c /= total;
        }
        // Guard against rounding: draws are < 1.0, so the last entry must catch them all.
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        if !(0.0..=1.0).contains(&spec.vm_fraction) {
            return Err(SpecError::VmFraction(spec.vm_fraction));
        }
        match &spec.skew {
            SkewDist::Fixed(_) => {}
            &SkewDist::Uniform { min, max } if min > max => {
                return Err(SpecError::SkewRange { min, max });
            }
            SkewDist::Uniform { .. } => {}
            &SkewDist::Normal { mean, stddev } => {
                if !mean.is_finite() || !stddev.is_finite() || stddev < 0.0 {
                    return Err(SpecError::SkewNormal { mean, stddev });
                }
            }
            SkewDist::List(l) if l.is_empty() => return Err(SpecError::EmptySkewList),
            SkewDist::List(_) => {}
        }
        if spec.cmid == CmidSource::Pool(0) {
            return Err(SpecError::EmptyCmidPool);
        }
        if let Some(d) = &spec.domain {
            name::check_domain(d)?;
        }
        let cmid_key = spec.cmid_namespace.unwrap_or(seed);
        Ok(Self {
            seed,
            entries,
            cumulative,
            product: Stream::new(seed, tag::PRODUCT),
            vm: Stream::new(seed, tag::VM),
            skew_a: Stream::new(seed, tag::SKEW_A),
            skew_b: Stream::new(seed, tag::SKEW_B),
            name: Stream::new(seed, tag::NAME),
            cmid_hi: Stream::new(cmid_key, tag::CMID_HI),
            cmid_lo: Stream::new(cmid_key, tag::CMID_LO),
            spec,
        })
    }

    /// The seed the fleet was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The spec the fleet was built from.
    pub fn spec(&self) -> &FleetSpec {
        &self.spec
    }

    /// Number of distinct clients.
    pub fn clients(&self) -> u64 {
        self.spec.clients
    }

    /// The identity of client `index`. Defined for every `u64`; indices past
    /// [`clients`](Self::clients) occur in [`Reuse::NewClients`] runs with more attempts than
    /// clients.
    pub fn client(&self, index: u64) -> ClientIdentity {
        let entry = self.entry(index);
        let is_vm = self.vm.unit(index) < self.spec.vm_fraction;
        let machine_name = name::machine_name(&name::NameInput {
            style: self.spec.names,
            hash: self.name.at(index),
            index,
            is_vm,
            is_server: entry.product.family == Family::WindowsServer,
            domain: self.spec.domain.as_deref(),
        });
        ClientIdentity {
            index,
            cmid: self.cmid(index),
            product_index: entry.product_index,
            product: entry.product,
            protocol: entry.protocol,
            is_vm,
            skew_secs: self.skew(index),
            machine_name,
        }
    }

    /// The client index attempt number `attempt` brings (see [`Reuse`]).
    pub fn client_for_attempt(&self, attempt: u64) -> u64 {
        match self.spec.reuse {
            Reuse::NewClients => attempt,
            Reuse::Renewals => attempt % self.spec.clients,
        }
    }

    /// `client(client_for_attempt(attempt))`.
    pub fn identity_for_attempt(&self, attempt: u64) -> ClientIdentity {
        self.client(self.client_for_attempt(attempt))
    }

    /// The CMID of client `index` alone: a version-4, variant-10 (RFC 4122) UUID.
    pub fn cmid(&self, index: u64) -> Uuid {
        let slot = match self.spec.cmid {
            CmidSource::Unique => index,
            // `Pool(0)` is refused by `new`; `max(1)` keeps this total anyway.
            CmidSource::Pool(n) => index % n.max(1),
        };
        let hi = self.cmid_hi.at(slot);
        let lo = self.cmid_lo.at(slot);
        let hi = (hi & !0xF000) | 0x4000; // version nibble (byte 6 high) = 4
        let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // variant bits (byte 8 top) = 10
        Uuid::from_u64_pair(hi, lo)
    }

    /// The product and protocol of client `index`: binary search of the cumulative table.
    fn entry(&self, index: u64) -> &ResolvedProduct {
        let u = self.product.unit(index);
        let i = self.cumulative.partition_point(|&c| c <= u);
        // `u < 1.0 = cumulative.last()`, so `i < len`; `min` keeps it in range regardless.
        &self.entries[i.min(self.entries.len() - 1)]
    }

    fn skew(&self, index: u64) -> i64 {
        match &self.spec.skew {
            &SkewDist::Fixed(s) => s,
            &SkewDist::Uniform { min, max } => {
                let span = (i128::from(max) - i128::from(min) + 1) as u128; // 1..=2^64
                let off = (u128::from(self.skew_a.at(index)) * span) >> 64;
                (i128::from(min) + off as i128) as i64
            }
            &SkewDist::Normal { mean, stddev } => {
                // Box–Muller on two streams: u1 in (0, 1] so ln(u1) is finite.
                let u1 = 1.0 - self.skew_a.unit(index);
                let u2 = self.skew_b.unit(index);
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                // `as` saturates at the i64 range; the value is finite (checked inputs).
                (mean + stddev * z).round() as i64
            }
            SkewDist::List(offsets) => {
                // Non-empty (checked by `new`).
                let i = (index % offsets.len().max(1) as u64) as usize;
                offsets.get(i).copied().unwrap_or(0)
            }
        }
    }

    /// Heap bytes the fleet holds: O(products), independent of the client count.
    pub fn heap_bytes(&self) -> usize {
        let skew = match &self.spec.skew {
            SkewDist::List(l) => l.capacity() * size_of::<i64>(),
            _ => 0,
        };
        self.entries.capacity() * size_of::<ResolvedProduct>()
            + self.cumulative.capacity() * size_of::<f64>()
            + self.spec.products.capacity() * size_of::<ProductWeight>()
            + self.spec.domain.as_ref().map_or(0, String::capacity)
            + skew
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn idx(name: &str) -> usize {
        products()
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} not in catalog"))
    }

    fn pro() -> usize {
        idx("Windows 10/11 Pro")
    }

    fn spec(clients: u64) -> FleetSpec {
        FleetSpec::new(clients, vec![ProductWeight::new(pro(), 1.0)])
    }

    fn fleet(seed: u64, spec: FleetSpec) -> Fleet {
        Fleet::new(seed, spec).expect("valid spec")
    }

    #[test]
    fn same_seed_same_fleet() {
        let mut s = spec(1000);
        s.products.push(ProductWeight::new(
            idx("Windows Server 2019 Datacenter"),
            1.0,
        ));
        s.vm_fraction = 0.5;
        s.skew = SkewDist::Normal {
            mean: 0.0,
            stddev: 600.0,
        };
        s.names = NameStyle::Department;
        s.domain = Some("corp.example.com".into());
        let a = fleet(7, s.clone());
        let b = fleet(7, s);
        for i in [0, 1, 2, 500, 999, 1_000_000, u64::MAX] {
            assert_eq!(a.client(i), b.client(i));
        }
    }

    #[test]
    fn different_seed_different_fleet() {
        let mut s = spec(1000);
        s.products
            .push(ProductWeight::new(idx("Windows 10/11 Enterprise"), 1.0));
        s.skew = SkewDist::Uniform {
            min: -100,
            max: 100,
        };
        let a = fleet(1, s.clone());
        let b = fleet(2, s);
        let mut same_product = 0;
        let mut same_skew = 0;
        for i in 0..1000 {
            let (x, y) = (a.client(i), b.client(i));
            assert_ne!(x.cmid, y.cmid);
            assert_ne!(x.machine_name, y.machine_name);
            same_product += usize::from(x.product_index == y.product_index);
            same_skew += usize::from(x.skew_secs == y.skew_secs);
        }
        assert!((400..600).contains(&same_product), "{same_product}");
        assert!(same_skew < 30, "{same_skew}");
    }

    #[test]
    fn weights_are_honoured_over_100k_draws() {
        let (a, b, c) = (
            pro(),
            idx("Windows 10/11 Enterprise"),
            idx("Office LTSC Professional Plus 2021"),
        );
        let s = FleetSpec::new(
            100_000,
            vec![
                ProductWeight::new(a, 70.0),
                ProductWeight::new(b, 20.0),
                ProductWeight::new(c, 10.0),
                ProductWeight::new(idx("Windows 10/11 Education"), 0.0),
            ],
        );
        let f = fleet(3, s);
        let mut n = [0u32; 4];
        for i in 0..100_000 {
            let p = f.client(i).product_index;
            let k = [a, b, c].iter().position(|&x| x == p).unwrap_or(3);
            n[k] += 1;
        }
        // 1 percentage point is more than 6 standard deviations at n = 100k.
        for (got, want) in n.iter().zip([70_000, 20_000, 10_000, 0]) {
            assert!((i64::from(*got) - want).abs() < 1000, "{n:?}");
        }
    }

    #[test]
    fn vm_fraction_is_honoured() {
        for (frac, lo, hi) in [(0.0, 0, 0), (0.25, 24_000, 26_000), (1.0, 100_000, 100_000)] {
            let mut s = spec(100_000);
            s.vm_fraction = frac;
            let f = fleet(4, s);
            let vms = (0..100_000).filter(|&i| f.client(i).is_vm).count();
            assert!((lo..=hi).contains(&vms), "{frac}: {vms}");
        }
        let mut s = spec(10);
        s.vm_fraction = 1.0;
        assert_eq!(fleet(0, s).client(3).is_client_vm(), 1);
    }

    #[test]
    fn skew_fixed_and_list() {
        let mut s = spec(10);
        s.skew = SkewDist::Fixed(-14_401);
        let f = fleet(5, s.clone());
        assert!((0..100).all(|i| f.client(i).skew_secs == -14_401));
        s.skew = SkewDist::List(vec![-14_401, 0, 14_401]);
        let f = fleet(5, s);
        let got: Vec<i64> = (0..6).map(|i| f.client(i).skew_secs).collect();
        assert_eq!(got, [-14_401, 0, 14_401, -14_401, 0, 14_401]);
    }

    #[test]
    fn skew_uniform_covers_its_range_only() {
        let mut s = spec(10);
        s.skew = SkewDist::Uniform { min: -3, max: 3 };
        let f = fleet(6, s);
        let mut seen = [0u32; 7];
        for i in 0..70_000 {
            let k = f.client(i).skew_secs;
            assert!((-3..=3).contains(&k));
            seen[(k + 3) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| (9_000..11_000).contains(&n)),
            "{seen:?}"
        );
        // The widest range does not overflow.
        let mut s = spec(10);
        s.skew = SkewDist::Uniform {
            min: i64::MIN,
            max: i64::MAX,
        };
        let f = fleet(6, s);
        let v: HashSet<i64> = (0..100).map(|i| f.client(i).skew_secs).collect();
        assert!(v.len() > 90);
        let mut s = spec(10);
        s.skew = SkewDist::Uniform { min: 9, max: 9 };
        assert_eq!(fleet(6, s).client(1).skew_secs, 9);
    }

    #[test]
    fn skew_normal_has_its_mean_and_stddev() {
        let mut s = spec(10);
        s.skew = SkewDist::Normal {
            mean: 120.0,
            stddev: 600.0,
        };
        let f = fleet(8, s);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| f.client(i).skew_secs as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard error of the mean is 600/sqrt(1e5) ~ 1.9 s.
        assert!((mean - 120.0).abs() < 10.0, "mean {mean}");
        assert!((var.sqrt() - 600.0).abs() < 10.0, "stddev {}", var.sqrt());
        // About 68.3 % within one stddev.
        let within = xs.iter().filter(|x| (**x - 120.0).abs() <= 600.0).count();
        assert!((67_300..69_300).contains(&within), "{within}");
        let mut s = spec(10);
        s.skew = SkewDist::Normal {
            mean: -5.0,
            stddev: 0.0,
        };
        assert_eq!(fleet(8, s).client(3).skew_secs, -5);
    }

    #[test]
    fn cmids_are_version_4_variant_10_and_unique() {
        let f = fleet(9, spec(200_000));
        let mut seen = HashSet::with_capacity(200_000);
        for i in 0..200_000 {
            let c = f.client(i).cmid;
            assert_eq!(c.get_version_num(), 4);
            assert_eq!(c.get_variant(), uuid::Variant::RFC4122);
            let b = c.as_bytes();
            assert_eq!(b[6] >> 4, 4);
            assert_eq!(b[8] >> 6, 0b10);
            assert!(seen.insert(c), "repeat at {i}");
        }
    }

    #[test]
    fn cmid_pool_repeats_modulo_n_and_namespace_survives_seed_changes() {
        let mut s = spec(1000);
        s.cmid = CmidSource::Pool(10);
        let f = fleet(10, s.clone());
        let distinct: HashSet<Uuid> = (0..1000).map(|i| f.client(i).cmid).collect();
        assert_eq!(distinct.len(), 10);
        assert_eq!(f.client(3).cmid, f.client(13).cmid);
        assert_eq!(f.client(3).cmid, f.cmid(993));
        // Without a namespace the seed decides; with one, the seed does not.
        assert_ne!(f.cmid(3), fleet(11, s.clone()).cmid(3));
        s.cmid_namespace = Some(77);
        assert_eq!(fleet(10, s.clone()).cmid(3), fleet(11, s).cmid(3));
    }

    #[test]
    fn names_fit_the_wire_field() {
        let mut s = spec(100);
        s.domain = Some("corp.example.com".into());
        let f = fleet(12, s.clone());
        for i in 0..100 {
            let n = f.client(i).machine_name;
            assert!(n.len() <= 63);
            assert!(n.as_str().starts_with("WS-"), "{n}");
            assert!(n.as_str().ends_with(".corp.example.com"), "{n}");
            assert!(n.as_str().bytes().all(|b| b.is_ascii_graphic()));
        }
        s.names = NameStyle::Department;
        s.domain = None;
        s.products = vec![ProductWeight::new(
            idx("Windows Server 2019 Datacenter"),
            1.0,
        )];
        let n = fleet(12, s).client(41).machine_name;
        assert!(n.as_str().ends_with("-SRV-000042"), "{n}");
    }

    #[test]
    fn protocol_comes_from_catalog_product_override_or_forced() {
        let p = pro();
        let mut s = spec(10);
        assert_eq!(
            fleet(1, s.clone()).client(0).protocol,
            Version::new(products()[p].protocol)
        );
        s.products[0].protocol = Some(Version::V4);
        assert_eq!(fleet(1, s.clone()).client(0).protocol, Version::V4);
        s.forced_protocol = Some(Version::V5);
        assert_eq!(fleet(1, s).client(0).protocol, Version::V5);
    }

    #[test]
    fn attempts_map_to_new_clients_or_cycle() {
        let mut s = spec(3);
        let f = fleet(1, s.clone());
        assert_eq!(
            (0..5).map(|a| f.client_for_attempt(a)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        s.reuse = Reuse::Renewals;
        let f = fleet(1, s);
        assert_eq!(
            (0..5).map(|a| f.client_for_attempt(a)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1]
        );
        assert_eq!(f.identity_for_attempt(4), f.client(1));
    }

    #[test]
    fn request_time_applies_skew() {
        let mut s = spec(1);
        s.skew = SkewDist::Fixed(-3600);
        let c = fleet(1, s).client(0);
        let now = FileTime::from_unix(1_700_000_000, 0);
        assert_eq!(c.request_time(now).secs_since(now), -3600);
    }

    #[test]
    fn a_million_clients_cost_what_a_thousand_do() {
        let small = fleet(1, spec(1_000));
        let large = fleet(1, spec(1_000_000));
        assert_eq!(small.heap_bytes(), large.heap_bytes());
        assert!(large.heap_bytes() < 1024, "{}", large.heap_bytes());
        assert!(size_of::<Fleet>() < 512, "{}", size_of::<Fleet>());
        // The last client is as available as the first.
        let last = large.client(999_999);
        assert_eq!(last, large.client(999_999));
        assert_eq!(last.index, 999_999);
    }

    #[test]
    fn spec_rejections() {
        let p = pro();
        let bad = |f: &dyn Fn(&mut FleetSpec)| {
            let mut s = spec(10);
            f(&mut s);
            Fleet::new(0, s).expect_err("spec should be refused")
        };
        assert_eq!(bad(&|s| s.clients = 0), SpecError::NoClients);
        assert_eq!(bad(&|s| s.products.clear()), SpecError::NoProducts);
        assert!(matches!(
            bad(&|s| s.products[0].product = 100_000),
            SpecError::UnknownProduct { index: 100_000, .. }
        ));
        assert!(matches!(
            bad(&|s| s.products[0].weight = -1.0),
            SpecError::BadWeight { .. }
        ));
        assert!(matches!(
            bad(&|s| s.products[0].weight = f64::NAN),
            SpecError::BadWeight { .. }
        ));
        assert!(matches!(
            bad(&|s| s.products[0].weight = f64::INFINITY),
            SpecError::BadWeight { .. }
        ));
        assert_eq!(
            bad(&|s| s.products[0].weight = 0.0),
            SpecError::WeightTotal { total: 0.0 }
        );
        assert_eq!(
            bad(&|s| s.products = vec![ProductWeight::new(p, f64::MAX); 2]),
            SpecError::WeightTotal {
                total: f64::INFINITY
            }
        );
        assert_eq!(bad(&|s| s.vm_fraction = 1.5), SpecError::VmFraction(1.5));
        assert!(matches!(
            bad(&|s| s.vm_fraction = f64::NAN),
            SpecError::VmFraction(_)
        ));
        assert_eq!(
            bad(&|s| s.skew = SkewDist::Uniform { min: 2, max: 1 }),
            SpecError::SkewRange { min: 2, max: 1 }
        );
        assert!(matches!(
            bad(&|s| s.skew = SkewDist::Normal {
                mean: 0.0,
                stddev: -1.0
            }),
            SpecError::SkewNormal { .. }
        ));
        assert!(matches!(
            bad(&|s| s.skew = SkewDist::Normal {
                mean: f64::NAN,
                stddev: 1.0
            }),
            SpecError::SkewNormal { .. }
        ));
        assert_eq!(
            bad(&|s| s.skew = SkewDist::List(vec![])),
            SpecError::EmptySkewList
        );
        assert_eq!(
            bad(&|s| s.cmid = CmidSource::Pool(0)),
            SpecError::EmptyCmidPool
        );
        assert!(matches!(
            bad(&|s| s.domain = Some("a..b".into())),
            SpecError::Domain(_)
        ));
    }
}
