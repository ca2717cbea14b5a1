//! Services a login can be for, and the protocol sets stored on mailboxes, templates and app passwords.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A protocol a mailbox may be allowed to use. The order here is the canonical order of [`ProtocolSet`]'s
/// text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// IMAP (Dovecot `imap`).
    Imap,
    /// POP3 (Dovecot `pop3`).
    Pop3,
    /// SMTP submission / SMTP AUTH (Dovecot `smtp`, Postfix SASL).
    Smtp,
    /// ManageSieve (Dovecot `sieve`).
    Sieve,
    /// The SOGo webmail GUI.
    Sogo,
    /// CalDAV / CardDAV through SOGo.
    Dav,
    /// Exchange ActiveSync through SOGo.
    Eas,
}

impl Service {
    /// Every service, in canonical order.
    pub const ALL: [Service; 7] =
        [Service::Imap, Service::Pop3, Service::Smtp, Service::Sieve, Service::Sogo, Service::Dav, Service::Eas];

    /// The lowercase name used in configuration, the database and Dovecot's `service` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Pop3 => "pop3",
            Service::Smtp => "smtp",
            Service::Sieve => "sieve",
            Service::Sogo => "sogo",
            Service::Dav => "dav",
            Service::Eas => "eas",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Service::ALL.into_iter().find(|service| service.as_str() == wanted).ok_or_else(|| {
            Error::invalid(format!(
                "unknown protocol '{}' (expected one of: {})",
                s.trim(),
                Service::ALL.map(Service::as_str).join(", ")
            ))
        })
    }
}

/// A set of [`Service`]s, such as the protocols a mailbox may use.
///
/// Its text form is a comma-separated list in canonical order (`imap,pop3,smtp`), `all`, or `none`; that is
/// how it is written on the command line and stored in the database.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProtocolSet(u8);

impl ProtocolSet {
    /// No protocol at all.
    pub const NONE: ProtocolSet = ProtocolSet(0);
    /// Every protocol.
    pub const ALL: ProtocolSet = ProtocolSet((1 << Service::ALL.len()) - 1);

    /// Whether `service` is in the set.
    pub fn contains(self, service: Service) -> bool {
        self.0 & service.bit() != 0
    }

    /// The set with `service` added.
    pub fn with(self, service: Service) -> Self {
        ProtocolSet(self.0 | service.bit())
    }

    /// The set with `service` removed.
    pub fn without(self, service: Service) -> Self {
        ProtocolSet(self.0 & !service.bit())
    }

    /// Whether every member of `other` is in `self`.
    pub fn includes(self, other: ProtocolSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Service> {
        Service::ALL.into_iter().filter(move |service| self.contains(*service))
    }
}

impl FromIterator<Service> for ProtocolSet {
    fn from_iter<I: IntoIterator<Item = Service>>(iter: I) -> Self {
        iter.into_iter().fold(ProtocolSet::NONE, ProtocolSet::with)
    }
}

impl fmt::Display for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Service::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Debug for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtocolSet({self})")
    }
}

impl FromStr for ProtocolSet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => return Ok(ProtocolSet::ALL),
            "none" | "" => return Ok(ProtocolSet::NONE),
            _ => {}
        }
        s.split(',').map(str::trim).filter(|part| !part.is_empty()).map(Service::from_str).collect()
    }
}

impl serde::Serialize for ProtocolSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Service::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_in_canonical_order() {
        let set: ProtocolSet = "smtp, IMAP,eas".parse().unwrap();
        assert_eq!(set.to_string(), "imap,smtp,eas");
        assert_eq!(set.to_string().parse::<ProtocolSet>().unwrap(), set);
        assert!(set.contains(Service::Imap) && !set.contains(Service::Pop3));
    }

    #[test]
    fn all_and_none() {
        assert_eq!("all".parse::<ProtocolSet>().unwrap(), ProtocolSet::ALL);
        assert_eq!(ProtocolSet::ALL.to_string(), "imap,pop3,smtp,sieve,sogo,dav,eas");
        assert_eq!("none".parse::<ProtocolSet>().unwrap(), ProtocolSet::NONE);
        assert_eq!(ProtocolSet::NONE.to_string(), "none");
        assert!(ProtocolSet::ALL.includes("imap,dav".parse().unwrap()));
    }

    #[test]
    fn unknown_protocol_is_a_clear_error() {
        let err = "imap,lmtp".parse::<ProtocolSet>().unwrap_err();
        assert!(err.to_string().contains("unknown protocol 'lmtp'"), "{err}");
    }
}
