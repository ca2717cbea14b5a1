//! The command line, as clap definitions. Every `list` takes `--json`; passwords are never arguments (a
//! prompt without echo on a terminal, or `--password-stdin`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Gatehouse: the authentication hub of a self-hosted mail server.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: ./gatehouse.toml if it exists).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Database URL (sqlite://…, postgres://…, mysql://…); overrides the configuration.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the public listener (web) and the internal listener (Dovecot, nginx). Creates the
    /// database, the secret key file and the first administrator if they do not exist yet.
    Serve(ServeArgs),
    /// Create the database, the secret key file and the first administrator, then exit. Every other command
    /// (but `serve`) uses an existing database only and says which one it looked for.
    Init,
    /// Check this instance's setup: the configuration and its files, the database and its migrations, the
    /// listeners and who may call them, a running server, each identity provider. Prints each finding with what
    /// to do; changes nothing. Exit 0 without problems (warnings allowed), 1 with.
    Doctor,
    /// Bring domains and mailboxes over from another mail system.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage mail domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage mailbox templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Manage mailboxes.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Manage administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage domain administrators.
    #[command(subcommand, name = "domain-admin")]
    DomainAdmin(DomainAdminCommand),
    /// Manage master users (accounts that may log in as other mailboxes).
    #[command(subcommand, name = "master-user")]
    MasterUser(MasterUserCommand),
    /// Manage app passwords (per-client credentials for mail programs).
    #[command(subcommand, name = "app-password")]
    AppPassword(AppPasswordCommand),
    /// List or remove passkeys (the WebAuthn second factor and passwordless sign-in), e.g. for a lost device.
    #[command(subcommand)]
    Passkey(PasskeyCommand),
    /// Ask the login engine for a decision, as Dovecot would (the password is read from the terminal or
    /// standard input). Exit 0 allowed, 1 denied, 75 temporary failure.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print configuration for the mail server's programs, filled in for this instance.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show or lift the brute-force guard's bans and counters (asks the running server).
    #[command(subcommand)]
    Guard(GuardCommand),
    /// Manage identity providers (LDAP directories, OpenID Connect providers, Keycloak realms).
    #[command(subcommand)]
    Idp(IdpCommand),
    /// Manage API keys for the REST API (/api/v1).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage the bearer tokens identity providers push users with (SCIM 2.0 at /scim/v2).
    #[command(subcommand, name = "scim-token")]
    ScimToken(ScimTokenCommand),
    /// Synchronise mailboxes with identity providers now (the server also runs due syncs by itself).
    Sync(SyncArgs),
    /// Show the auth log, the audit log or the job log, newest first.
    Log(LogArgs),
    /// SOGo's user list in SOGo's database (`sogo.users_url`), which the server keeps up to date by itself.
    #[command(subcommand)]
    Sogo(SogoCommand),
    /// Hash a password like `doveadm pw`, or test one against a hash (`--test`). The password is read from
    /// the terminal without echo, or as one line from standard input.
    Pw(PwArgs),
    /// Print the shell completions for bash, zsh, fish, elvish or PowerShell (the Debian package installs
    /// bash's, zsh's and fish's).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these help texts.
    #[command(hide = true)]
    Manpage,
}

/// Options of `pw`.
#[derive(Debug, Args)]
pub struct PwArgs {
    /// Scheme for the new hash: BLF-CRYPT, ARGON2ID, SHA512-CRYPT, SSHA512 or SSHA256 (default: configured).
    #[arg(short = 's', long, value_name = "SCHEME")]
    pub scheme: Option<String>,
    /// Cost or rounds for the scheme.
    #[arg(short = 'r', long, value_name = "ROUNDS")]
    pub rounds: Option<u32>,
    /// Instead of hashing, test the password against this `{SCHEME}…` hash: exit 0 on match, 1 on mismatch,
    /// 2 when the hash cannot be checked.
    #[arg(short = 't', long, value_name = "HASH", conflicts_with_all = ["scheme", "rounds"])]
    pub test: Option<String>,
}

/// `gatehouse sogo …`.
#[derive(Debug, Subcommand)]
pub enum SogoCommand {
    /// Bring the `sogo_users` table in `sogo.users_url` up to date now (creating it if needed).
    Sync,
}

