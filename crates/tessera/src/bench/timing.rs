//! `tessera bench --mode timing`: do rejects of different causes take different times?
//!
//! One request at a time (no queueing to blur the signal), every class once per round in a
//! fresh random order (so drift of the machine falls on all classes alike). For each class:
//! the median round trip and a distribution-free 95% confidence interval for it (the order
//! statistics at n/2 ± 1.96·√n/2), then each class's median minus the first class's.

use super::two_step::{exchange, request};
use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tessera_radius::Code as RCode;

struct Class {
    name: String,
    user: String,
    passcode: String,
    rtt_us: Vec<f64>,
}

fn parse(spec: &str) -> Result<Class> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("--class {spec:?}: expected NAME=USER:PASSCODE"))?;
    let (user, passcode) = rest
        .rsplit_once(':')
        .with_context(|| format!("--class {spec:?}: expected NAME=USER:PASSCODE"))?;
    Ok(Class {
        name: name.into(),
        user: user.into(),
        passcode: passcode.into(),
        rtt_us: Vec::new(),
    })
}

/// The median of sorted `v` and its 95% confidence interval.
pub fn median_ci(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len();
    let mid = v[n / 2];
    let half = 1.96 * (n as f64).sqrt() / 2.0;
    let lo = ((n as f64 / 2.0 - half).floor().max(0.0)) as usize;
    let hi = ((n as f64 / 2.0 + half).ceil() as usize).min(n - 1);
    (mid, v[lo], v[hi])
}

pub fn run(
    target: &SocketAddr,
    secret: &str,
    specs: &[String],
    samples: usize,
    timeout: f64,
) -> Result<()> {
    if specs.len() < 2 || samples < 10 {
        bail!("--mode timing needs at least two --class and --samples >= 10");
    }
    let mut classes = specs.iter().map(|s| parse(s)).collect::<Result<Vec<_>>>()?;
    let sock = UdpSocket::bind(if target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })?;
    sock.connect(target)?;
    sock.set_read_timeout(Some(Duration::from_secs_f64(timeout)))?;
    let secret = secret.as_bytes();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let mut id: u8 = 0;
    // A short warm-up, not measured: caches, branch predictors, the server's first writes.
    for round in 0..samples + 50 {
        shuffle(&mut order)?;
        for &c in &order {
            id = id.wrapping_add(1);
            let class = &classes[c];
            let (pkt, auth) = request(secret, id, &class.user, &class.passcode, None)?;
            let started = Instant::now();
            let reply = exchange(&sock, secret, &pkt, id, &auth);
            let rtt = started.elapsed();
            match reply {
                Some((RCode::AccessReject, _)) => {}
                Some((code, _)) => {
                    bail!("class {}: expected Access-Reject, got {code:?}", class.name)
                }
                None => bail!("class {}: no valid reply within {timeout} s", class.name),
            }
            if round >= 50 {
                classes[c].rtt_us.push(rtt.as_secs_f64() * 1e6);
            }
        }
    }
    out!("tessera bench: mode=timing target={target} samples={samples} per class, interleaved");
    out!(
        "{:<14} {:>7} {:>10} {:>22} {:>10} {:>10} {:>12}",
        "class",
        "n",
        "median µs",
        "95% CI of median",
        "p10 µs",
        "p90 µs",
        "Δ median µs"
    );
    let mut first = None;
    let mut json = Vec::new();
    for c in &mut classes {
        c.rtt_us.sort_by(f64::total_cmp);
        let (m, lo, hi) = median_ci(&c.rtt_us);
        let n = c.rtt_us.len();
        let base = *first.get_or_insert(m);
        out!(
            "{:<14} {:>7} {:>10.1} {:>10.1} .. {:>8.1} {:>10.1} {:>10.1} {:>+12.1}",
            c.name,
            n,
            m,
            lo,
            hi,
            c.rtt_us[n / 10],
            c.rtt_us[n * 9 / 10],
            m - base
        );
        json.push(format!(
            "{{\"class\":\"{}\",\"n\":{n},\"median_us\":{m:.1},\"ci95_us\":[{lo:.1},{hi:.1}]}}",
            c.name
        ));
    }
    out!("[{}]", json.join(","));
    Ok(())
}

fn shuffle(v: &mut [usize]) -> Result<()> {
    for i in (1..v.len()).rev() {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("{e}"))?;
        let j = (u32::from_le_bytes(b) as usize) % (i + 1);
        v.swap(i, j);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_brackets_the_median() {
        let v: Vec<f64> = (0..1500).map(f64::from).collect();
        let (m, lo, hi) = median_ci(&v);
        assert_eq!(m, 750.0);
        assert!(lo < m && m < hi);
        assert!((hi - lo - 76.0).abs() <= 2.0, "{lo}..{hi}");
    }
}
