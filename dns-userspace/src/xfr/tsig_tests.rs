//! TSIG against reference signatures made by Knot's kdig (`kdig -y ALG:tsig-test.example.:SECRET
//! example. SOA`, the query captured as sent), and round trips of multi-message responses.

use super::*;
use crate::xfr::message::{self, parse, Builder};

const SECRET: &str = "eGRwZG5zLXRlc3Qta2V5LXNlY3JldC0zMi1ieXRlcyE=";

/// kdig's signed queries, one per algorithm.
const KDIG: [(&str, &str); 4] = [
    ("hmac-sha256", "100a01200001000000000001076578616d706c65000006000109747369672d74657374076578616d706c650000fa00ff00000000003d0b686d61632d7368613235360000006b0e868a012c0020419d1fa3e7fa69867f167aa194128d61888b71561ad4e065f87e9837f2aac892100a00000000"),
    ("hmac-sha1", "716d01200001000000000001076578616d706c65000006000109747369672d74657374076578616d706c650000fa00ff00000000002f09686d61632d736861310000006b0e868b012c0014c27fdbf8ed27cc8bdeb6956a92e38974b71e10ff716d00000000"),
    ("hmac-sha512", "613c01200001000000000001076578616d706c65000006000109747369672d74657374076578616d706c650000fa00ff00000000005d0b686d61632d7368613531320000006b0e868c012c0040a01e79d7f9a0d534527fbd8bd0237ce0dc8fd553c09961cd6333ec7054466dcd21bbc32fa8b247cd9e49b0c2fc26ca70b7b9871aca894134bce0053ae9757f5e613c00000000"),
    ("hmac-sha384", "675601200001000000000001076578616d706c65000006000109747369672d74657374076578616d706c650000fa00ff00000000004d0b686d61632d7368613338340000006b0e868d012c0030e2f5dd845d6c3cb3f45b5dae7b8b5447187681796fc95f65cf00989973c9bc464723488e15c147121d4cb21fec066bd1675600000000"),
];

fn key(alg: &str) -> Key {
    Key::from_config(&KeyConfig {
        name: "tsig-test.example".into(),
        algorithm: alg.into(),
        secret: SECRET.into(),
    })
    .unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn time_of(wire: &[u8]) -> u64 {
    let m = parse(wire).unwrap();
    Tsig::from_record(&m.tsig.unwrap().0).unwrap().time_signed
}

#[test]
fn verifies_kdig_signatures_for_every_algorithm() {
    for (alg, h) in KDIG {
        let wire = hex(h);
        let keys = [key(alg)];
        let now = time_of(&wire);
        let m = parse(&wire).unwrap();
        let ok = verify_request(&m, &keys, now + 10).unwrap().unwrap();
        assert_eq!(ok.key.algorithm.mnemonic(), alg);
        assert_eq!(ok.mac.len(), ok.key.algorithm.output_len());

        let late = verify_request(&m, &keys, now + 301).unwrap_err();
        assert!(matches!(late.error, TsigError::BadTime { .. }), "{alg}");
        assert_eq!(late.error.rcode(), rcode::BADTIME);

        let other = Key::new(keys[0].name.clone(), keys[0].algorithm, b"other".to_vec());
        let bad = verify_request(&m, std::slice::from_ref(&other), now).unwrap_err();
        assert_eq!(bad.error, TsigError::BadSig(other.name.clone()), "{alg}");

        let renamed = Key::new(Name::parse("k.", None).unwrap(), keys[0].algorithm, vec![1]);
        let renamed = [renamed];
        let unknown = verify_request(&m, &renamed, now).unwrap_err();
        assert_eq!(unknown.error.rcode(), rcode::BADKEY);

        // One flipped bit in the question.
        let mut flipped = wire.clone();
        flipped[14] ^= 0x20;
        let fm = parse(&flipped).unwrap();
        let e = verify_request(&fm, &keys, now).unwrap_err();
        assert!(matches!(e.error, TsigError::BadSig(_)), "{alg}");
    }
}

#[test]
fn signs_exactly_as_kdig_does() {
    for (alg, h) in KDIG {
        let wire = hex(h);
        let m = parse(&wire).unwrap();
        let (_, at) = m.tsig.unwrap();
        let mut unsigned = wire[..at].to_vec();
        unsigned[11] -= 1;
        let mac = sign_request(&mut unsigned, &key(alg), time_of(&wire));
        assert_eq!(unsigned, wire, "{alg}");
        assert_eq!(mac.len(), key(alg).algorithm.output_len());
    }
}

#[test]
fn rejects_bad_key_configuration() {
    let mut c = KeyConfig {
        name: "k".into(),
        algorithm: "hmac-md5".into(),
        secret: SECRET.into(),
    };
    let e = Key::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("unsupported algorithm"), "{e}");
    c.algorithm = "hmac-sha256".into();
    c.secret = "not base64!".into();
    let e = Key::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("k.: secret is not base64"), "{e}");
}