/// Options of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Which log.
    #[arg(value_parser = ["auth", "audit", "jobs"])]
    pub which: String,
    /// Only entries about this user (auth), target (audit) or identity provider (jobs).
    #[arg(long)]
    pub subject: Option<String>,
    /// How many entries at most.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    #[command(flatten)]
    pub list: ListArgs,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Public listener address (web UI, API).
    #[arg(long, value_name = "ADDR")]
    pub public: Option<SocketAddr>,
    /// Internal listener address (Dovecot, nginx auth_request).
    #[arg(long, value_name = "ADDR")]
    pub internal: Option<SocketAddr>,
    /// Also serve Dovecot's auth protocol for Postfix on host:port or unix:/path.
    #[arg(long, value_name = "ADDR")]
    pub sasl: Option<String>,
    /// Also serve the internal endpoints over TLS on this address (for scripts that speak https only).
    #[arg(long, value_name = "ADDR")]
    pub internal_tls: Option<SocketAddr>,
}

/// Output choice shared by the `list` commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `sync`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this provider (default: every active provider).
    #[arg(long, value_name = "NAME")]
    pub idp: Option<String>,
    /// Show what a run would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a new password is given.
#[derive(Debug, Args, Default)]
pub struct PasswordArgs {
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Steps an administrator must take at the next web login.
#[derive(Debug, Args)]
pub struct RequiredSteps {
    /// Require (true) or stop requiring (false) a new password at the next web login.
    #[arg(long, value_name = "BOOL")]
    pub force_password_change: Option<bool>,
    /// Require (true) or stop requiring (false) TOTP enrolment at the next web login.
    #[arg(long, value_name = "BOOL")]
    pub force_totp: Option<bool>,
}

/// `domain …`
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a domain (internationalised names are stored in ASCII form).
    Add {
        /// The domain name.
        name: String,
        #[command(flatten)]
        limits: DomainLimits,
        /// Create it inactive.
        #[arg(long)]
        inactive: bool,
    },
    /// List domains with their usage.
    List(ListArgs),
    /// Change a domain.
    Edit {
        /// The domain name.
        name: String,
        #[command(flatten)]
        limits: DomainLimits,
        /// Activate (true) or deactivate (false).
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
    },
    /// Remove a domain without mailboxes.
    Remove {
        /// The domain name.
        name: String,
    },
}

/// Domain settings; 0 means "no limit" for limits and "unlimited" for quotas.
#[derive(Debug, Args)]
pub struct DomainLimits {
    /// Free-text description.
    #[arg(long)]
    pub description: Option<String>,
    /// Most mailboxes the domain may have.
    #[arg(long, value_name = "N")]
    pub max_mailboxes: Option<i64>,
    /// Quota of new mailboxes that name none.
    #[arg(long, value_name = "MIB")]
    pub default_quota_mib: Option<i64>,
    /// Largest quota of one mailbox.
    #[arg(long, value_name = "MIB")]
    pub max_quota_mib: Option<i64>,
    /// Largest sum of all mailbox quotas.
    #[arg(long, value_name = "MIB")]
    pub total_quota_mib: Option<i64>,
}

/// `template …`
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Add a mailbox template.
    Add {
        /// The template name.
        name: String,
        /// Quota of mailboxes made from it (0 = unlimited).
        #[arg(long, value_name = "MIB", default_value_t = 0)]
        quota_mib: i64,
        /// Protocols: a comma list of imap,pop3,smtp,sieve,sogo,dav,eas, or all / none.
        #[arg(long, value_name = "LIST", default_value = "all")]
        protocols: String,
        /// Mailboxes made from it start inactive.
        #[arg(long)]
        inactive: bool,
        /// Other attributes, as a JSON object.
        #[arg(long, value_name = "JSON")]
        attributes: Option<String>,
    },
    /// List templates.
    List(ListArgs),
    /// Change a template.
    Edit {
        /// The template name.
        name: String,
        /// New quota.
        #[arg(long, value_name = "MIB")]
        quota_mib: Option<i64>,
        /// New protocols.
        #[arg(long, value_name = "LIST")]
        protocols: Option<String>,
        /// New "mailboxes start active" flag.
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
        /// New attributes (replace the old ones).
        #[arg(long, value_name = "JSON")]
        attributes: Option<String>,
    },
    /// Remove a template (mailboxes made from it keep their settings).
    Remove {
        /// The template name.
        name: String,
    },
}

