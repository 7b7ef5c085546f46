//! Reads the names an X.509 certificate (RFC 5280) gives its holder: the
//! subject's common name and the DNS and URI subject alternative names.
//!
//! Only client certificates that rustls's WebPKI verifier has already
//! accepted reach this code, so it reads just those fields and skips the
//! rest. It still treats the bytes as untrusted: every length is checked
//! against what is left, and any malformed structure is an error, never a
//! panic. DER (X.690) only: definite lengths, single-byte tags.

/// DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// DER tag of a SET.
const SET: u8 = 0x31;
/// DER tag of an INTEGER.
const INTEGER: u8 = 0x02;
/// DER tag of a BOOLEAN.
const BOOLEAN: u8 = 0x01;
/// DER tag of an OCTET STRING.
const OCTET_STRING: u8 = 0x04;
/// DER tag of an OBJECT IDENTIFIER.
const OBJECT_IDENTIFIER: u8 = 0x06;
/// `[0] EXPLICIT Version` of a TBSCertificate.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT Extensions` of a TBSCertificate.
const EXTENSIONS: u8 = 0xa3;
/// `[2] IMPLICIT IA5String dNSName` of a GeneralName.
const GENERAL_NAME_DNS: u8 = 0x82;
/// `[6] IMPLICIT IA5String uniformResourceIdentifier` of a GeneralName.
const GENERAL_NAME_URI: u8 = 0x86;

/// Contents of the OID 2.5.4.3, id-at-commonName.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// Contents of the OID 2.5.29.17, id-ce-subjectAltName.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Most bytes a DER length field may use after its first byte: four
/// bytes describe up to 4 GiB, far beyond any certificate.
const MAX_LENGTH_BYTES: usize = 4;

/// The names a certificate gives its holder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HolderNames {
    /// The subject's common name; when the subject has several, the last,
    /// which RFC 6125 §6.4.4 calls the most specific.
    pub(crate) common_name: Option<String>,
    /// `dNSName` entries of the subject alternative name extension, in order.
    pub(crate) dns_names: Vec<String>,
    /// `uniformResourceIdentifier` entries of the same extension, in order.
    pub(crate) uris: Vec<String>,
}

/// Why a certificate's names could not be read: the structure being read
/// and what was wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// The part of the certificate being read, e.g. `"subject"`.
    pub(crate) part: &'static str,
    /// What was wrong there.
    pub(crate) problem: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.problem)
    }
}

/// Reads the holder's names from a DER-encoded certificate.
pub(crate) fn holder_names(der: &[u8]) -> Result<HolderNames, Malformed> {
    let mut outer = Reader::new(der, "certificate");
    let certificate = outer.expect(SEQUENCE)?;
    outer.finish()?;
    let mut certificate = Reader::new(certificate, "certificate");
    let mut tbs = Reader::new(certificate.expect(SEQUENCE)?, "tbsCertificate");
    if tbs.peek_tag() == Some(VERSION) {
        tbs.expect(VERSION)?;
    }
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    let mut names = HolderNames { common_name: common_name(subject)?, ..HolderNames::default() };
    // What follows is issuerUniqueID [1], subjectUniqueID [2] (both
    // optional) and extensions [3].
    while !tbs.is_empty() {
        let (tag, contents) = tbs.next()?;
        if tag == EXTENSIONS {
            let mut wrapper = Reader::new(contents, "extensions");
            let extensions = wrapper.expect(SEQUENCE)?;
            wrapper.finish()?;
            read_alt_names(extensions, &mut names)?;
        }
    }
    Ok(names)
}

/// The last common name of a `Name` (a SEQUENCE OF SET OF
/// AttributeTypeAndValue), or `None` when it has none.
fn common_name(subject: &[u8]) -> Result<Option<String>, Malformed> {
    let mut found = None;
    let mut rdns = Reader::new(subject, "subject");
    while !rdns.is_empty() {
        let mut attributes = Reader::new(rdns.expect(SET)?, "subject");
        while !attributes.is_empty() {
            let mut attribute = Reader::new(attributes.expect(SEQUENCE)?, "subject attribute");
            let kind = attribute.expect(OBJECT_IDENTIFIER)?;
            let (value_tag, value) = attribute.next()?;
            attribute.finish()?;
            if kind == OID_COMMON_NAME {
                found = Some(directory_string(value_tag, value)?);
            }
        }
    }
    Ok(found)
}

