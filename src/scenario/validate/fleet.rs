//! Validation of `[fleet]` (products, skew, reuse), `[client]` and `[timeouts]`.

use super::*;

// ---------------------------------------------------------------------------------------
// [fleet]

pub(super) fn fleet(
    cx: &mut Ctx<'_>,
    raw: RawFleet,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<FleetPlan> {
    let base = root("fleet");
    let size = cx.at_least_one(&base.key("size"), raw.size.unwrap_or(defaults::FLEET_SIZE));
    let forced = match raw.protocol {
        Some(v) => protocol(cx, &base.key("protocol"), v),
        None => Some(None),
    };
    let products = product_mix(
        cx,
        &base,
        raw.products,
        raw.protocol.is_some(),
        forced.flatten(),
        resolve,
    );
    let vm_fraction = cx.fraction(&base.key("vm_fraction"), raw.vm_fraction.unwrap_or(0.0));
    let skew = skew(cx, &base.key("skew"), raw.skew);
    let cmid_pool = match raw.cmid_pool {
        Some(n) => Some(cx.at_least_one(&base.key("cmid_pool"), n)?),
        None => None,
    };
    Some(FleetPlan {
        size: size?,
        products: products?,
        vm_fraction: vm_fraction?,
        skew: skew?,
        reuse: raw.reuse.unwrap_or(ClientReuse::Renew),
        cmid_pool,
    })
}

pub(super) fn protocol(cx: &mut Ctx<'_>, path: &KeyPath, v: u16) -> Option<Option<u16>> {
    if (4..=6).contains(&v) {
        Some(Some(v))
    } else {
        cx.err(
            path,
            format!("protocol {v} does not exist"),
            Some("KMS protocol versions are 4, 5 and 6".to_owned()),
        );
        None
    }
}

pub(crate) fn product_mix(
    cx: &mut Ctx<'_>,
    base: &KeyPath,
    raw: Option<Vec<crate::scenario::raw::RawProduct>>,
    fleet_protocol_set: bool,
    forced: Option<u16>,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<Vec<ProductShare>> {
    let path = base.key("products");
    let Some(entries) = raw else {
        let Some(p) = products().iter().find(|p| p.name == defaults::PRODUCT) else {
            // The default is a catalog row; `tests::defaults_are_deterministic` checks it.
            cx.err(
                &path,
                "the default product is missing from the catalog",
                None,
            );
            return None;
        };
        return Some(vec![ProductShare {
            product: p,
            weight: 1.0,
            protocol: forced.unwrap_or(p.protocol),
        }]);
    };
    if entries.is_empty() {
        cx.err(
            &path,
            "the fleet needs at least one product",
            Some("products = [{ product = \"Windows 10/11 Pro\", weight = 1 }]".to_owned()),
        );
        return None;
    }
    let mut shares = Vec::new();
    let mut seen: Vec<(Uuid, usize)> = Vec::new();
    let mut ok = true;
    for (i, e) in entries.into_iter().enumerate() {
        let item = path.index(i);
        let product = match resolve(&e.product) {
            Ok(p) => p,
            Err(message) => {
                cx.err(
                    &item.key("product"),
                    message,
                    Some("`kmsload products` lists every name, GVLK and SKU ID".to_owned()),
                );
                ok = false;
                continue;
            }
        };
        if let Some((_, first)) = seen.iter().find(|(id, _)| *id == product.sku_id) {
            cx.err(
                &item.key("product"),
                format!(
                    "\"{}\" is listed twice (also entry #{})",
                    product.name,
                    first + 1
                ),
                Some("merge the two entries and add their weights".to_owned()),
            );
            ok = false;
            continue;
        }
        seen.push((product.sku_id, i));
        let weight = e.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            cx.err(
                &item.key("weight"),
                format!("must be > 0, found {weight}"),
                Some("weights are relative, e.g. 3 and 1 for 75% and 25%".to_owned()),
            );
            ok = false;
            continue;
        }
        let own = match e.protocol {
            Some(_) if fleet_protocol_set => {
                cx.err(
                    &item.key("protocol"),
                    "conflicts with [fleet] protocol",
                    Some("[fleet] protocol forces one version on every product; set one or the other".to_owned()),
                );
                ok = false;
                continue;
            }
            Some(v) => match protocol(cx, &item.key("protocol"), v) {
                Some(p) => p,
                None => {
                    ok = false;
                    continue;
                }
            },
            None => None,
        };
        shares.push(ProductShare {
            product,
            weight,
            protocol: forced.or(own).unwrap_or(product.protocol),
        });
    }
    ok.then_some(shares)
}

pub(crate) fn skew(cx: &mut Ctx<'_>, path: &KeyPath, raw: Option<RawSkew>) -> Option<SkewDist> {
    let Some(raw) = raw else {
        return Some(SkewDist::Fixed(0));
    };
    let Some(kind) = raw.kind else {
        cx.err(
            &path.key("kind"),
            "required key `kind` is missing",
            Some("kind = \"none\", \"fixed\", \"uniform\", \"normal\" or \"list\"".to_owned()),
        );
        return None;
    };
    let (name, allowed): (&str, &[&str]) = match kind {
        SkewKind::None => ("none", &[]),
        SkewKind::Fixed => ("fixed", &["offset"]),
        SkewKind::Uniform => ("uniform", &["min", "max"]),
        SkewKind::Normal => ("normal", &["mean", "stddev"]),
        SkewKind::List => ("list", &["offsets"]),
    };
    let set = [
        ("offset", raw.offset.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("mean", raw.mean.is_some()),
        ("stddev", raw.stddev.is_some()),
        ("offsets", raw.offsets.is_some()),
    ];
    let mut ok = true;
    for (key, present) in set {
        if present && !allowed.contains(&key) {
            let keys = if allowed.is_empty() {
                "no other keys".to_owned()
            } else {
                allowed.join(", ")
            };
            cx.err(
                &path.key(key),
                format!("does not apply to kind = \"{name}\""),
                Some(format!("kind = \"{name}\" takes {keys}")),
            );
            ok = false;
        }
    }
    let mut need = |key: &str, v: &Option<String>| -> Option<i64> {
        match v {
            Some(t) => cx.offset(&path.key(key), t),
            None => {
                cx.err(
                    &path.key(key),
                    format!("kind = \"{name}\" needs `{key}`"),
                    Some(format!("kind = \"{name}\" takes {}", allowed.join(", "))),
                );
                None
            }
        }
    };
    let dist = match kind {
        SkewKind::None => Some(SkewDist::Fixed(0)),
        SkewKind::Fixed => need("offset", &raw.offset).map(SkewDist::Fixed),
        SkewKind::Uniform => {
            let min = need("min", &raw.min);
            let max = need("max", &raw.max);
            match (min, max) {
                (Some(lo), Some(hi)) if lo > hi => {
                    cx.err(
                        &path.key("max"),
                        format!(
                            "max ({}) is below min ({})",
                            DisplaySkew(hi),
                            DisplaySkew(lo)
                        ),
                        None,
                    );
                    None
                }
                (Some(min), Some(max)) => Some(SkewDist::Uniform { min, max }),
                _ => None,
            }
        }
        SkewKind::Normal => {
            let mean = need("mean", &raw.mean);
            let stddev = match &raw.stddev {
                Some(t) => cx.duration(&path.key("stddev"), t),
                None => {
                    cx.err(
                        &path.key("stddev"),
                        "kind = \"normal\" needs `stddev`",
                        Some("e.g. stddev = \"1h\"".to_owned()),
                    );
                    None
                }
            };
            Some(SkewDist::Normal {
                mean: mean? as f64,
                stddev: stddev?.as_secs_f64(),
            })
        }
        SkewKind::List => match &raw.offsets {
            None => {
                cx.err(
                    &path.key("offsets"),
                    "kind = \"list\" needs `offsets`",
                    Some("e.g. offsets = [\"-5h\", \"0s\", \"+5h\"]".to_owned()),
                );
                None
            }
            Some(list) if list.is_empty() => {
                cx.err(
                    &path.key("offsets"),
                    "the list is empty",
                    Some("e.g. offsets = [\"-5h\", \"0s\", \"+5h\"]".to_owned()),
                );
                None
            }
            Some(list) => {
                let parsed: Vec<Option<i64>> = list
                    .iter()
                    .enumerate()
                    .map(|(i, t)| cx.offset(&path.key("offsets").index(i), t))
                    .collect();
                parsed
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(SkewDist::List)
            }
        },
    };
    if ok { dist } else { None }
}

// ---------------------------------------------------------------------------------------
// [client], [timeouts]

pub(super) fn client(raw: RawClient) -> ClientPlan {
    ClientPlan {
        ndr: raw.ndr.unwrap_or(NdrMode::Windows),
        btfn: raw.btfn.unwrap_or(true),
    }
}

pub(super) fn timeouts(cx: &mut Ctx<'_>, raw: RawTimeouts) -> Option<Timeouts> {
    let base = root("timeouts");
    let mut one = |key: &str, v: Option<String>, default: Duration, zero_ok: bool| {
        let path = base.key(key);
        match v {
            None => Some(default),
            Some(t) if zero_ok => cx.duration(&path, &t),
            Some(t) => cx.positive_duration(&path, &t),
        }
    };
    let connect = one("connect", raw.connect, defaults::CONNECT, false);
    let bind = one("bind", raw.bind, defaults::BIND, false);
    let request = one("request", raw.request, defaults::REQUEST, false);
    let drain = one("drain", raw.drain, defaults::DRAIN, true);
    Some(Timeouts {
        connect: connect?,
        bind: bind?,
        request: request?,
        drain: drain?,
    })
}