/// `mailbox …`
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox. Local mailboxes get a password (prompted, or from --password-stdin).
    Add {
        /// The address, local@domain; the domain must exist.
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Create a local mailbox without a password (no password login until one is set).
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
        /// Display name (default: the local part).
        #[arg(long)]
        name: Option<String>,
        /// Take unset settings from this template.
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// Quota (0 = unlimited, if the domain allows it).
        #[arg(long, value_name = "MIB")]
        quota_mib: Option<i64>,
        /// Protocols: a comma list of imap,pop3,smtp,sieve,sogo,dav,eas, or all / none.
        #[arg(long, value_name = "LIST")]
        protocols: Option<String>,
        /// `local` (default) or the name of an identity provider.
        #[arg(long, value_name = "SOURCE")]
        auth_source: Option<String>,
        /// Create it inactive.
        #[arg(long)]
        inactive: bool,
        /// The user must choose a new password at the next web login.
        #[arg(long)]
        force_password_change: bool,
    },
    /// List mailboxes.
    List {
        /// Only mailboxes of this domain.
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Change a mailbox.
    Edit {
        /// The address.
        address: String,
        /// Set a new password (prompted, or from --password-stdin).
        #[arg(long)]
        password: bool,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Apply this template (its quota and protocols, unless given too).
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// New quota.
        #[arg(long, value_name = "MIB")]
        quota_mib: Option<i64>,
        /// New protocols.
        #[arg(long, value_name = "LIST")]
        protocols: Option<String>,
        /// New auth source (`local` or an identity provider); the local password is kept either way.
        #[arg(long, value_name = "SOURCE")]
        auth_source: Option<String>,
        /// Activate (true) or deactivate (false).
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
        /// Set or clear the forced password change.
        #[arg(long, value_name = "BOOL")]
        force_password_change: Option<bool>,
        /// Require (true) or stop requiring (false) TOTP enrolment at the next web login.
        #[arg(long, value_name = "BOOL")]
        force_totp: Option<bool>,
    },
    /// Remove a mailbox and its app passwords.
    Remove {
        /// The address.
        address: String,
    },
}

/// `admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add an administrator.
    Add {
        /// Login name.
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List administrators.
    List(ListArgs),
    /// Change an administrator.
    Edit {
        /// Login name.
        username: String,
        /// Activate (true) or deactivate (false; not the last active administrator).
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
        /// Set a new password (prompted, or from --password-stdin).
        #[arg(long)]
        password: bool,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        required: RequiredSteps,
    },
    /// Remove an administrator (not the last active one).
    Remove {
        /// Login name.
        username: String,
    },
}

