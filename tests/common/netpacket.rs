//! collectd's binary network protocol, written by the test itself: what
//! an attacker (or a host) sends to a central collectd's network plugin,
//! unsigned or signed with a user's password (HMAC-SHA-256 over the user
//! name and the rest of the packet, as collectd's network plugin checks).

use std::net::UdpSocket;

/// One value list with a single gauge (`type` `gauge` in types.db).
pub struct Gauge<'a> {
    pub host: &'a str,
    pub plugin: &'a str,
    pub type_instance: &'a str,
    pub value: f64,
    /// Seconds since the epoch.
    pub time: f64,
}

/// The largest datagram collectd's network plugin reads whole.
const MAX_PACKET: usize = 1452;

fn part_string(out: &mut Vec<u8>, kind: u16, text: &str) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&((4 + text.len() + 1) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

fn part_number(out: &mut Vec<u8>, kind: u16, n: u64) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&12u16.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes());
}

fn encode(g: &Gauge<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    part_string(&mut out, 0x0000, g.host);
    // High-resolution time and interval: seconds * 2^30.
    part_number(&mut out, 0x0008, (g.time * (1u64 << 30) as f64) as u64);
    part_number(&mut out, 0x0009, 10 << 30);
    part_string(&mut out, 0x0002, g.plugin);
    part_string(&mut out, 0x0003, "");
    part_string(&mut out, 0x0004, "gauge");
    part_string(&mut out, 0x0005, g.type_instance);
    // One value: its type (1, gauge), then the value, little-endian.
    out.extend_from_slice(&0x0006u16.to_be_bytes());
    out.extend_from_slice(&(4u16 + 2 + 9).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&g.value.to_le_bytes());
    out
}

/// `payload` signed as `user` with `password`.
fn sign(payload: &[u8], user: &str, password: &str) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, password.as_bytes());
    let mut signed = user.as_bytes().to_vec();
    signed.extend_from_slice(payload);
    let tag = ring::hmac::sign(&key, &signed);
    let mut out = Vec::new();
    out.extend_from_slice(&0x0200u16.to_be_bytes());
    out.extend_from_slice(&((4 + 32 + user.len()) as u16).to_be_bytes());
    out.extend_from_slice(tag.as_ref());
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(payload);
    out
}

/// The datagrams carrying `values`, as many value lists to a datagram as
/// fit, each signed as `signer` (user, password) when given.
pub fn packets(values: &[Gauge<'_>], signer: Option<(&str, &str)>) -> Vec<Vec<u8>> {
    let room = MAX_PACKET - signer.map_or(0, |(u, _)| 36 + u.len());
    let mut out = Vec::new();
    let mut current = Vec::new();
    for g in values {
        let one = encode(g);
        if !current.is_empty() && current.len() + one.len() > room {
            out.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&one);
    }
    if !current.is_empty() {
        out.push(current);
    }
    match signer {
        Some((user, password)) => out.iter().map(|p| sign(p, user, password)).collect(),
        None => out,
    }
}

/// Sends `datagrams` to 127.0.0.1:`port`, pausing now and then so that a
/// busy receiver's socket buffer is not the only thing measured.
pub fn send(port: u16, datagrams: &[Vec<u8>]) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    for (i, d) in datagrams.iter().enumerate() {
        socket
            .send_to(d, ("127.0.0.1", port))
            .expect("send a datagram");
        if i % 64 == 63 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
