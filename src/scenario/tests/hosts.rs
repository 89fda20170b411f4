//! `[[hosts]]`, `down` and `srv`: several in-process hosts behind a static SRV answer.

use super::*;

const TWO: &str = "discover = \"corp.example\"\n\
srv = [{ host = \"kms01\" }, { host = \"kms02\", priority = 10, weight = 5 }]\n\
[[hosts]]\nname = \"kms01\"\ncharged = true\ndown = [{ from = \"8s\", for = \"8s\" }]\n\
[[hosts]]\nname = \"KMS02\"\nport = 11688\n\
[load]\nduration = \"24s\"\n";

#[test]
fn two_hosts_behind_static_records() {
    let p = parse(TWO).unwrap();
    let Target::Discover(d) = &p.target else {
        panic!("{:?}", p.target)
    };
    assert_eq!(d.config.domain, "corp.example");
    let names: Vec<&str> = d.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["kms01", "kms02"]);
    assert_eq!(d.hosts[0].address, std::net::Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(d.hosts[1].address, std::net::Ipv4Addr::new(127, 0, 0, 3));
    assert_eq!((d.hosts[0].port, d.hosts[1].port), (0, 11688));
    assert!(d.hosts[0].charged && !d.hosts[1].charged);
    assert_eq!(
        d.hosts[0].down,
        [Window {
            start: Duration::from_secs(8),
            end: Duration::from_secs(16)
        }]
    );
    assert!(d.hosts[1].down.is_empty());
    assert_eq!(
        d.srv.as_deref(),
        Some(
            &[
                StaticSrv {
                    host: 0,
                    priority: 0,
                    weight: 0
                },
                StaticSrv {
                    host: 1,
                    priority: 10,
                    weight: 5
                }
            ][..]
        )
    );
}

#[test]
fn one_host_entry_is_the_in_process_target_with_its_outages() {
    let p = parse(
        "[[hosts]]\ndown = [{ from = \"3s\", for = \"1s\" }, { from = \"1s\", for = \"1s\" }]\n[load]\nduration = \"5s\"\n",
    )
    .unwrap();
    let Target::InProcess(h) = &p.target else {
        panic!("{:?}", p.target)
    };
    assert_eq!(h.name, "kms01");
    assert_eq!(h.address, std::net::Ipv4Addr::new(127, 0, 0, 2));
    let starts: Vec<u64> = h.down.iter().map(|w| w.start.as_secs()).collect();
    assert_eq!(starts, [1, 3], "sorted");
    // [host] may have outages too, and keeps 127.0.0.1.
    let p = parse("[host]\ndown = [{ from = \"1s\", for = \"2s\" }]\n[load]\nduration = \"5s\"\n")
        .unwrap();
    let Target::InProcess(h) = &p.target else {
        panic!("{:?}", p.target)
    };
    assert_eq!(h.address, std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(h.down.len(), 1);
}

#[test]
fn several_hosts_need_records() {
    let e = assert_error(
        "[[hosts]]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        1,
        "[[hosts]]",
        "2 in-process hosts, but nothing tells the clients how to find them",
    );
    assert!(e.hint.unwrap().contains("srv = ["));
}

#[test]
fn records_name_existing_hosts_once_and_every_host() {
    let e = assert_error(
        "discover = \"corp.example\"\nsrv = [{ host = \"kms01\" }, { host = \"kms20\" }]\n[[hosts]]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "[[srv]] #2 host",
        "no [[hosts]] entry is named `kms20`",
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean \"kms02\"?"));
    assert_error(
        "discover = \"corp.example\"\nsrv = [{ host = \"kms01\" }, { host = \"kms01\" }]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "[[srv]] #2 host",
        "a second record for `kms01`",
    );
    assert_error(
        "discover = \"corp.example\"\nsrv = [{ host = \"kms01\" }]\n[[hosts]]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        4,
        "[[hosts]] #2",
        "no `srv` record leads to `kms02`",
    );
    assert_error(
        "discover = \"corp.example\"\nsrv = []\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "srv",
        "is empty",
    );
    assert_error(
        "discover = \"corp.example\"\nsrv = [{ host = \"kms01\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "srv",
        "there is no [[hosts]] table",
    );
}

#[test]
fn records_need_discover_and_replace_dns() {
    assert_error(
        "srv = [{ host = \"kms01\" }]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        1,
        "srv",
        "`discover` is not set",
    );
    assert_error(
        "discover = \"corp.example\"\ndns_server = \"127.0.0.1:5353\"\nsrv = [{ host = \"kms01\" }]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "dns_server",
        "`srv` gives the records",
    );
    // Through DNS, the records must be able to name the hosts: fixed ports.
    let e = assert_error(
        "discover = \"corp.example\"\ndns_server = \"127.0.0.1:5353\"\n[[hosts]]\nport = 1688\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        5,
        "[[hosts]] #2",
        "`kms02` has no fixed `port`",
    );
    assert!(e.hint.unwrap().contains("127.0.0.3"));
    assert!(
        parse(
            "discover = \"corp.example\"\ndns_server = \"127.0.0.1:5353\"\n[[hosts]]\nport = 1688\n[[hosts]]\nport = 1688\n[load]\nduration = \"5s\"\n"
        )
        .is_ok()
    );
}

#[test]
fn host_entries_are_checked_like_the_host_table() {
    let all = problems(
        "discover = \"corp.example\"\nsrv = [{ host = \"kms01\" }]\n[[hosts]]\nname = \"kms01\"\n[[hosts]]\nname = \"KMS01\"\n[load]\nduration = \"5s\"\n",
        &Overrides::default(),
    );
    assert!(
        all.iter().any(|e| e.key == "[[hosts]] #2 name"
            && e.position.map(|p| p.line) == Some(6)
            && e.message.contains("a second host named `kms01`")),
        "{all:#?}"
    );
    assert_error(
        "[[hosts]]\nname = \"kms 01\"\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 name",
        "is not a host name",
    );
    assert_error(
        "[[hosts]]\nhost_key = \"Windows Server 2077\"\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 host_key",
        "unknown host key",
    );
    assert_error(
        "[[hosts]]\nactivation_interval = \"5m\"\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 activation_interval",
        "15m to 30d",
    );
    assert_error(
        "[host]\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]]",
        "[host] and [[hosts]] both configure in-process hosts",
    );
    assert_error(
        "target = \"127.0.0.1:1688\"\n[[hosts]]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]]",
        "not started when `target` is set",
    );
    let e = assert_error(
        "[[hosts]]\nchargd = true\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 chargd",
        "unknown key",
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `charged`?"));
}

#[test]
fn outage_windows_are_checked() {
    assert_error(
        "[[hosts]]\ndown = [{ from = \"1s\", for = \"3s\" }, { from = \"2s\", for = \"1s\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 down #2",
        "overlaps the outage from 1s to 4s",
    );
    assert_error(
        "[[hosts]]\ndown = [{ from = \"9s\", for = \"3s\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 down #1 from",
        "after the run ends",
    );
    assert_error(
        "[[hosts]]\ndown = [{ from = \"1s\", for = \"0s\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 down #1 for",
        "longer than 0s",
    );
    assert_error(
        "[[hosts]]\ndown = [{ from = \"1 s\", for = \"2s\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 down #1 from",
        "",
    );
    let e = assert_error(
        "[[hosts]]\ndown = [{ from = \"1s\", until = \"2s\" }]\n[load]\nduration = \"5s\"\n",
        2,
        "[[hosts]] #1 down #1 until",
        "unknown key",
    );
    assert!(e.hint.unwrap().contains("for"), "lists the keys");
}