/// `domain-admin …`
#[derive(Debug, Subcommand)]
pub enum DomainAdminCommand {
    /// Add a domain administrator.
    Add {
        /// Login name.
        username: String,
        /// Domains it manages (comma list; each must exist).
        #[arg(long, value_name = "LIST", value_delimiter = ',', required = true)]
        domains: Vec<String>,
        /// Permissions (comma list; `login_as` lets it open its mailboxes' webmail). Default: login_as.
        #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "login_as")]
        acl: Vec<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List domain administrators.
    List(ListArgs),
    /// Change a domain administrator.
    Edit {
        /// Login name.
        username: String,
        /// Replace the managed domains.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        domains: Option<Vec<String>>,
        /// Replace the permissions (`none` for none).
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        acl: Option<Vec<String>>,
        /// Activate (true) or deactivate (false).
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
        /// Set a new password (prompted, or from --password-stdin).
        #[arg(long)]
        password: bool,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        required: RequiredSteps,
    },
    /// Remove a domain administrator.
    Remove {
        /// Login name.
        username: String,
    },
}

/// `master-user …`
#[derive(Debug, Subcommand)]
pub enum MasterUserCommand {
    /// Add a master user. Scopes: `global` (any mailbox), `domain` (mailboxes of its own domain; the name must
    /// be an address), `owned` (mailboxes of --domains).
    Add {
        /// Login name (used as `mailbox*master`).
        username: String,
        /// global, domain or owned.
        #[arg(long, value_parser = ["global", "domain", "owned"])]
        scope: String,
        /// Domains for scope `owned` (comma list).
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        domains: Vec<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List master users.
    List(ListArgs),
    /// Remove a master user.
    Remove {
        /// Login name.
        username: String,
    },
}

/// `app-password …`
#[derive(Debug, Subcommand)]
pub enum AppPasswordCommand {
    /// Create an app password; its token is printed once and cannot be shown again.
    Add {
        /// The mailbox.
        address: String,
        /// A name for it ("Thunderbird at home").
        #[arg(long)]
        name: String,
        /// Protocols it may be used for (comma list of imap,pop3,smtp,sieve,sogo,dav,eas, or all).
        #[arg(long, value_name = "LIST")]
        protocols: String,
        /// Last day it works (YYYY-MM-DD, UTC), or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
    },
    /// List the app passwords of a mailbox (never their secrets).
    List {
        /// The mailbox.
        address: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Revoke an app password; it stops working at once.
    Revoke {
        /// The mailbox.
        address: String,
        /// The app password's id (from `list`).
        id: i64,
    },
}

/// `passkey …`
#[derive(Debug, Subcommand)]
pub enum PasskeyCommand {
    /// List the passkeys of a mailbox (or, with --admin, of an administrator or domain administrator).
    List {
        /// The mailbox, or the administrator's name with --admin.
        account: String,
        /// ACCOUNT is an administrator or domain administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Remove a passkey; it stops working at once (an account left without a second factor signs in with its
    /// password alone again).
    Remove {
        /// The mailbox, or the administrator's name with --admin.
        account: String,
        /// The passkey's id (from `list`).
        id: i64,
        /// ACCOUNT is an administrator or domain administrator.
        #[arg(long)]
        admin: bool,
    },
}

/// `auth …`
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Test a login.
    Test {
        /// The user as typed (a mailbox, or `mailbox*master`).
        user: String,
        /// The service (imap, pop3, smtp, sieve, sogo, dav, eas, web).
        #[arg(long, default_value = "imap")]
        service: String,
        /// The client address to pretend.
        #[arg(long, value_name = "IP")]
        rip: Option<std::net::IpAddr>,
        /// Log in as USER with this master user's password (like a SASL authorization id).
        #[arg(long, value_name = "MASTER")]
        master: Option<String>,
    },
}

/// `import …`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Read a running mailcow's database and create or update its domains, mailbox templates, LDAP or Keycloak
    /// provider (with its secret and mappings) and mailboxes here (password hashes
    /// exactly as mailcow stored them, quotas, protocol flags, forced password change and TOTP enrolment, the
    /// identity provider a mailbox signs in at, bound to Gatehouse's provider of the same kind), its
    /// administrators and domain administrators, their TOTP keys, app passwords (their clients keep typing the
    /// same secret), app links (from mailcow's Redis) and API keys (made anew with mailcow's access and networks; the report shows each new token
    /// once). mailcow's database is only read. Running it again updates what changed and nothing else. Exit 1 when a store rule
    /// refused something (the report says what).
    Mailcow {
        /// mailcow's MariaDB database, e.g. mysql://mailcow@127.0.0.1:13306/mailcow; without a password in the
        /// URL, it is read from MAILCOW_DB_PASSWORD (which keeps it out of the process list).
        #[arg(long, value_name = "URL")]
        from: String,
        /// Say what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// mailcow.conf, for the settings Gatehouse keeps in its configuration (ALLOW_ADMIN_EMAIL_LOGIN): the
        /// report says what to set.
        #[arg(long, value_name = "PATH")]
        mailcow_conf: Option<std::path::PathBuf>,
        /// mailcow's Redis, for the app links mailcow keeps there, e.g. redis://127.0.0.1:7654 (mailcow's
        /// REDIS_PORT); without a password in the URL, it is read from MAILCOW_REDIS_PASSWORD, else from
        /// REDISPASS in --mailcow-conf. Only read.
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
    },
}

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Dovecot: the passdb configuration and the Lua script that asks Gatehouse.
    Dovecot {
        /// Which part to print.
        /// (`oauth2` and `oauth2-args`: the passdb for identity providers' access tokens and its settings file;
        /// `doveadm`: doveadm's HTTP API, through which Gatehouse empties Dovecot's auth cache of what changed —
        /// set dovecot.doveadm_url and dovecot.doveadm_api_key first.)
        #[arg(long, value_parser = ["all", "conf", "lua", "oauth2", "oauth2-args", "doveadm"], default_value = "all")]
        part: String,
        /// Where the Lua script will be installed (used in the configuration).
        #[arg(long, value_name = "PATH", default_value = "/etc/dovecot/gatehouse-passdb.lua")]
        lua_path: String,
        /// Where the oauth2 passdb's settings file will be installed (used in the configuration).
        #[arg(long, value_name = "PATH", default_value = "/etc/dovecot/gatehouse-oauth2.conf.ext")]
        oauth2_path: String,
        /// Gatehouse's /dovecot/auth URL as Dovecot reaches it (default: from the internal listener).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Gatehouse's /dovecot/oauth2 URL as Dovecot reaches it (default: from the internal listener).
        #[arg(long, value_name = "URL")]
        oauth2_url: Option<String>,
    },
    /// nginx: the locations for Gatehouse's web UI and SOGo behind Gatehouse's auth_request.
    Nginx {
        /// Gatehouse's public listener as nginx reaches it (default: from the configuration).
        #[arg(long, value_name = "URL")]
        public: Option<String>,
        /// Gatehouse's internal listener as nginx reaches it (default: from the configuration).
        #[arg(long, value_name = "URL")]
        internal: Option<String>,
        /// SOGo.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:20000")]
        sogo: String,
        /// SOGo's static files (Debian's package puts them here).
        #[arg(long, value_name = "DIR", default_value = "/usr/lib/GNUstep/SOGo/WebServerResources")]
        sogo_resources: String,
    },
    /// SOGo: the settings that make SOGo trust Gatehouse's single sign-on, and the user view it reads.
    Sogo {
        /// Dovecot's IMAP as SOGo reaches it.
        #[arg(long, value_name = "URL", default_value = "imap://127.0.0.1:143/?tls=YES")]
        imap: String,
        /// Dovecot's ManageSieve.
        #[arg(long, value_name = "URL", default_value = "sieve://127.0.0.1:4190/?tls=YES")]
        sieve: String,
        /// SMTP submission.
        #[arg(long, value_name = "URL", default_value = "smtp://127.0.0.1:587/?tls=YES")]
        smtp: String,
        /// The URL of the sogo_users view SOGo reads (default: in Gatehouse's own database, which must then be
        /// PostgreSQL or MariaDB).
        #[arg(long, value_name = "URL")]
        view_url: Option<String>,
    },
    /// Postfix: the main.cf lines for SMTP AUTH, asked of Gatehouse's auth-protocol listener (listen.sasl) or of
    /// Dovecot.
    Postfix {
        /// `gatehouse`: Postfix asks Gatehouse directly (listen.sasl must be set); `dovecot`: Postfix asks Dovecot's
        /// auth service, which asks Gatehouse.
        #[arg(long, value_parser = ["gatehouse", "dovecot"], default_value = "gatehouse")]
        via: String,
        /// With --via dovecot: Dovecot's auth socket as Postfix names it (relative to Postfix's queue directory,
        /// absolute, or inet:host:port).
        #[arg(long, value_name = "PATH", default_value = "private/auth")]
        dovecot_auth: String,
    },
    /// The shared secret callers of the internal listener send as `X-Gatehouse-Secret` (for scripts and
    /// monitoring; `config dovecot` and `config nginx` include it already).
    Secret,
}

/// `guard …`
#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// Banned addresses and failure counters of the running server.
    List(ListArgs),
    /// End the ban of an address.
    Unban {
        /// The address.
        address: std::net::IpAddr,
    },
}

