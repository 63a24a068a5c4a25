//! The text of every configuration and validation error, pinned: users and scripts read
//! these messages, so a refactor of the error types must leave them as they are.

use std::path::Path;

use sluice_proxy::config::gateway::{JwtConfig, Rate};
use sluice_proxy::config::{parse_duration, parse_size, Config};
use sluice_proxy::policy::{jwt, pins, Gateway};

const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn jwt_config() -> JwtConfig {
    JwtConfig {
        issuer: "https://issuer.test".into(),
        audience: vec!["sluice".into()],
        jwks_file: None,
        jwks_url: None,
        client_claim: "sub".into(),
        leeway: std::time::Duration::from_secs(0),
    }
}

/// The message of each refused case, in order.
fn messages() -> Vec<String> {
    let mut out = Vec::new();
    let long = "x".repeat(5000);
    let jwt =
        "[auth.jwt]\nissuer = \"i\"\naudience = [\"a\"]\njwks_file = \"/nonexistent/jwks.json\"\n";
    for toml in [
        String::from("[[client]]\nname = \"a\"\nkey_sha256 = \"abc\"\n"),
        format!("[[client]]\nname = \"a\"\nkey_sha256 = \"{KEY}\"\n[[client]]\nname = \"a\"\nkey_sha256 = \"{KEY}\"\n"),
        String::from("[[client]]\nname = \"a\"\n"),
        format!("[[client]]\nname = \"c\"\nkey_sha256 = \"{KEY}\"\ntools = [\"{long}\"]\n"),
        format!("[[upstream]]\nurl = \"http://a:1/mcp\"\nresources = [\"{long}\"]\n"),
        format!("[[tool]]\nname = \"{long}*\"\n"),
        String::from("[[tool]]\nname = \"a\"\narguments.p = { within = \"relative/dir\" }\n"),
        String::from("[[tool]]\nname = \"a\"\narguments.p = { pattern = \"(\" }\n"),
        String::from("[[upstream]]\nurl = \"http://h/mcp\"\n[[tool]]\nname = \"a\"\nupstream = \"/other\"\n"),
        String::from("[[tool]]\nname = \"a\"\ntags = [\"x\"]\n[[sequence]]\nafter = \"y\"\ndeny = \"x\"\n"),
        String::from("[[tool]]\nname = \"a\"\ntags = [\"x\"]\n[[sequence]]\nafter = \"x\"\ndeny = \"y\"\n"),
        format!("[egress]\ndeny_hosts = [\"*.{long}\"]\n"),
        format!("[egress]\nallow_hosts = [\"{long}\"]\n"),
        jwt.to_string(),
        String::from("[[client]]\nname = \"a\"\nrate = \"5/fortnight\"\n"),
        String::from("[limits]\nmax_body = \"16 parsecs\"\n"),
        String::from("[limits]\nmax_body = \"lots\"\n"),
        String::from("[limits]\nupstream_timeout = \"soon\"\n"),
        String::from("[limits]\nupstream_timeout = \"3 fortnights\"\n"),
        String::from("[policy]\nredaction = \"blur\"\n"),
        String::from("[[upstream]]\nurl = \"ftp://h/x\"\n"),
        String::from("[[upstream]]\nurl = \"/just/a/path\"\n"),
        String::from("[[upstream]]\nurl = \"http://h/x?q=1\"\n"),
        String::from("[[upstream]]\nurl = \"http://h/x\"\nprefix = \"x\"\n"),
        String::from("[[upstream]]\nurl = \"http://h/x\"\nbearer_env = \"A\"\nbearer_file = \"b\"\n"),
        String::from("[[upstream]]\nurl = \"http://h/x\"\nbearer_env = \"SLUICE_TEST_SURELY_UNSET\"\n"),
        String::from("[[upstream]]\nurl = \"http://h/x\"\nbearer_file = \"/nonexistent/token\"\n"),
    ] {
        let shown = match Config::from_str(&toml, "t.toml") {
            Err(e) => e.to_string(),
            Ok(cfg) => match Gateway::validate(&cfg) {
                Err(e) => e.to_string(),
                Ok(()) => {
                    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                    match rt.block_on(Gateway::load(&cfg)) {
                        Err(e) => e.to_string(),
                        Ok(_) => format!("accepted: {toml}"),
                    }
                }
            },
        };
        out.push(shown);
    }
    let jwks = |text: &str| {
        jwt::Verifier::new(&jwt_config(), text)
            .err()
            .map(|e| e.to_string())
    };
    out.extend(jwks("not json"));
    out.extend(jwks(r#"{"keys":[]}"#));
    out.extend(jwks(
        r#"{"keys":[{"kty":"RSA","kid":"r","n":"!!!","e":"AQAB"}]}"#,
    ));
    out.extend(jwks(r#"{"keys":[{"kty":"RSA","n":"!!!","e":"AQAB"}]}"#));
    out.extend(
        jwt::Verifier::new(
            &JwtConfig {
                audience: vec![],
                ..jwt_config()
            },
            "{}",
        )
        .err()
        .map(|e| e.to_string()),
    );
    out.extend(
        jwt::Verifier::new(
            &JwtConfig {
                leeway: std::time::Duration::from_secs(90_000),
                ..jwt_config()
            },
            "{}",
        )
        .err()
        .map(|e| e.to_string()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for c in [
        jwt_config(),
        JwtConfig {
            jwks_url: Some("not a url".into()),
            ..jwt_config()
        },
    ] {
        out.extend(rt.block_on(jwt::load_jwks(&c)).err().map(|e| e.to_string()));
    }
    for s in ["5/fortnight", "x/s", "0/s"] {
        out.extend(Rate::parse(s).err().map(|e| e.to_string()));
    }
    for s in ["lots", "3 parsecs"] {
        out.extend(parse_size(s).err().map(|e| e.to_string()));
    }
    for s in ["soon", "3 fortnights"] {
        out.extend(parse_duration(s).err().map(|e| e.to_string()));
    }
    let dir = std::env::temp_dir().join(format!("sluice-msgs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("pins.json");
    std::fs::write(&bad, "{not json").unwrap();
    out.extend(pins::read(&bad).err().map(|e| e.to_string()));
    out.extend(pins::read(&dir).err().map(|e| e.to_string()));
    out.extend(pins::PinStore::open(&bad).err().map(|e| e.to_string()));
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    out.extend(
        pins::approve(&empty, None, &["add".into()])
            .err()
            .map(|e| e.to_string()),
    );
    out.extend(
        pins::write(Path::new("/nonexistent/dir/pins.json"), &Default::default())
            .err()
            .map(|e| e.to_string()),
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let dir = dir.display().to_string();
    out.into_iter().map(|m| m.replace(&dir, "DIR")).collect()
}

#[test]
fn messages_are_unchanged() {
    let expected = [
        "client `a`: key_sha256 must be 64 hex digits (from `sluice keys new a`)",
        "client `a` is defined twice",
        "client `a` has no key_sha256 and [auth.jwt] is not set: it could never authenticate",
        "client `c`: glob `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is longer than 4096 bytes",
        "upstream `/mcp`: glob `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is longer than 4096 bytes",
        "glob `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is longer than 4096 bytes",
        "tool `a`: argument `p`: within = `relative/dir` must be an absolute directory",
        "tool `a`: argument `p`: pattern: regex parse error:\n    (\n    ^\nerror: unclosed group",
        "tool `a`: upstream = `/other` is not the prefix of any [[upstream]]",
        "[[sequence]] after = `y`: no [[tool]] has that tag (or use finding:secret, finding:pii, finding:injection, finding:exfiltration)",
        "[[sequence]] deny = `y`: no [[tool]] has that tag",
        "[egress]: glob `*.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is longer than 4096 bytes",
        "[egress]: glob `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…` is longer than 4096 bytes",
        "[auth.jwt] jwks_file /nonexistent/jwks.json: No such file or directory (os error 2)",
        "t.toml: TOML parse error at line 3, column 8\n  |\n3 | rate = \"5/fortnight\"\n  |        ^^^^^^^^^^^^^\nrate `5/fortnight`: expected COUNT/UNIT, e.g. 20/s, 600/m, 10000/h, 50000/d",
        "t.toml: TOML parse error at line 2, column 12\n  |\n2 | max_body = \"16 parsecs\"\n  |            ^^^^^^^^^^^^\nunknown size unit `parsecs` in `16 parsecs` (B, KiB, MiB, GiB, kB, KB, MB, GB)",
        "t.toml: TOML parse error at line 2, column 12\n  |\n2 | max_body = \"lots\"\n  |            ^^^^^^\n`lots` is not a size (e.g. 16MiB, 64KiB, 1048576)",
        "t.toml: TOML parse error at line 2, column 20\n  |\n2 | upstream_timeout = \"soon\"\n  |                    ^^^^^^\n`soon` is not a duration (e.g. 30s, 250ms, 2m)",
        "t.toml: TOML parse error at line 2, column 20\n  |\n2 | upstream_timeout = \"3 fortnights\"\n  |                    ^^^^^^^^^^^^^^\nunknown duration unit `fortnights` in `3 fortnights` (s, ms, m, h)",
        "t.toml: policy.redaction: unknown redaction strategy `blur` (expected mask, partial or hash)",
        "t.toml: upstream url `ftp://h/x` must start with http:// or https://",
        "t.toml: upstream url `/just/a/path` must start with http:// or https://",
        "t.toml: upstream url `http://h/x?q=1`: a query string is not supported",
        "t.toml: upstream prefix `x` must start with `/`",
        "t.toml: upstream `http://h/x`: set bearer_env or bearer_file, not both",
        "t.toml: upstream `http://h/x`: environment variable SLUICE_TEST_SURELY_UNSET (bearer_env) is not set",
        "t.toml: upstream `http://h/x`: bearer_file /nonexistent/token: No such file or directory (os error 2)",
        "JWKS: expected ident at line 1 column 2",
        "JWKS: no RSA (2048 bits or more) or EC (P-256, P-384) public key",
        "JWKS: key r is not base64url",
        "JWKS: key without kid is not base64url",
        "[auth.jwt] audience must name at least one audience",
        "[auth.jwt] leeway must be at most 24 hours",
        "[auth.jwt] needs jwks_file or jwks_url (one of them)",
        "[auth.jwt] jwks_url not a url: invalid uri character",
        "rate `5/fortnight`: expected COUNT/UNIT, e.g. 20/s, 600/m, 10000/h, 50000/d",
        "rate `x/s`: expected COUNT/UNIT, e.g. 20/s, 600/m, 10000/h, 50000/d",
        "rate `0/s`: expected COUNT/UNIT, e.g. 20/s, 600/m, 10000/h, 50000/d",
        "`lots` is not a size (e.g. 16MiB, 64KiB, 1048576)",
        "unknown size unit `parsecs` in `3 parsecs` (B, KiB, MiB, GiB, kB, KB, MB, GB)",
        "`soon` is not a duration (e.g. 30s, 250ms, 2m)",
        "unknown duration unit `fortnights` in `3 fortnights` (s, ms, m, h)",
        "pins file DIR/pins.json: key must be a string at line 1 column 2",
        "pins file DIR: Is a directory (os error 21)",
        "pins file DIR/pins.json: key must be a string at line 1 column 2",
        "no changed tool named `add` is waiting for approval in DIR/empty.json",
        "pins file /nonexistent/dir/pins.json: No such file or directory (os error 2)",
    ];
    let got = messages();
    for (got, want) in got.iter().zip(expected) {
        assert_eq!(got, want);
    }
    assert_eq!(got.len(), expected.len());
}
