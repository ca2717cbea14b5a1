//! TOTP enrolment as the web UI shows it: the `otpauth://` URI and its QR code. The second factor itself (codes,
//! recovery codes, the decision) is the engine's ([`gatehouse_engine::totp`], re-exported here).

use gatehouse_core::{Error, Result};
pub use gatehouse_engine::totp::*;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What is percent-encoded in the label and query of an otpauth URI: everything but RFC 3986's unreserved
/// characters and `@` (allowed in both a path and a query; kept readable for addresses).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

/// The `otpauth://` URI an authenticator app enrols from (Google's Key URI format):
/// `otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`, with the issuer and
/// account percent-encoded (a colon in either is encoded, so the label stays unambiguous).
pub fn provisioning_uri(secret: &str, issuer: &str, account: &str) -> String {
    let issuer = utf8_percent_encode(issuer, URI_COMPONENT).to_string();
    let account = utf8_percent_encode(account, URI_COMPONENT);
    let secret = utf8_percent_encode(secret, URI_COMPONENT);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}"
    )
}

/// The URI as a QR code: an SVG document without XML prolog, ready to be placed inline in an HTML page.
/// Fails only for data too long for any QR code (thousands of bytes).
pub fn qr_svg(uri: &str) -> Result<String> {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::L))
        .map_err(|err| Error::invalid(format!("the enrolment URI does not fit in a QR code: {err}")))?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    Ok(match image.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(image.as_str(), |(_, svg)| svg).trim_start().to_string(),
        None => image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioning_uri_is_percent_encoded() {
        let uri = provisioning_uri("JBSWY3DPEHPK3PXP", "Example Mail", "alice@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Mail:alice@example.org?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Mail\
             &algorithm=SHA1&digits=6&period=30"
        );
        let odd = provisioning_uri("ABC", "A:B&C=D?/é", "x:y#z+w");
        assert_eq!(
            odd,
            "otpauth://totp/A%3AB%26C%3DD%3F%2F%C3%A9:x%3Ay%23z%2Bw?secret=ABC&issuer=A%3AB%26C%3DD%3F%2F%C3%A9\
             &algorithm=SHA1&digits=6&period=30"
        );
        let parsed = url::Url::parse(&odd).unwrap();
        assert_eq!(parsed.scheme(), "otpauth");
        let issuer = parsed.query_pairs().find(|(k, _)| k == "issuer").unwrap().1;
        assert_eq!(issuer, "A:B&C=D?/é");
    }

    #[test]
    fn qr_code_is_an_inline_svg() {
        let uri = provisioning_uri(&new_secret(), "Gatehouse", "alice@example.org");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("#000000"));
        assert!(qr_svg(&"x".repeat(10_000)).is_err());
    }
}