/// `idp …`
#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Add an identity provider; --settings is a JSON object.
    ///
    /// ldap: hosts, port, security (plain|starttls|ldaps), ca_file, ignore_tls_errors, bind_dn, base_dn,
    /// user_filter (with %u, %n, %d), mail_attribute, template_attribute, display_name_attribute,
    /// timeout_seconds, sync_filter, disabled_filter. Its secret is the bind password.
    ///
    /// oidc: issuer, discovery (default true), authorization_endpoint, token_endpoint, userinfo_endpoint,
    /// jwks_uri, end_session_endpoint; keycloak: server_url, realm, legacy_auth_path (Keycloak before 17).
    /// Both: client_id, public_client, label, scopes, template_claim (mailcow_template), address_claim
    /// (email), require_verified_email, required_claim ({"claim":…,"value":…}), update_on_login,
    /// ignore_tls_errors, timeout_seconds. Their secret is the client secret (none for a public client).
    ///
    /// Every kind: create_on_login, default_template; ldap also periodic_sync, import_users,
    /// sync_interval_minutes, deprovision (ignore|deactivate), deprovision_threshold_percent.
    ///
    /// The secret is read from the terminal or standard input and never shown again.
    Add {
        /// Unique name; mailboxes use it as their auth source.
        name: String,
        /// ldap, oidc or keycloak.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// Settings as a JSON object.
        #[arg(long, value_name = "JSON")]
        settings: String,
        /// Read the secret (bind password, client secret) from standard input.
        #[arg(long = "secret-stdin", visible_alias = "bind-password-stdin")]
        secret_stdin: bool,
    },
    /// List identity providers (secret values are never shown).
    List(ListArgs),
    /// Show one provider's settings (secret values are never shown).
    Show {
        /// The name.
        name: String,
    },
    /// Change a provider: --settings merges the given keys into the stored settings (a key set to null
    /// returns to its default); --secret replaces the secret.
    Edit {
        /// The name.
        name: String,
        /// Settings to change, as a JSON object.
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// Ask for a new secret (bind password, client secret).
        #[arg(long = "secret", visible_alias = "bind-password")]
        secret: bool,
        /// Read a new secret from standard input.
        #[arg(long = "secret-stdin", visible_alias = "bind-password-stdin")]
        secret_stdin: bool,
        /// Activate (true) or deactivate (false); an inactive provider is not asked at login and not synchronised.
        #[arg(long, value_name = "BOOL")]
        active: Option<bool>,
    },
    /// Replace the attribute mappings: VALUE=TEMPLATE pairs (no pairs: remove all mappings). For an entry with
    /// several values of the template attribute, the first value in the entry's order that has a mapping wins.
    Map {
        /// The name.
        name: String,
        /// VALUE=TEMPLATE pairs.
        #[arg(value_name = "VALUE=TEMPLATE")]
        pairs: Vec<String>,
    },
    /// Remove an identity provider no mailbox uses.
    Remove {
        /// The name.
        name: String,
    },
    /// Test the connection step by step; with --user, show that user's entry and mapped attributes.
    Test {
        /// The name.
        name: String,
        /// An address to look up.
        #[arg(long, value_name = "ADDRESS")]
        user: Option<String>,
    },
}