fn response(id: u16, n: u8) -> Vec<u8> {
    let name = Name::parse(&format!("m{n}.example."), None).unwrap();
    Builder::new(id, message::opcode::QUERY, message::FLAG_QR)
        .question(&name, rtype::A, class::IN)
        .finish()
}

/// Signs `count` messages, every `every`-th and the last.
fn stream(k: &Key, request_mac: &[u8], count: u8, every: u8) -> Vec<Vec<u8>> {
    let mut s = ResponseSigner::new(k, request_mac);
    (0..count)
        .map(|i| {
            let mut m = response(0x4242, i);
            s.next(&mut m, i % every == 0 || i == count - 1, 1000);
            m
        })
        .collect()
}

fn verify_all(k: &Key, request_mac: &[u8], msgs: &[Vec<u8>]) -> Result<(), TsigError> {
    let mut v = ResponseVerifier::new(k, request_mac);
    for m in msgs {
        v.verify(&parse(m).unwrap(), 1000)?;
    }
    v.finish()
}

#[test]
fn multi_message_responses_verify_and_tampering_fails() {
    let k = key("hmac-sha256");
    let mut req = response(0x4242, 99);
    req[2] = 0;
    let mac = sign_request(&mut req, &k, 1000);
    let msgs = stream(&k, &mac, 10, 3);
    assert!(parse(&msgs[1]).unwrap().tsig.is_none());
    assert!(parse(&msgs[3]).unwrap().tsig.is_some());
    verify_all(&k, &mac, &msgs).unwrap();

    // A changed unsigned message breaks the next signature.
    let mut t = msgs.clone();
    t[1][14] ^= 1;
    assert!(matches!(
        verify_all(&k, &mac, &t),
        Err(TsigError::BadSig(_))
    ));
    // A dropped message too.
    let mut t = msgs.clone();
    t.remove(2);
    assert!(matches!(
        verify_all(&k, &mac, &t),
        Err(TsigError::BadSig(_))
    ));
    // Another request MAC.
    assert!(verify_all(&k, &[0; 32], &msgs).is_err());
    // Cut before the final signed message.
    assert_eq!(
        verify_all(&k, &mac, &msgs[..8]),
        Err(TsigError::LastUnsigned)
    );
    // The first message unsigned.
    assert!(matches!(
        verify_all(&k, &mac, &[response(0x4242, 0)]),
        Err(TsigError::Unsigned(_))
    ));
    // 100 unsigned in a row are refused, 99 accepted.
    verify_all(&k, &mac, &stream(&k, &mac, 101, 100)).unwrap();
    let mut long = stream(&k, &mac, 102, 101);
    assert_eq!(verify_all(&k, &mac, &long), Err(TsigError::TooManyUnsigned));
    long.truncate(1);
    verify_all(&k, &mac, &long).unwrap();
}

#[test]
fn rejections_carry_the_error_and_are_reported() {
    let k = key("hmac-sha256");
    let mut req = response(7, 0);
    req[2] = 0;
    let mac = sign_request(&mut req, &k, 5000);
    let keys = [key("hmac-sha1")];
    let rej = verify_request(&parse(&req).unwrap(), &keys, 5000).unwrap_err();
    assert_eq!(rej.error.rcode(), rcode::BADKEY);
    let mut resp = response(7, 0);
    sign_rejection(&mut resp, &rej, 5000);
    let mut v = ResponseVerifier::new(&k, &mac);
    assert_eq!(
        v.verify(&parse(&resp).unwrap(), 5000),
        Err(TsigError::Rejected("BADKEY".into()))
    );

    // BADTIME is signed and carries our clock.
    let rej = verify_request(&parse(&req).unwrap(), std::slice::from_ref(&k), 9000).unwrap_err();
    let mut resp = response(7, 0);
    sign_rejection(&mut resp, &rej, 9000);
    let t = Tsig::from_record(&parse(&resp).unwrap().tsig.unwrap().0).unwrap();
    assert_eq!(
        (t.error, t.other.len(), t.mac.len()),
        (rcode::BADTIME, 6, 32)
    );
}

#[test]
fn keys_from_key_tables() {
    #[derive(serde::Deserialize)]
    struct Conf {
        key: Vec<KeyConfig>,
    }
    let c: Conf = toml::from_str(&format!(
        "[[key]]\nname = \"tsig-test.example\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\
         [[key]]\nname = \"k2.\"\nalgorithm = \"hmac-sha512\"\nsecret = \"{SECRET}\"\n"
    ))
    .unwrap();
    let keys: Vec<Key> = c.key.iter().map(|k| Key::from_config(k).unwrap()).collect();
    assert_eq!(keys[0], key("hmac-sha256"));
    assert_eq!(keys[1].algorithm, Algorithm::HmacSha512);
    // A kdig-signed query verifies with the configured ring.
    let wire = hex(KDIG[0].1);
    let m = parse(&wire).unwrap();
    assert!(verify_request(&m, &keys, time_of(&wire)).unwrap().is_some());
    let bad = toml::from_str::<Conf>("[[key]]\nname = \"k\"\nsecret = \"x\"\n");
    assert!(bad.is_err());
}
