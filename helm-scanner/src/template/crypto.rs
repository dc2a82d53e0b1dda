//! Sprig's key and certificate functions (`genPrivateKey`, `genCA`, `genSelfSignedCert`,
//! `genSignedCert`, their `…WithKey` forms, `buildCustomCert`), `htpasswd`, and the
//! text helpers `wrap`/`wrapWith`. Keys are made as Sprig makes them (RSA 2048 for
//! certificates, RSA 4096 / P-256 ECDSA / Ed25519 for `genPrivateKey`) and written in the
//! same PEM forms (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `PRIVATE KEY`). Like Helm's, they
//! differ on every render. Every key and certificate made is recorded as generated, so
//! the scan of rendered manifests does not report a key the chart does not hold.

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{Value, json};

use super::exec::{Exec, Func};
use super::funcs::{list_of, s, to_i64, want};

/// `{ Cert, Key }`, as Sprig's `certificate` struct is seen by templates. Only the key
/// is recorded as generated: it is random throughout, where a certificate holds text
/// the chart chose (and is no secret).
fn certificate(x: &mut Exec<'_>, cert: String, key: String) -> Value {
    x.generated(&key);
    json!({ "Cert": cert, "Key": key })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element at the start of `b`: (tag, content, rest).
fn der_next(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&x| x == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The private key a PKCS#8 document wraps (PKCS#1 for RSA, SEC1 for EC).
fn pkcs8_inner(pkcs8: &[u8]) -> Option<&[u8]> {
    let (_, seq, _) = der_next(pkcs8)?;
    let (_, _, rest) = der_next(seq)?; // version
    let (_, _, rest) = der_next(rest)?; // algorithm
    let (tag, key, _) = der_next(rest)?;
    (tag == 0x04).then_some(key)
}

/// The P-256 named-curve parameters, `[0] { prime256v1 }`, Go writes into SEC1 keys.
const P256_PARAMS: [u8; 12] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// A key pair's private key in the PEM form Sprig writes.
fn key_pem(key: &KeyPair) -> Result<String, String> {
    let der = key.serialized_der();
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_RSA_SHA256 {
        let inner = pkcs8_inner(der).ok_or("RSA key: unexpected PKCS#8 layout")?;
        Ok(pem("RSA PRIVATE KEY", inner))
    } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        // SEC1 as Go's MarshalECPrivateKey writes it: version, key, [0] curve, [1] point.
        let inner = pkcs8_inner(der).ok_or("EC key: unexpected PKCS#8 layout")?;
        let (_, body, _) = der_next(inner).ok_or("EC key: bad SEC1")?;
        let (_, _, after_version) = der_next(body).ok_or("EC key: bad SEC1")?;
        let (_, _, after_key) = der_next(after_version).ok_or("EC key: bad SEC1")?;
        let head = &body[..body.len() - after_key.len()];
        let mut content = head.to_vec();
        if after_key.first() != Some(&0xa0) {
            content.extend_from_slice(&P256_PARAMS);
        }
        content.extend_from_slice(after_key);
        Ok(pem("EC PRIVATE KEY", &der_tlv(0x30, &content)))
    } else {
        Ok(pem("PRIVATE KEY", der))
    }
}

/// Key generation and bcrypt are slow on purpose: each call checks the render's clock
/// first (see [`Exec::expensive`]).
fn generate(alg: &'static rcgen::SignatureAlgorithm) -> Result<KeyPair, String> {
    KeyPair::generate_for(alg).map_err(|e| format!("error generating key: {e}"))
}

fn generate_rsa(bits: usize) -> Result<KeyPair, String> {
    let size = match bits {
        2048 => rcgen::RsaKeySize::_2048,
        _ => rcgen::RsaKeySize::_4096,
    };
    KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
        .map_err(|e| format!("error generating RSA key: {e}"))
}

/// A PEM private key given to a `…WithKey` function (PKCS#1, SEC1 or PKCS#8).
fn parse_key(text: &str) -> Result<KeyPair, String> {
    KeyPair::from_pem(text).map_err(|e| format!("error parsing private key: {e}"))
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    for chunk in b.chunks_mut(8) {
        chunk.copy_from_slice(&super::more::random_u64().to_be_bytes());
    }
    // A positive 128-bit number, as Go's `rand.Int(rand.Reader, 2^128)`.
    b[0] &= 0x7f;
    SerialNumber::from_slice(&b)
}

/// The parameters Sprig's templates set: subject CN, validity from now, a random serial,
/// and the alternative names.
fn params(cn: &str, ips: &[Value], dns: &[Value], days: i64) -> Result<CertificateParams, String> {
    if !(0..=100 * 366).contains(&days) {
        return Err(format!("daysValid {days} out of range"));
    }
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now;
    p.not_after = now + time::Duration::days(days);
    p.serial_number = Some(random_serial());
    // Go writes DNS names before IP addresses.
    for d in dns {
        let t = s(d);
        let name = t
            .clone()
            .try_into()
            .map_err(|_| format!("error parsing DNS name: {t:?}"))?;
        p.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in ips {
        let t = s(ip);
        let addr: IpAddr = t.parse().map_err(|_| format!("error parsing ip: {t}"))?;
        p.subject_alt_names.push(SanType::IpAddress(addr));
    }
    // Sprig sets BasicConstraintsValid: leaves say CA:FALSE.
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(p)
}

/// A key for a certificate: generated (RSA 2048, as Sprig), or the chart's own PEM.
enum Key {
    Generated(KeyPair),
    Given(KeyPair, String),
}

fn key_arg(v: Option<&Value>) -> Result<Key, String> {
    match v {
        None => Ok(Key::Generated(generate_rsa(2048)?)),
        Some(v) => {
            let text = s(v);
            Ok(Key::Given(parse_key(&text)?, text))
        }
    }
}

/// `{ Cert, Key }` for a certificate made with `key`; a given key is returned as given
/// (and, being the chart's, is not marked generated).
fn issued(x: &mut Exec<'_>, cert: rcgen::Certificate, key: Key) -> Result<Value, String> {
    let cert = cert.pem();
    Ok(match key {
        Key::Generated(k) => {
            let pem = key_pem(&k)?;
            certificate(x, cert, pem)
        }
        Key::Given(_, text) => json!({ "Cert": cert, "Key": text }),
    })
}

fn pair(key: &Key) -> &KeyPair {
    match key {
        Key::Generated(k) | Key::Given(k, _) => k,
    }
}

fn gen_ca(x: &mut Exec<'_>, cn: &str, days: i64, key: Key) -> Result<Value, String> {
    let mut p = params(cn, &[], &[], days)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    let cert = p
        .self_signed(pair(&key))
        .map_err(|e| format!("error creating certificate: {e}"))?;
    issued(x, cert, key)
}

fn self_signed(x: &mut Exec<'_>, a: &[Value], key: Key) -> Result<Value, String> {
    let p = params(&s(&a[0]), &list_of(&a[1])?, &list_of(&a[2])?, to_i64(&a[3]))?;
    let cert = p
        .self_signed(pair(&key))
        .map_err(|e| format!("error creating certificate: {e}"))?;
    issued(x, cert, key)
}

fn signed(x: &mut Exec<'_>, a: &[Value], key: Key) -> Result<Value, String> {
    let p = params(&s(&a[0]), &list_of(&a[1])?, &list_of(&a[2])?, to_i64(&a[3]))?;
    let ca_cert = s(a[4].get("Cert").unwrap_or(&Value::Null));
    let ca_key = parse_key(&s(a[4].get("Key").unwrap_or(&Value::Null)))
        .map_err(|e| format!("error parsing CA: {e}"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)
        .map_err(|e| format!("error parsing CA certificate: {e}"))?;
    let cert = p
        .signed_by(pair(&key), &issuer)
        .map_err(|e| format!("error creating certificate: {e}"))?;
    issued(x, cert, key)
}

/// Go's `bcrypt.DefaultCost` (the crate's default is 12).
const GO_DEFAULT_COST: u32 = 10;

/// Go's `bcrypt.GenerateFromPassword` at its default cost, as Sprig's `htpasswd` uses it.
fn htpasswd(user: &str, password: &str) -> Result<String, String> {
    if user.contains(':') {
        return Err("invalid username: contains ':'".into());
    }
    let hash = bcrypt::hash_with_result(password, GO_DEFAULT_COST)
        .map_err(|e| format!("htpasswd: {e}"))?
        .format_for_version(bcrypt::Version::TwoA);
    Ok(format!("{user}:{hash}"))
}

/// goutils' `WrapCustom`, which Sprig's `wrap` (long words kept whole) and `wrapWith`
/// (long words broken) call: byte offsets, spaces only, existing newlines not special.
fn wrap_custom(text: &str, width: i64, sep: &str, wrap_long_words: bool) -> Result<String, String> {
    let b = text.as_bytes();
    if b.is_empty() {
        return Ok(String::new());
    }
    let sep = if sep.is_empty() { "\n" } else { sep }.as_bytes();
    let width = width.clamp(1, b.len() as i64) as usize;
    let mut out: Vec<u8> = Vec::with_capacity(b.len().min(MAX_WRAP));
    let mut offset = 0;
    while b.len() - offset > width {
        if out.len() > MAX_WRAP {
            return Err(format!("wrap: result larger than {MAX_WRAP} bytes"));
        }
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let end = width + offset + 1;
        match b[offset..end].iter().rposition(|&c| c == b' ') {
            Some(at) => {
                out.extend_from_slice(&b[offset..offset + at]);
                out.extend_from_slice(sep);
                offset += at + 1;
            }
            None if wrap_long_words => {
                out.extend_from_slice(&b[offset..offset + width]);
                out.extend_from_slice(sep);
                offset += width;
            }
            None => {
                let end = width + offset;
                match b[end..].iter().position(|&c| c == b' ') {
                    None => {
                        out.extend_from_slice(&b[offset..]);
                        offset = b.len();
                    }
                    Some(i) => {
                        out.extend_from_slice(&b[offset..end + i]);
                        out.extend_from_slice(sep);
                        offset = end + i + 1;
                    }
                }
            }
        }
    }
    out.extend_from_slice(&b[offset..]);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Largest result `wrap`/`wrapWith` build (a long separator every byte multiplies).
const MAX_WRAP: usize = 64 << 20;

pub(super) fn add(m: &mut HashMap<&'static str, Func>) {
    m.insert("genPrivateKey", |x, a| {
        want(&a, 1, "genPrivateKey")?;
        x.expensive()?;
        let key = match s(&a[0]).as_str() {
            "" | "rsa" => generate_rsa(4096)?,
            "ecdsa" => generate(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            "ed25519" => generate(&rcgen::PKCS_ED25519)?,
            "dsa" => {
                return Err("genPrivateKey: dsa keys are not supported by this renderer".into());
            }
            other => return Err(format!("Unknown type {other}")),
        };
        let pem = key_pem(&key)?;
        x.generated(&pem);
        Ok(Value::String(pem))
    });
    m.insert("genCA", |x, a| {
        want(&a, 2, "genCA")?;
        x.expensive()?;
        gen_ca(x, &s(&a[0]), to_i64(&a[1]), key_arg(None)?)
    });
    m.insert("genCAWithKey", |x, a| {
        want(&a, 3, "genCAWithKey")?;
        x.expensive()?;
        gen_ca(x, &s(&a[0]), to_i64(&a[1]), key_arg(Some(&a[2]))?)
    });
    m.insert("genSelfSignedCert", |x, a| {
        want(&a, 4, "genSelfSignedCert")?;
        x.expensive()?;
        self_signed(x, &a, key_arg(None)?)
    });
    m.insert("genSelfSignedCertWithKey", |x, a| {
        want(&a, 5, "genSelfSignedCertWithKey")?;
        x.expensive()?;
        self_signed(x, &a, key_arg(Some(&a[4]))?)
    });
    m.insert("genSignedCert", |x, a| {
        want(&a, 5, "genSignedCert")?;
        x.expensive()?;
        signed(x, &a, key_arg(None)?)
    });
    m.insert("genSignedCertWithKey", |x, a| {
        want(&a, 6, "genSignedCertWithKey")?;
        x.expensive()?;
        signed(x, &a, key_arg(Some(&a[5]))?)
    });
    m.insert("buildCustomCert", |_, a| {
        want(&a, 2, "buildCustomCert")?;
        let decode = |v: &Value, what: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s(v))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("unable to decode base64 {what}"))
        };
        let cert = decode(&a[0], "certificate")?;
        let key = decode(&a[1], "private key")?;
        if !cert.contains("-----BEGIN CERTIFICATE-----") {
            return Err("unable to decode certificate".into());
        }
        parse_key(&key)?;
        // The chart's own certificate and key: not generated, so still scanned.
        Ok(json!({ "Cert": cert, "Key": key }))
    });
    m.insert("htpasswd", |x, a| {
        want(&a, 2, "htpasswd")?;
        x.expensive()?;
        let line = htpasswd(&s(&a[0]), &s(&a[1]))?;
        // Only the hash (random salt): the user name is the chart's text.
        if let Some((_, hash)) = line.split_once(':') {
            x.generated(hash);
        }
        Ok(Value::String(line))
    });
    m.insert("wrap", |_, a| {
        want(&a, 2, "wrap")?;
        Ok(Value::String(wrap_custom(
            &s(&a[1]),
            to_i64(&a[0]),
            "",
            false,
        )?))
    });
    m.insert("wrapWith", |_, a| {
        want(&a, 3, "wrapWith")?;
        Ok(Value::String(wrap_custom(
            &s(&a[2]),
            to_i64(&a[0]),
            &s(&a[1]),
            true,
        )?))
    });
}

#[cfg(test)]
mod tests {
    use crate::template::Engine;
    use serde_json::json;

    fn render(src: &str) -> (String, Vec<String>) {
        let mut e = Engine::new();
        e.add("t", src).unwrap();
        let out = e.render("t", &json!({})).unwrap();
        (out, e.take_generated())
    }

    #[test]
    fn a_ca_signs_a_certificate_that_names_its_hosts() {
        let (out, generated) = render(
            r#"{{- $ca := genCA "my-ca" 365 -}}
{{- $c := genSignedCert "web" (list "10.0.0.1") (list "web.svc" "web.svc.cluster.local") 30 $ca -}}
{{ $ca.Cert }}{{ $ca.Key }}{{ $c.Cert }}{{ $c.Key }}"#,
        );
        assert_eq!(
            out.matches("-----BEGIN CERTIFICATE-----").count(),
            2,
            "{out}"
        );
        assert_eq!(
            out.matches("-----BEGIN RSA PRIVATE KEY-----").count(),
            2,
            "{out}"
        );
        // The keys, not the certificates (text the chart chose).
        assert_eq!(generated.len(), 2);
        // openssl reads what was made: the CA, and a leaf it signed with the names asked.
        let dir = tempfile::tempdir().unwrap();
        let blocks: Vec<String> = out
            .split("-----END ")
            .filter(|b| b.contains("-----BEGIN "))
            .map(|b| {
                let start = b.find("-----BEGIN ").unwrap();
                let label = b[start + 11..].split("-----").next().unwrap().to_string();
                format!("{}-----END {label}-----\n", &b[start..])
            })
            .collect();
        assert_eq!(blocks.len(), 4);
        let ca = dir.path().join("ca.pem");
        let leaf = dir.path().join("leaf.pem");
        std::fs::write(&ca, &blocks[0]).unwrap();
        std::fs::write(&leaf, &blocks[2]).unwrap();
        if let Ok(o) = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(&leaf)
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
            let text = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(&leaf)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(
                text.contains("DNS:web.svc, DNS:web.svc.cluster.local, IP Address:10.0.0.1"),
                "{text}"
            );
            assert!(text.contains("CA:FALSE"), "{text}");
            assert!(text.contains("Subject: CN = web"), "{text}");
            let key = dir.path().join("key.pem");
            std::fs::write(&key, &blocks[3]).unwrap();
            let k = std::process::Command::new("openssl")
                .args(["rsa", "-check", "-noout", "-in"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
        }
    }

    #[test]
    fn private_keys_come_in_sprigs_pem_forms() {
        let (out, _) = render(r#"{{ genPrivateKey "ecdsa" }}{{ genPrivateKey "ed25519" }}"#);
        assert!(out.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{out}");
        assert!(out.contains("-----BEGIN PRIVATE KEY-----\n"), "{out}");
        let dir = tempfile::tempdir().unwrap();
        let ec = dir.path().join("ec.pem");
        std::fs::write(
            &ec,
            out.split("-----BEGIN PRIVATE KEY-----").next().unwrap(),
        )
        .unwrap();
        if let Ok(o) = std::process::Command::new("openssl")
            .args(["ec", "-check", "-noout", "-in"])
            .arg(&ec)
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        // A key given to a …WithKey function is used, and is the chart's: not "generated".
        let mut e = Engine::new();
        e.add(
            "t",
            r#"{{ $k := genPrivateKey "ecdsa" }}{{ (genSelfSignedCertWithKey "x" nil nil 1 $k).Key | eq $k }}"#,
        )
        .unwrap();
        assert_eq!(e.render("t", &json!({})).unwrap(), "true");
        let mut bad = Engine::new();
        bad.add("t", r#"{{ genCAWithKey "x" 1 "not a key" }}"#)
            .unwrap();
        assert!(
            bad.render("t", &json!({}))
                .unwrap_err()
                .message
                .contains("error parsing private key")
        );
        bad.add("t2", r#"{{ genPrivateKey "dsa" }}"#).unwrap();
        assert!(bad.render("t2", &json!({})).is_err());
    }

    #[test]
    fn htpasswd_and_wrap() {
        let (out, generated) = render(r#"{{ htpasswd "admin" "s3cret" }}"#);
        assert!(out.starts_with("admin:$2a$10$"), "{out}");
        assert_eq!(out.len(), "admin:".len() + 60);
        assert!(bcrypt::verify("s3cret", &out["admin:".len()..].replace("$2a$", "$2b$")).unwrap());
        assert_eq!(generated, vec![out["admin:".len()..].to_string()]);
        // A chart cannot use a user name to have its own text masked.
        let (_, generated) = render(r#"{{ htpasswd "AKIAZ7QWERTYUIOPASDF\nx" "p" }}"#);
        assert!(
            generated.iter().all(|g| !g.contains("AKIA")),
            "{generated:?}"
        );
        let mut e = Engine::new();
        e.add(
            "t",
            r#"{{ wrapWith 1 (repeat 4096 "x") (repeat 20000 "ab") }}"#,
        )
        .unwrap();
        assert!(
            e.render("t", &json!({}))
                .unwrap_err()
                .message
                .contains("larger than")
        );
        let (out, _) = render(
            r#"{{ wrap 10 "the quick brown fox jumps" }}|{{ wrapWith 5 "\t" "Hello World" }}"#,
        );
        assert_eq!(out, "the quick\nbrown fox\njumps|Hello\tWorld");
        let (out, _) = render(r#"{{ wrap 3 "abcdefg hi" }}|{{ wrapWith 3 "/" "abcdefg hi" }}"#);
        assert_eq!(out, "abcdefg\nhi|abc/def/g/hi");
    }
}
