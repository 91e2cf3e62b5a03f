//! User-Password hiding (RFC 2865 §5.2).

use tessera_radius::{DecodeError, EncodeError, hide_password, unhide_password};

const SECRET: &[u8] = b"xyzzy5461";
const AUTH: [u8; 16] = [
    0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4, 0x22, 0x7a,
];

#[test]
fn round_trips_at_block_boundaries() {
    for len in [1usize, 15, 16, 17, 31, 32, 33, 127, 128] {
        // Printable, and never NUL, which unhiding strips from the end.
        let password: Vec<u8> = (0..len).map(|i| b'!' + (i % 90) as u8).collect();
        let hidden = hide_password(&password, SECRET, &AUTH).unwrap();
        assert_eq!(hidden.len(), len.div_ceil(16) * 16, "len {len}");
        assert_ne!(&hidden[..len], &password[..]);
        let back = unhide_password(&hidden, SECRET, &AUTH).unwrap();
        assert_eq!(&back[..], &password[..], "len {len}");
        // Another authenticator or secret gives another ciphertext.
        assert_ne!(hide_password(&password, SECRET, &[0; 16]).unwrap(), hidden);
        assert_ne!(hide_password(&password, b"other", &AUTH).unwrap(), hidden);
    }
}

#[test]
fn blocks_are_chained() {
    // Two identical plaintext blocks hide to different ciphertext blocks.
    let hidden = hide_password(&[b'a'; 32], SECRET, &AUTH).unwrap();
    assert_ne!(hidden[..16], hidden[16..]);
}

#[test]
fn rejects_bad_lengths() {
    assert_eq!(
        hide_password(&[b'x'; 129], SECRET, &AUTH),
        Err(EncodeError::PasswordLength { len: 129 })
    );
    assert_eq!(
        hide_password(b"", SECRET, &AUTH),
        Err(EncodeError::PasswordLength { len: 0 })
    );
    for len in [0usize, 1, 15, 17, 127, 144] {
        assert_eq!(
            unhide_password(&vec![0x41; len], SECRET, &AUTH).err(),
            Some(DecodeError::HiddenPasswordLength { len }),
            "len {len}"
        );
    }
    assert!(unhide_password(&[0x41; 128], SECRET, &AUTH).is_ok());
}

#[test]
fn password_with_embedded_nul_keeps_it() {
    let hidden = hide_password(b"a\0b", SECRET, &AUTH).unwrap();
    assert_eq!(
        &unhide_password(&hidden, SECRET, &AUTH).unwrap()[..],
        b"a\0b"
    );
}