/// Decodes the string types RFC 5280 allows in a DirectoryString, plus
/// IA5String, which some issuers use for common names.
fn directory_string(tag: u8, value: &[u8]) -> Result<String, Malformed> {
    const UTF8_STRING: u8 = 0x0c;
    const PRINTABLE_STRING: u8 = 0x13;
    const TELETEX_STRING: u8 = 0x14;
    const IA5_STRING: u8 = 0x16;
    const BMP_STRING: u8 = 0x1e;
    const UNIVERSAL_STRING: u8 = 0x1c;
    let bad = |problem| Malformed { part: "subject common name", problem };
    match tag {
        UTF8_STRING => String::from_utf8(value.to_vec()).map_err(|_| bad("UTF8String is not UTF-8")),
        PRINTABLE_STRING | IA5_STRING => ascii(value).ok_or_else(|| bad("string is not ASCII")),
        // TeletexString's repertoire (T.61) is in practice written as Latin-1.
        TELETEX_STRING => Ok(value.iter().map(|&byte| char::from(byte)).collect()),
        BMP_STRING => {
            if !value.len().is_multiple_of(2) {
                return Err(bad("BMPString has an odd length"));
            }
            let units = value.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| bad("BMPString is not UTF-16"))
        }
        UNIVERSAL_STRING => {
            if !value.len().is_multiple_of(4) {
                return Err(bad("UniversalString length is not a multiple of 4"));
            }
            value
                .chunks_exact(4)
                .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
                .collect::<Option<String>>()
                .ok_or_else(|| bad("UniversalString holds an invalid character"))
        }
        _ => Err(bad("not a string type")),
    }
}

/// Adds the DNS and URI names of a subjectAltName extension, if the
/// `Extensions` SEQUENCE holds one.
fn read_alt_names(extensions: &[u8], names: &mut HolderNames) -> Result<(), Malformed> {
    let mut extensions = Reader::new(extensions, "extensions");
    while !extensions.is_empty() {
        let mut extension = Reader::new(extensions.expect(SEQUENCE)?, "extension");
        let id = extension.expect(OBJECT_IDENTIFIER)?;
        if extension.peek_tag() == Some(BOOLEAN) {
            extension.expect(BOOLEAN)?; // critical
        }
        let value = extension.expect(OCTET_STRING)?;
        extension.finish()?;
        if id != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let mut wrapper = Reader::new(value, "subject alternative name");
        let general_names = wrapper.expect(SEQUENCE)?;
        wrapper.finish()?;
        let mut general_names = Reader::new(general_names, "subject alternative name");
        while !general_names.is_empty() {
            let (tag, contents) = general_names.next()?;
            let list = match tag {
                GENERAL_NAME_DNS => &mut names.dns_names,
                GENERAL_NAME_URI => &mut names.uris,
                _ => continue,
            };
            let name = ascii(contents)
                .ok_or(Malformed { part: "subject alternative name", problem: "IA5String is not ASCII" })?;
            list.push(name);
        }
    }
    Ok(())
}

fn ascii(bytes: &[u8]) -> Option<String> {
    bytes.is_ascii().then(|| bytes.iter().map(|&byte| char::from(byte)).collect())
}