/// `scim-token …`
#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Create a SCIM token for an identity provider; it is printed once and cannot be shown again.
    Add {
        /// A unique name; changes made with the token are audited as `scim:<name>`.
        name: String,
        /// The OpenID Connect or Keycloak provider whose users it pushes (its provisioning settings apply).
        #[arg(long, value_name = "NAME")]
        idp: String,
        /// The domains it may create and change mailboxes in (comma list, at least one).
        #[arg(long, value_name = "LIST", value_delimiter = ',', required = true)]
        domains: Vec<String>,
    },
    /// List SCIM tokens (never their secrets).
    List(ListArgs),
    /// Revoke a SCIM token; it stops working at once and stays listed.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `api-key …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; its token is printed once and cannot be shown again.
    Add {
        /// A unique name; changes made with the key are audited as `api-key:<name>`.
        name: String,
        /// Allow changes (default: read-only, GET requests only).
        #[arg(long)]
        read_write: bool,
        /// Networks (comma list of CIDRs or addresses) requests must come from (default: any).
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        networks: Vec<String>,
        /// Domains the key is limited to (comma list; default: all domains).
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        domains: Vec<String>,
    },
    /// List API keys (never their secrets).
    List(ListArgs),
    /// Revoke an API key; it stops working at once and stays listed.
    Revoke {
        /// The key's id (from `list`).
        id: i64,
    },
}
