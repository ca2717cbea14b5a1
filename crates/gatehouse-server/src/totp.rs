//! TOTP (RFC 6238) for web logins: secrets, enrolment URIs and QR codes, code checks, recovery codes.
