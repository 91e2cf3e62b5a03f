//! Cross-checks against independent implementations: `oathtool` (OATH Toolkit) for HOTP/TOTP and
//! the `md5sum` command for Mobile-OTP. Both tools are required (CI installs them).

use std::process::Command;

use tessera_otp::{
    Algorithm, Code, OathParams, hotp, motp, totp, totp_step, verify_hotp, verify_motp, verify_totp,
};

/// Deterministic xorshift64 so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[3]).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(program: &str, args: &[String]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): install coreutils (md5sum)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

/// Runs `oathtool` and returns its codes, one per line.
fn oathtool(args: &[String]) -> Vec<String> {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run oathtool ({e}): install oathtool (apt-get install oathtool)")
        });
    assert!(
        out.status.success(),
        "oathtool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("oathtool prints ASCII")
        .lines()
        .map(str::to_owned)
        .collect()
}

const KEY_LENGTHS: [usize; 8] = [1, 10, 16, 20, 32, 64, 65, 100];
const WINDOW: u64 = 7;

#[test]
fn hotp_sha1_matches_oathtool() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for (i, len) in KEY_LENGTHS.into_iter().enumerate() {
        let key = rng.bytes(len);
        let digits = 6 + (i as u32 % 3);
        let counter = rng.next() >> 24;
        let codes = oathtool(&[
            "--hotp".into(),
            format!("--counter={counter}"),
            format!("--digits={digits}"),
            format!("--window={WINDOW}"),
            hex(&key),
        ]);
        assert_eq!(codes.len() as u64, WINDOW + 1);
        let p = OathParams::new(Algorithm::Sha1, digits).unwrap();
        for (c, want) in (counter..).zip(&codes) {
            let ours = Code::new(hotp(&key, c, digits, Algorithm::Sha1), digits);
            assert_eq!(ours.as_str(), want, "key {} counter {c}", hex(&key));
            assert_eq!(
                verify_hotp(&key, p, want.as_bytes(), counter, WINDOW),
                Some(c)
            );
        }
    }
}

#[test]
fn totp_all_algorithms_match_oathtool() {
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    for alg in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        for (i, len) in KEY_LENGTHS.into_iter().enumerate() {
            let key = rng.bytes(len);
            let digits = 6 + (i as u32 % 3);
            let period = [30, 60, 10, 1][i % 4];
            let now = rng.next() % 40_000_000_000;
            let codes = oathtool(&[
                format!("--totp={alg}"),
                format!("--time-step-size={period}s"),
                format!("--now=@{now}"),
                format!("--digits={digits}"),
                format!("--window={WINDOW}"),
                hex(&key),
            ]);
            assert_eq!(codes.len() as u64, WINDOW + 1);
            let p = OathParams::new(alg, digits).unwrap();
            let t = totp_step(now, period);
            for (k, want) in (0..).zip(&codes) {
                let at = now + k * period;
                let ours = Code::new(totp(&key, at, period, digits, alg), digits);
                assert_eq!(ours.as_str(), want, "{alg} key {} at {at}", hex(&key));
                assert_eq!(
                    verify_totp(&key, p, period, want.as_bytes(), now, 0, WINDOW, None),
                    Some(t + k)
                );
            }
        }
    }
}

/// oathtool's `--hotp` is SHA-1 only; a TOTP with a 1-second step at `@counter` is HOTP with
/// that counter, which covers HOTP with SHA-256 and SHA-512.
#[test]
fn hotp_sha2_matches_oathtool_via_one_second_totp() {
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    for alg in [Algorithm::Sha256, Algorithm::Sha512] {
        for len in KEY_LENGTHS {
            let key = rng.bytes(len);
            let counter = rng.next() % 10_000_000_000;
            let codes = oathtool(&[
                format!("--totp={alg}"),
                "--time-step-size=1s".into(),
                format!("--now=@{counter}"),
                "--digits=8".into(),
                hex(&key),
            ]);
            let ours = Code::new(hotp(&key, counter, 8, alg), 8);
            assert_eq!([ours.as_str()], codes.as_slice(), "{alg} counter {counter}");
        }
    }
}

#[test]
fn motp_matches_md5sum() {
    let cases: [(&str, &str, u64); 7] = [
        ("e3152afee62599c8", "1234", 1_700_000_000),
        ("e3152afee62599c8", "1234", 1_700_000_009),
        ("e3152afee62599c8", "9876", 1_111_111_111),
        ("0123456789ABCDEF", "0000", 0),
        ("0123456789abcdef", "1", 9),
        ("fedcba9876543210", "424242", 2_000_000_000),
        ("a1b2c3d4e5f60718", "55555", u64::MAX),
    ];
    for (secret, pin, time) in cases {
        let input = format!("{}{secret}{pin}", time / 10);
        let sum = run(
            "sh",
            &[
                "-c".into(),
                "printf '%s' \"$1\" | md5sum".into(),
                "sh".into(),
                input.clone(),
            ],
        );
        let want = &sum[..6];
        let ours = motp(secret.as_bytes(), pin.as_bytes(), time);
        assert_eq!(std::str::from_utf8(&ours).unwrap(), want, "md5({input})");
        assert_eq!(
            verify_motp(
                secret.as_bytes(),
                pin.as_bytes(),
                want.as_bytes(),
                time,
                0,
                None
            ),
            Some(time / 10)
        );
    }
}
