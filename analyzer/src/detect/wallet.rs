//! Cryptocurrency wallet addresses, validated by their checksums so random strings do not
//! count: Monero (standard, subaddress, integrated; Monero's block base58 with a Keccak-256
//! checksum) and Bitcoin (base58check P2PKH/P2SH, bech32/bech32m segwit).

use sha2::{Digest, Sha256};
use sha3::Keccak256;

const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn b58_digit(c: u8) -> Option<u32> {
    B58.iter().position(|&d| d == c).map(|p| p as u32)
}

/// Which coin an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coin {
    Monero,
    Bitcoin,
}

impl Coin {
    pub fn name(self) -> &'static str {
        match self {
            Coin::Monero => "Monero",
            Coin::Bitcoin => "Bitcoin",
        }
    }
}

/// Monero's base58: 11-character blocks for 8 bytes; a last, shorter block maps by size.
fn monero_base58_decode(s: &str) -> Option<Vec<u8>> {
    // Encoded length → decoded length of the final partial block.
    const PARTIAL: [(usize, usize); 8] = [
        (2, 1),
        (3, 2),
        (5, 3),
        (6, 4),
        (7, 5),
        (9, 6),
        (10, 7),
        (11, 8),
    ];
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 11 + 8);
    for block in bytes.chunks(11) {
        let n = PARTIAL.iter().find(|(enc, _)| *enc == block.len())?.1;
        let mut v: u128 = 0;
        for &c in block {
            v = v * 58 + b58_digit(c)? as u128;
        }
        if n < 16 && v >> (8 * n) != 0 {
            return None;
        }
        out.extend_from_slice(&v.to_be_bytes()[16 - n..]);
    }
    Some(out)
}

/// A Monero mainnet address: standard (prefix 18, `4…`), integrated (19, `4…`, 106
/// characters) or subaddress (42, `8…`), with a valid Keccak-256 checksum.
pub fn is_monero_address(s: &str) -> bool {
    if !(s.len() == 95 || s.len() == 106) || !(s.starts_with('4') || s.starts_with('8')) {
        return false;
    }
    let Some(raw) = monero_base58_decode(s) else {
        return false;
    };
    let want_len = if s.len() == 95 { 69 } else { 77 };
    if raw.len() != want_len {
        return false;
    }
    let prefix_ok = matches!((raw[0], s.len()), (18, 95) | (42, 95) | (19, 106));
    let (body, check) = raw.split_at(raw.len() - 4);
    prefix_ok && Keccak256::digest(body)[..4] == *check
}

fn base58_decode(s: &str) -> Option<Vec<u8>> {
    let mut num: Vec<u8> = Vec::new(); // big-endian
    for &c in s.as_bytes() {
        let mut carry = b58_digit(c)?;
        for b in num.iter_mut().rev() {
            let x = (*b as u32) * 58 + carry;
            *b = (x & 0xff) as u8;
            carry = x >> 8;
        }
        while carry > 0 {
            num.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(num);
    Some(out)
}

/// A Bitcoin mainnet base58check address (P2PKH `1…`, P2SH `3…`).
fn is_base58check_btc(s: &str) -> bool {
    if !(26..=35).contains(&s.len()) || !(s.starts_with('1') || s.starts_with('3')) {
        return false;
    }
    let Some(raw) = base58_decode(s) else {
        return false;
    };
    if raw.len() != 25 || !(raw[0] == 0x00 || raw[0] == 0x05) {
        return false;
    }
    let (body, check) = raw.split_at(21);
    Sha256::digest(Sha256::digest(body))[..4] == *check
}

fn bech32_polymod(values: &[u8]) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for &v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v as u32;
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// A Bitcoin mainnet segwit address (`bc1…`), bech32 (v0) or bech32m (v1+).
fn is_bech32_btc(s: &str) -> bool {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = s.to_ascii_lowercase();
    if lower != s && s.to_ascii_uppercase() != s {
        return false; // mixed case is invalid
    }
    let Some(data) = lower.strip_prefix("bc1") else {
        return false;
    };
    if !(14..=74).contains(&lower.len()) || data.len() < 7 {
        return false;
    }
    let mut values: Vec<u8> = vec![3, 3, 0, 2, 3]; // "bc" expanded: high bits, 0, low bits
    let mut d = Vec::with_capacity(data.len());
    for c in data.bytes() {
        match CHARSET.iter().position(|&x| x == c) {
            Some(p) => d.push(p as u8),
            None => return false,
        }
    }
    values.extend_from_slice(&d);
    let pm = bech32_polymod(&values);
    match d[0] {
        0 => pm == 1,
        1..=16 => pm == 0x2bc830a3,
        _ => false,
    }
}

/// Which coin `s` is a valid address of, if any.
pub fn validate(s: &str) -> Option<Coin> {
    if is_monero_address(s) {
        Some(Coin::Monero)
    } else if is_base58check_btc(s) || is_bech32_btc(s) {
        Some(Coin::Bitcoin)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a Monero address from a prefix and 64 key bytes, as the wallet does.
    fn monero(prefix: u8, keys: &[u8; 64]) -> String {
        let mut raw = vec![prefix];
        raw.extend_from_slice(keys);
        let check = Keccak256::digest(&raw);
        raw.extend_from_slice(&check[..4]);
        let mut s = String::new();
        for block in raw.chunks(8) {
            let mut v: u128 = 0;
            for &b in block {
                v = (v << 8) | b as u128;
            }
            let enc = [0, 2, 3, 5, 6, 7, 9, 10, 11][block.len()];
            let mut chars = vec![b'1'; enc];
            for i in (0..enc).rev() {
                chars[i] = B58[(v % 58) as usize];
                v /= 58;
            }
            s.push_str(std::str::from_utf8(&chars).unwrap());
        }
        s
    }

    #[test]
    fn monero_addresses() {
        let keys: [u8; 64] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let std = monero(18, &keys);
        assert_eq!(std.len(), 95);
        assert!(std.starts_with('4'));
        assert_eq!(validate(&std), Some(Coin::Monero));
        let sub = monero(42, &keys);
        assert!(sub.starts_with('8'));
        assert_eq!(validate(&sub), Some(Coin::Monero));
        // One character changed: the checksum no longer matches.
        let mut bad = std.clone().into_bytes();
        bad[50] = if bad[50] == b'a' { b'b' } else { b'a' };
        assert_eq!(validate(std::str::from_utf8(&bad).unwrap()), None);
        // A random 95-character base58 string starting with 4 is not an address.
        assert_eq!(validate(&format!("4{}", "A".repeat(94))), None);
    }

    #[test]
    fn bitcoin_addresses() {
        // The genesis block's coinbase address, and BIP-173/BIP-350 test vectors.
        assert_eq!(
            validate("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
            Some(Coin::Bitcoin)
        );
        assert_eq!(validate("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"), None);
        assert_eq!(
            validate("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
            Some(Coin::Bitcoin)
        );
        assert_eq!(
            validate("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Some(Coin::Bitcoin)
        );
        assert_eq!(validate("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"), None);
        assert_eq!(
            validate("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
            Some(Coin::Bitcoin)
        );
    }
}

#[cfg(test)]
mod known {
    /// The Monero General Fund's published donation address.
    #[test]
    fn a_published_monero_address_validates() {
        let a = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
        assert_eq!(super::validate(a), Some(super::Coin::Monero));
    }
}