/// A cursor over a run of DER TLV (tag, length, value) elements.
struct Reader<'a> {
    rest: &'a [u8],
    part: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], part: &'static str) -> Self {
        Self { rest: bytes, part }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn malformed(&self, problem: &'static str) -> Malformed {
        Malformed { part: self.part, problem }
    }

    /// The next element's tag and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), Malformed> {
        let (&tag, after_tag) =
            self.rest.split_first().ok_or(self.malformed("ends where an element was expected"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.malformed("multi-byte tag"));
        }
        let (&first, after_first) = after_tag.split_first().ok_or(self.malformed("element has no length"))?;
        let (length, after_length) = if first < 0x80 {
            (usize::from(first), after_first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(self.malformed("indefinite length is not DER"));
            }
            if count > MAX_LENGTH_BYTES {
                return Err(self.malformed("length field is too long"));
            }
            let digits = after_first.get(..count).ok_or(self.malformed("length runs past the end"))?;
            let length = digits.iter().fold(0usize, |length, &digit| (length << 8) | usize::from(digit));
            (length, &after_first[count..])
        };
        if length > after_length.len() {
            return Err(self.malformed("contents run past the end"));
        }
        let (contents, rest) = after_length.split_at(length);
        self.rest = rest;
        Ok((tag, contents))
    }

    /// The next element's contents, which must carry `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        match self.next()? {
            (actual, contents) if actual == tag => Ok(contents),
            _ => Err(self.malformed("unexpected element")),
        }
    }

    /// Fails unless every byte was read.
    fn finish(&self) -> Result<(), Malformed> {
        if self.is_empty() { Ok(()) } else { Err(self.malformed("trailing bytes")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn certificate(common_name: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        // rcgen names the subject itself unless told otherwise.
        params.distinguished_name = DistinguishedName::new();
        if let Some(name) = common_name {
            params.distinguished_name.push(DnType::OrganizationName, "Doppel tests");
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn uri(name: &str) -> SanType {
        SanType::URI(name.try_into().unwrap())
    }

    #[test]
    fn reads_common_name_and_dns_and_uri_names_in_order() {
        let der = certificate(
            Some("sensor-17"),
            vec![
                dns("sensor-17.devices.example"),
                SanType::IpAddress([127, 0, 0, 1].into()),
                uri("spiffe://doppel/device/17"),
                dns("backup.example"),
            ],
        );
        let names = holder_names(&der).unwrap();
        assert_eq!(names.common_name.as_deref(), Some("sensor-17"));
        assert_eq!(names.dns_names, ["sensor-17.devices.example", "backup.example"]);
        assert_eq!(names.uris, ["spiffe://doppel/device/17"]);
    }

    #[test]
    fn certificate_without_names_reads_as_empty() {
        let names = holder_names(&certificate(None, Vec::new())).unwrap();
        assert_eq!(names, HolderNames::default());
    }

    #[test]
    fn non_ascii_common_name_survives_as_utf8() {
        let names = holder_names(&certificate(Some("Zoë's watch"), Vec::new())).unwrap();
        assert_eq!(names.common_name.as_deref(), Some("Zoë's watch"));
    }

    #[test]
    fn bmp_and_teletex_common_names_are_decoded() {
        assert_eq!(directory_string(0x1e, &[0x00, 0x5a, 0x00, 0xeb]).unwrap(), "Zë");
        assert_eq!(directory_string(0x14, &[0x5a, 0xeb]).unwrap(), "Zë");
        assert!(directory_string(0x1e, &[0x00]).is_err());
        assert!(directory_string(0x13, &[0xc3, 0xab]).is_err());
        assert!(directory_string(0x04, b"octets").is_err());
    }

    #[test]
    fn truncated_certificate_is_malformed_not_a_panic() {
        let der = certificate(Some("truncated"), vec![dns("a.example")]);
        for length in 0..der.len() {
            assert!(holder_names(&der[..length]).is_err(), "prefix of {length} bytes was accepted");
        }
    }

    #[test]
    fn trailing_bytes_after_the_certificate_are_malformed() {
        let mut der = certificate(Some("x"), Vec::new());
        der.push(0);
        assert_eq!(holder_names(&der).unwrap_err().problem, "trailing bytes");
    }

    #[test]
    fn indefinite_and_oversized_lengths_are_refused() {
        assert_eq!(holder_names(&[0x30, 0x80, 0, 0]).unwrap_err().problem, "indefinite length is not DER");
        assert_eq!(
            holder_names(&[0x30, 0x85, 1, 0, 0, 0, 0]).unwrap_err().problem,
            "length field is too long"
        );
        assert_eq!(
            holder_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).unwrap_err().problem,
            "contents run past the end"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn names_written_by_rcgen_are_read_back(
            common_name in proptest::option::of("[a-zA-Z0-9 ._-]{1,40}"),
            dns_names in proptest::collection::vec("[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,3}", 0..4),
            uris in proptest::collection::vec("urn:doppel:[a-z0-9]{1,30}", 0..3),
        ) {
            let sans = dns_names.iter().map(|n| dns(n)).chain(uris.iter().map(|u| uri(u))).collect();
            let names = holder_names(&certificate(common_name.as_deref(), sans)).unwrap();
            prop_assert_eq!(names.common_name, common_name);
            prop_assert_eq!(names.dns_names, dns_names);
            prop_assert_eq!(names.uris, uris);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = holder_names(&bytes);
        }

        #[test]
        fn corrupted_certificates_never_panic(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut der = certificate(Some("corrupt"), vec![dns("c.example"), uri("urn:c")]);
            let index = position.index(der.len());
            der[index] = byte;
            let _ = holder_names(&der);
        }
    }
}
