//! Values and notifications injected through collectd's unixsock reach the
//! plugin's callbacks as the right owned events. The engine thread traces
//! each event at debug level; `LogDevice "stdout"` puts that on collectd's
//! stdout, which the harness captures.

mod common;
use common::{Collectd, CollectdSpec};

fn start() -> Collectd {
    let mut c = Collectd::start(CollectdSpec {
        monitor_block: "LogDevice \"stdout\"\nLogLevel \"debug\"".into(),
        ..Default::default()
    });
    c.wait_for_stdout("monitor: collectd-monitor");
    c
}

#[test]
fn every_data_source_type_and_field_arrives() {
    let mut c = start();
    c.putval("testhost/memory-main/memory-free interval=10 1700000000.5:123.5");
    let line = c.wait_for_stdout(r#""plugin":"memory""#);
    assert!(line.starts_with("[debug] monitor: event "), "{line}");
    assert!(
        line.ends_with(
            r#"{"kind":"metric","host":"testhost","plugin":"memory","plugin_instance":"main","type":"memory","type_instance":"free","time":1700000000.5,"interval":10.0,"values":[123.5],"dsnames":["value"],"dstypes":["gauge"]}"#
        ),
        "{line}"
    );

    c.putval("testhost/load/load interval=5 1700000001:0.5:1:1.5");
    let line = c.wait_for_stdout(r#""plugin":"load""#);
    assert!(
        line.contains(r#""values":[0.5,1.0,1.5],"dsnames":["shortterm","midterm","longterm"],"dstypes":["gauge","gauge","gauge"]"#),
        "{line}"
    );

    c.putval("testhost/interface-eth0/if_octets 1700000002:100:-200");
    let line = c.wait_for_stdout(r#""type":"if_octets""#);
    assert!(
        line.contains(r#""values":[100,-200],"dsnames":["rx","tx"],"dstypes":["derive","derive"]"#),
        "{line}"
    );

    c.putval("testhost/test/counter-c 1700000003:18446744073709551615");
    let line = c.wait_for_stdout(r#""type":"counter""#);
    assert!(
        line.contains(
            r#""values":[18446744073709551615],"dsnames":["value"],"dstypes":["counter"]"#
        ),
        "{line}"
    );

    c.putval("testhost/test/absolute-a 1700000004:7");
    let line = c.wait_for_stdout(r#""type":"absolute""#);
    assert!(
        line.contains(r#""values":[7],"dsnames":["value"],"dstypes":["absolute"]"#),
        "{line}"
    );
    assert!(c.stop().success());
}

#[test]
fn notifications_arrive_with_every_field() {
    let mut c = start();
    c.putnotif(
        "host=web1 plugin=nginx plugin_instance=main type=gauge type_instance=conns severity=warning time=1700000000 message=\"too many connections\"",
    );
    let line = c.wait_for_stdout(r#""kind":"notification""#);
    assert!(
        line.ends_with(
            r#"{"kind":"notification","severity":2,"time":1700000000.0,"message":"too many connections","host":"web1","plugin":"nginx","plugin_instance":"main","type":"gauge","type_instance":"conns"}"#
        ),
        "{line}"
    );
    c.putnotif("host=web1 plugin=p type=t severity=failure time=1700000001 message=down");
    let line = c.wait_for_stdout(r#""message":"down""#);
    assert!(line.contains(r#""severity":1"#), "{line}");
    assert!(c.stop().success());
}
