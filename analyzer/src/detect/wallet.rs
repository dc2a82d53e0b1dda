//! Cryptocurrency wallet addresses, validated by their checksums so random strings do not
//! count: Monero (standard, subaddress, integrated; Monero's block base58 with a Keccak-256
//! checksum), Bitcoin (base58check P2PKH/P2SH, bech32/bech32m segwit), Litecoin, Dogecoin
//! and Ravencoin (base58check with their version bytes; Litecoin's `ltc1` bech32) and
//! Ethereum (EIP-55 mixed-case checksum; an all-lowercase address has none and counts only
//! where the caller says the context is a miner's).

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
    Litecoin,
    Dogecoin,
    Ravencoin,
    Ethereum,
}

impl Coin {
    pub fn name(self) -> &'static str {
        match self {
            Coin::Monero => "Monero",
            Coin::Bitcoin => "Bitcoin",
            Coin::Litecoin => "Litecoin",
            Coin::Dogecoin => "Dogecoin",
            Coin::Ravencoin => "Ravencoin",
            Coin::Ethereum => "Ethereum",
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

/// The version byte of a valid 25-byte base58check address.
fn base58check_version(s: &str) -> Option<u8> {
    if !(26..=35).contains(&s.len()) {
        return None;
    }
    let raw = base58_decode(s)?;
    if raw.len() != 25 {
        return None;
    }
    let (body, check) = raw.split_at(21);
    (Sha256::digest(Sha256::digest(body))[..4] == *check).then_some(raw[0])
}

/// Which coin a base58check address's version byte says (mainnet P2PKH/P2SH).
fn base58check_coin(s: &str) -> Option<Coin> {
    match base58check_version(s)? {
        0x00 | 0x05 => Some(Coin::Bitcoin),
        0x30 | 0x32 => Some(Coin::Litecoin),
        0x1e | 0x16 => Some(Coin::Dogecoin),
        0x3c | 0x7a => Some(Coin::Ravencoin),
        _ => None,
    }
}

/// An Ethereum address `0x` + 40 hex digits. With mixed case, its EIP-55 checksum must
/// hold; all one case carries no checksum, so `strict` refuses it.
pub fn is_ethereum_address(s: &str, strict: bool) -> bool {
    let Some(hex) = s.strip_prefix("0x") else {
        return false;
    };
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let lower = hex.to_ascii_lowercase();
    if hex == lower || hex == hex.to_ascii_uppercase() {
        // No checksum: at least refuse the obviously made-up.
        let first = lower.as_bytes()[0];
        return !strict && !lower.bytes().all(|b| b == first) && distinct(&lower) >= 8;
    }
    let hash = Keccak256::digest(lower.as_bytes());
    hex.bytes().enumerate().all(|(i, c)| {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        if c.is_ascii_digit() {
            true
        } else {
            c.is_ascii_uppercase() == (nibble >= 8)
        }
    })
}

fn distinct(s: &str) -> usize {
    let mut seen = [false; 256];
    s.bytes()
        .filter(|&b| !std::mem::replace(&mut seen[b as usize], true))
        .count()
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

/// A mainnet segwit address (`bc1…` Bitcoin, `ltc1…` Litecoin), bech32 (v0) or bech32m
/// (v1+).
fn bech32_coin(s: &str) -> Option<Coin> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("bc1") {
        is_bech32(s, "bc").then_some(Coin::Bitcoin)
    } else if lower.starts_with("ltc1") {
        is_bech32(s, "ltc").then_some(Coin::Litecoin)
    } else {
        None
    }
}

fn is_bech32(s: &str, hrp: &str) -> bool {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = s.to_ascii_lowercase();
    if lower != s && s.to_ascii_uppercase() != s {
        return false; // mixed case is invalid
    }
    let Some(data) = lower.strip_prefix(hrp).and_then(|r| r.strip_prefix('1')) else {
        return false;
    };
    if !(14..=74 + hrp.len() - 2).contains(&lower.len()) || data.len() < 7 {
        return false;
    }
    // The human-readable part expanded: high bits, 0, low bits.
    let mut values: Vec<u8> = hrp.bytes().map(|b| b >> 5).collect();
    values.push(0);
    values.extend(hrp.bytes().map(|b| b & 31));
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
/// Ethereum addresses count only when their EIP-55 checksum is present and right.
pub fn validate(s: &str) -> Option<Coin> {
    if is_monero_address(s) {
        Some(Coin::Monero)
    } else if s.starts_with("0x") {
        is_ethereum_address(s, true).then_some(Coin::Ethereum)
    } else {
        base58check_coin(s).or_else(|| bech32_coin(s))
    }
}

/// A wallet address found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub coin: Coin,
    pub address: String,
    pub offset: usize,
}

/// Longest run of address characters looked at (Monero integrated addresses are 106).
const MAX_TOKEN: usize = 110;

/// Checksum-valid wallet addresses in `data`, at most `max`. Tokens are runs of
/// alphanumerics; each is validated by its shape and checksum. Lowercase Ethereum
/// addresses (no checksum) count only with `context` (the caller saw miner traits).
pub fn find_in(data: &[u8], context: bool, max: usize) -> Vec<Found> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() && out.len() < max {
        if !data[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < data.len() && data[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let len = i - start;
        if !(26..=MAX_TOKEN).contains(&len) {
            continue;
        }
        // Only alphanumerics, so the bytes are ASCII.
        let tok = std::str::from_utf8(&data[start..i]).unwrap_or_default();
        let coin = match tok.as_bytes()[0] {
            b'4' | b'8' if len == 95 || len == 106 => validate(tok),
            b'0' if len == 42 => is_ethereum_address(tok, !context).then_some(Coin::Ethereum),
            b'1' | b'3' | b'L' | b'M' | b'D' | b'A' | b'9' | b'R' | b'r' if len <= 35 => {
                base58check_coin(tok)
            }
            b'b' | b'B' | b'l' | b'L' => bech32_coin(tok),
            _ => None,
        };
        if let Some(coin) = coin {
            out.push(Found {
                coin,
                address: tok.to_string(),
                offset: start,
            });
        }
    }
    out
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
mod more_coins {
    use super::*;

    /// Encode `version || payload` as base58check (the test's own encoder).
    fn base58check(version: u8, payload: &[u8; 20]) -> String {
        let mut raw = vec![version];
        raw.extend_from_slice(payload);
        let check = Sha256::digest(Sha256::digest(&raw));
        raw.extend_from_slice(&check[..4]);
        let zeros = raw.iter().take_while(|&&b| b == 0).count();
        let mut digits: Vec<u8> = Vec::new();
        for &byte in &raw {
            let mut carry = byte as u32;
            for d in digits.iter_mut() {
                carry += (*d as u32) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let mut s = "1".repeat(zeros);
        s.extend(digits.iter().rev().map(|&d| B58[d as usize] as char));
        s
    }

    #[test]
    fn version_bytes_name_the_coin() {
        let payload =
            *b"\x8a\x17\x05\x3c\x91\x42\xee\x10\x6b\x2f\x90\x01\x77\xaa\x5d\xc3\x08\x66\x4e\x21";
        for (version, coin) in [
            (0x00, Coin::Bitcoin),
            (0x30, Coin::Litecoin),
            (0x1e, Coin::Dogecoin),
            (0x3c, Coin::Ravencoin),
        ] {
            let a = base58check(version, &payload);
            assert_eq!(validate(&a), Some(coin), "{a}");
            let mut broken = a.clone().into_bytes();
            let last = broken.len() - 1;
            broken[last] = if broken[last] == b'2' { b'3' } else { b'2' };
            assert_eq!(validate(std::str::from_utf8(&broken).unwrap()), None);
        }
        assert_eq!(validate(&base58check(0x6f, &payload)), None, "testnet");
    }

    #[test]
    fn ethereum_eip55() {
        // EIP-55's own test vectors.
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        ] {
            assert_eq!(validate(a), Some(Coin::Ethereum), "{a}");
        }
        assert_eq!(validate("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"), None);
        let lower = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        assert_eq!(validate(lower), None, "no checksum");
        assert_eq!(
            find_in(lower.as_bytes(), true, 5).len(),
            1,
            "counts next to a miner"
        );
        assert!(find_in(lower.as_bytes(), false, 5).is_empty());
        assert!(find_in(b"0x0000000000000000000000000000000000000000", true, 5).is_empty());
    }

    #[test]
    fn find_in_text_and_binary() {
        let xmr = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
        let mut data = b"\x7fELF\0\0--user=".to_vec();
        data.extend_from_slice(xmr.as_bytes());
        data.extend_from_slice(b"\0 bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 sha512-");
        data.extend_from_slice(&[b'A'; 95]);
        let found = find_in(&data, false, 10);
        let coins: Vec<Coin> = found.iter().map(|f| f.coin).collect();
        assert_eq!(coins, [Coin::Monero, Coin::Bitcoin]);
        assert_eq!(found[0].offset, 13);
        assert_eq!(find_in(&data, false, 1).len(), 1, "bounded");
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
