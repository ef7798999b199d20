//! Command-line grammar.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};

/// tracecast: content distribution where every copy carries a keyed,
/// invisible mark of its recipient.
#[derive(Debug, Parser)]
#[command(name = "tracecast", version, about)]
pub struct Cli {
    /// No progress bars or chatter (for scripts).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new random 32-byte mark key.
    Keygen(KeygenArgs),
    /// Embed or detect forensic marks.
    #[command(subcommand)]
    Mark(MarkCommand),
    /// Watch a whole distribution run on loopback: a provider publishes,
    /// three users buy through two edges, a copy leaks and is traced.
    Demo(DemoArgs),
    /// Run the servers (origin, edge, mailbox) until Ctrl-C or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Add accounts at the origin: providers, users, edges (administrator).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Publish and list content (provider).
    #[command(subcommand)]
    Content(ContentCommand),
    /// Buy a content: designation, a copy marked for you, a download that
    /// resumes; or through a home server (--home, --rent) or a store's
    /// kiosk (--kiosk, --medium) (user).
    Buy(BuyArgs),
    /// Members admitted by referral with trust (DESIGN.md "004").
    #[command(subcommand)]
    Members(MembersCommand),
    /// Home servers and kiosks to buy through, with their fees and media.
    Sites(SitesArgs),
    /// End a rental viewed from a home server (user).
    #[command(subcommand)]
    Rental(RentalCommand),
    /// Your invoice: what you owe, line by line (user; administrators name
    /// the user).
    Bill(BillArgs),
    /// Pay your balance through the origin's payment provider (user).
    Pay(PayArgs),
    /// The ledger: export every posting, or every party's balance
    /// (administrator).
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Delivery through a CDN: publish A/B variants where the CDN reads
    /// them, print the key the CDN checks tokens with (administrator).
    #[command(subcommand)]
    Cdn(CdnCommand),
    /// A provider's contracts with edge operators: register to use an
    /// edge at its published terms, list, end.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// A store's kiosk: disc images waiting for the burner (the shop's
    /// operator, with the kiosk's token).
    #[command(subcommand)]
    Kiosk(KioskCommand),
    /// Read the mark of a file and look its delivery up at the origin.
    Trace(TraceArgs),
    /// Licences for protected content: get one for your delivery in your
    /// protection system, or make your age or device key.
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Decrypt a protected copy with your licence and your key.
    Decrypt(DecryptArgs),
    /// Administer boxes and send messages.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Your own box: fetch mail into a local inbox, list, read, protect,
    /// save what was shared with you (attachments and download links).
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// The service server for sharing from devices: issue device accounts,
    /// name mailboxes by number (administrator).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// A device without its own uplink (a camera, a tablet): set up with a
    /// gateway on the local network, then share files through it.
    #[command(subcommand)]
    Device(DeviceCommand),
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Device accounts.
    #[command(subcommand)]
    Account(ServiceAccountCommand),
    /// Gateways: switch the service off for one (every upload, link and
    /// device set-up through it refused), or on again.
    Gateway {
        /// The gateway's account name.
        name: String,
        #[arg(value_parser = ["suspend", "activate"])]
        action: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Name a mailbox by a phone number, so a gateway's user can type it.
    Number {
        /// e.g. +81 90 1234 5678
        number: String,
        /// The box it names: a user's name (bob) or a box (user:bob).
        #[arg(name = "BOX")]
        box_name: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Issue a device account (TCA-dddd-dddd-dddd, with a check digit)
    /// and its set-up code, shown once: the device needs both.
    Issue {
        /// Who or what it is for.
        label: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Write the set-up code to this file (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        code_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Give an account a new set-up code (lost, or issued before codes);
    /// the old code stops working.
    Code {
        account: String,
        /// Write the code to this file (mode 0600) instead of printing it.
        #[arg(long)]
        code_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Switch the service off for a device account.
    Suspend {
        account: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Switch it on again.
    Activate {
        account: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Find a gateway (mDNS, or --gateway) and switch the service on with
    /// the device's account, model and hardware.
    Setup {
        /// The account the service issued (TCA-dddd-dddd-dddd).
        #[arg(long)]
        account: String,
        /// The set-up code issued with the account (prefer --code-file or
        /// TRACECAST_SETUP_CODE: arguments show in `ps`).
        #[arg(long, env = "TRACECAST_SETUP_CODE", hide_env_values = true)]
        code: Option<String>,
        /// File holding the set-up code.
        #[arg(long, conflicts_with = "code")]
        code_file: Option<PathBuf>,
        /// The device's model.
        #[arg(long)]
        model: String,
        /// What the device is (e.g. "wifi, 64 GB, 4K video").
        #[arg(long)]
        hardware: String,
        /// The gateway's address; without it, gateways are looked for on
        /// the local network with mDNS (_tracecast-gw._tcp).
        #[arg(long)]
        gateway: Option<String>,
        /// Seconds to look for gateways.
        #[arg(long, default_value_t = 3)]
        discover_secs: u64,
        /// Include gateways on this machine's loopback (one-machine set-ups).
        #[arg(long)]
        loopback: bool,
        /// Where the device keeps its gateway and token.
        #[arg(
            long,
            env = "TRACECAST_DEVICE_STATE",
            default_value = "tracecast-device.json"
        )]
        state: PathBuf,
    },
    /// Share a file: the gateway's user composes the message (text and
    /// recipient); large files travel as a download link.
    Send {
        file: PathBuf,
        /// A recipient to suggest (a number or a user's name).
        #[arg(long)]
        to: Option<String>,
        /// Text to suggest.
        #[arg(long)]
        text: Option<String>,
        /// Media type (guessed from the name when absent).
        #[arg(long = "type")]
        media_type: Option<String>,
        #[arg(
            long,
            env = "TRACECAST_DEVICE_STATE",
            default_value = "tracecast-device.json"
        )]
        state: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Check the settings (file, environment, flags), print what would
    /// run, and exit: 0 when valid, 2 with every problem listed.
    #[arg(long)]
    pub check: bool,
    /// Print every option of the settings file (key, type, default, roles,
    /// environment variable, meaning) as a Markdown table, and exit.
    #[arg(long)]
    pub options: bool,
    #[command(flatten)]
    pub flags: tracecast_server::node::Flags,
}

/// Where the server is and who you are.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server URL (the origin, which also hosts the mailbox).
    #[arg(
        long,
        env = "TRACECAST_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
    /// Token (prefer --token-file or TRACECAST_TOKEN: arguments show in `ps`).
    #[arg(long, env = "TRACECAST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long, env = "TRACECAST_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl Connection {
    /// The token, from --token, TRACECAST_TOKEN or the token file.
    pub fn token(&self) -> anyhow::Result<String> {
        use anyhow::Context;
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(t.trim().to_owned()),
            (None, Some(path)) => Ok(std::fs::read_to_string(path)
                .with_context(|| format!("reading the token from {}", path.display()))?
                .trim()
                .to_owned()),
            (None, None) => {
                anyhow::bail!("no token: pass --token-file FILE or set TRACECAST_TOKEN")
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Create a box (administrator token) and print its token.
    CreateBox {
        /// e.g. user:alice, device:cam-1, role:origin
        name: String,
        /// Notify this URL when mail arrives (for servers).
        #[arg(long)]
        webhook: Option<String>,
        /// Write the new box's token to this file (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        token_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Send a message to a box.
    Send {
        /// The recipient's box.
        #[arg(long)]
        to: String,
        /// Media type (guessed from the file name when absent).
        #[arg(long = "type")]
        media_type: Option<String>,
        /// Protect it from overwrite in the recipient's inbox.
        #[arg(long)]
        protect: bool,
        /// Seconds before it expires unfetched.
        #[arg(long)]
        ttl: Option<u64>,
        /// Idempotency key: sending again with the same key lands once.
        #[arg(long)]
        key: Option<String>,
        /// File to send, or - for standard input.
        file: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Counters of your box on the server.
    Status {
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Fetch mail into the inbox directory, acknowledging each message once
    /// it is on disk.
    Fetch(FetchArgs),
    /// List the inbox.
    List {
        #[arg(long, env = "TRACECAST_INBOX", default_value = "tracecast-data/inbox")]
        dir: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a message's body (or write it to --out) and mark it read.
    Read {
        #[arg(long, env = "TRACECAST_INBOX", default_value = "tracecast-data/inbox")]
        dir: PathBuf,
        id: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Save what a shared message carries into a directory: its text,
    /// its attachment, or the file behind its download link (resuming).
    Save {
        #[arg(long, env = "TRACECAST_INBOX", default_value = "tracecast-data/inbox")]
        dir: PathBuf,
        id: String,
        /// Where the files go.
        #[arg(long)]
        out: PathBuf,
        /// The mailbox server the message came from (its own service
        /// server's links are trusted).
        #[arg(
            long,
            env = "TRACECAST_SERVER",
            default_value = "http://127.0.0.1:7070"
        )]
        server: String,
        #[command(flatten)]
        links: LinkArgs,
    },
    /// Protect a message from overwrite (or --off to lift it).
    Protect {
        #[arg(long, env = "TRACECAST_INBOX", default_value = "tracecast-data/inbox")]
        dir: PathBuf,
        id: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Inbox directory.
    #[arg(long, env = "TRACECAST_INBOX", default_value = "tracecast-data/inbox")]
    pub dir: PathBuf,
    /// Room by size: stop (or overwrite read messages) beyond this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Room by count: at most this many messages in the inbox.
    #[arg(long)]
    pub max_count: Option<u64>,
    /// What the server does with each stored message.
    #[arg(
        long,
        default_value = "delete",
        value_parser = clap::builder::PossibleValuesParser::new(["delete", "move"])
            .try_map(|s| s.parse::<tracecast_mailbox::Disposition>())
    )]
    pub then: tracecast_mailbox::Disposition,
    /// Keep running: wait for notifications and fetch as mail arrives.
    #[arg(long)]
    pub watch: bool,
    /// Seconds to keep repeating a request while the server is unreachable.
    #[arg(long, default_value_t = 30)]
    pub retry_for: u64,
    /// Print a JSON report at the end.
    #[arg(long)]
    pub json: bool,
    /// Save what shared messages carry into this directory as they arrive
    /// (attachments, and the files behind download links).
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub links: LinkArgs,
    #[command(flatten)]
    pub conn: Connection,
}

/// Which links in shared messages are fetched. A message's sender is
/// the mailbox's word; a link is fetched only when a gateway sent it and
/// it points at a trusted service server.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// A service server whose download links are fetched (repeatable;
    /// the mailbox server's own address is always trusted). Links
    /// anywhere else are shown, not fetched.
    #[arg(long = "service", env = "TRACECAST_SERVICE", value_delimiter = ',')]
    pub services: Vec<String>,
    /// Fetch every link in a shared message, whoever sent it and wherever
    /// it points.
    #[arg(long)]
    pub follow_any_link: bool,
}

impl LinkArgs {
    /// The policy, trusting `server` (the mailbox's own address) too.
    pub fn policy(&self, server: &str) -> tracecast_client::LinkPolicy {
        let mut trusted = self.services.clone();
        trusted.push(server.to_owned());
        tracecast_client::LinkPolicy {
            trusted,
            follow_any: self.follow_any_link,
        }
    }
}

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add a provider, user, edge, home server, kiosk, or a party that
    /// settles (an operator, store or building manager); prints its id and
    /// token (shown once).
    Add {
        /// provider, user, edge, home, kiosk, partner (a roaming server),
        /// gateway (a phone that shares from devices), or operator (runs
        /// edges or homes), store (runs a kiosk), manager (pays a home's
        /// fees): these three read their statements and pay with their
        /// token, named as edges, homes and kiosks name them (--operator,
        /// --payer manager:NAME)
        kind: tracecast_delivery::AccountKind,
        /// Lower-case name: letters, digits, '.', '_', '-'.
        name: String,
        /// Edges, homes, kiosks: the URL it is reached at
        /// (http://host:port/edge, /home or /kiosk).
        #[arg(long)]
        address: Option<String>,
        /// Edges, homes, kiosks: who runs it (receives its fees).
        #[arg(long)]
        operator: Option<String>,
        /// Edges: usage fee per delivery, paid by the provider; homes: usage
        /// fee per delivery or rental; kiosks: agency fee per order (e.g.
        /// 0.05).
        #[arg(long)]
        fee: Option<String>,
        /// Homes: who pays the usage fee: user (default), or a building
        /// manager's ledger account (manager:maple-court).
        #[arg(long)]
        payer: Option<String>,
        /// Kiosks: media sold and their prices (cd-r=1.50,dvd-r=3.00).
        #[arg(long)]
        media: Option<String>,
        /// Kiosks: what posting a disc costs (e.g. 4.00).
        #[arg(long)]
        shipping: Option<String>,
        /// Edges: where it stands (eu-west-1): with no edge holding a
        /// rendition, the one nearest the buyer serves.
        #[arg(long)]
        region: Option<tracecast_delivery::Region>,
        /// Edges: open to every provider at --fee, without a contract
        /// (default: only providers who signed one, `tracecast contract add`).
        #[arg(long)]
        open: bool,
        /// Edges: a contract's fee per period (e.g. 25.00)...
        #[arg(long, requires = "period_days")]
        period_fee: Option<String>,
        /// ...every this many days.
        #[arg(long, requires = "period_fee")]
        period_days: Option<u32>,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show who a token belongs to.
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
    /// Replace a token: the caller's own, or (administrator) the account
    /// named. Every earlier token of the account stops working; the new
    /// one is shown once.
    Token {
        /// With NAME: the account's kind (user, provider, edge, …).
        kind: Option<tracecast_delivery::AccountKind>,
        /// The account's name.
        name: Option<String>,
        /// Write the new token to this file (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        token_out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Upload a file (WAV, FLAC, MP3, Ogg, PNG, JPEG) to be made into
    /// renditions.
    Add {
        file: PathBuf,
        #[arg(long)]
        title: String,
        /// Price of a copy, e.g. 1.99.
        #[arg(long, default_value = "0")]
        price: String,
        /// Terms written into every copy's metadata.
        #[arg(long)]
        terms: Option<String>,
        /// What renting it from a home server costs: 0.50/hour,
        /// 0.02/minute max 3.00 or 1.50/day (default: the origin's).
        #[arg(long)]
        rental: Option<String>,
        /// Reserve it for members up to this order: members of higher
        /// orders need their upstream members' approval (`members ask`).
        #[arg(long, value_name = "ORDER")]
        reserved_up_to: Option<i64>,
        /// Deliver copies encrypted: buyers open them with a licence
        /// (`tracecast licence get`, `tracecast decrypt`).
        #[arg(long)]
        protect: bool,
        /// Pre-mark the content twice (A/B variants): edges then assemble
        /// each buyer's copy from the two by segment, at copy speed (audio:
        /// a FLAC; video: the buyer's own HLS playlist), and copies mixed
        /// by colluding buyers still trace to one of them; an excerpt
        /// needs about 32 s from the start to trace. The same as
        /// `--marking ab`. See docs/ab.md.
        #[arg(long, conflicts_with = "marking")]
        ab: bool,
        /// How copies are marked: `direct` (the default: each copy marked
        /// by the edge), `ab`, or `auto` (A/B for audio of about 33 s or
        /// more that is not protected, direct otherwise).
        #[arg(long, value_name = "auto|direct|ab")]
        marking: Option<tracecast_delivery::ab::Marking>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Reserve a content for members up to an order, or free it (the
    /// content's provider, or an administrator).
    Reserve {
        id: i64,
        /// Members of this order or lower receive it freely.
        #[arg(long, value_name = "ORDER", required_unless_present = "free")]
        up_to_order: Option<i64>,
        /// No longer reserved.
        #[arg(long, conflicts_with = "up_to_order")]
        free: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// The catalog.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Have edges fetch a rendition ahead of demand.
    PrePosition {
        id: i64,
        #[arg(long)]
        tier: Option<String>,
        /// Edge ids (default: every edge).
        #[arg(long = "edge")]
        edges: Vec<i64>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Args)]
pub struct BuyArgs {
    pub content: i64,
    /// Where to write the copy (an unfinished download waits in FILE.part);
    /// not for rentals and kiosk orders. A FILE ending in `.mp3` gets the
    /// copy as MP3, for contents with MP3 A/B variants (their tier, when
    /// none is named); refused before buying for others.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Deliver through this home server: it keeps the copy until you have
    /// downloaded it on your LAN, then deletes it.
    #[arg(long)]
    pub home: Option<String>,
    /// With --home: rent instead of buying; play it from the home server
    /// (HLS or HTTP Range) and pay by the content's rental tariff.
    #[arg(long, requires = "home")]
    pub rent: bool,
    /// Order a disc from this store's kiosk.
    #[arg(long, conflicts_with = "home", requires = "medium")]
    pub kiosk: Option<String>,
    /// With --kiosk: cd-r, dvd-r, dvd-r-dl, bd-r, bd-r-dl, usb-16g…
    #[arg(long)]
    pub medium: Option<String>,
    /// With --kiosk: post the disc to this address (default: pick it up).
    #[arg(long)]
    pub ship_to: Option<String>,
    /// lossless, high or preview (audio); full, large or small (pictures).
    #[arg(long)]
    pub tier: Option<String>,
    /// Keep retrying an edge that stopped answering this long (seconds)
    /// before asking the origin for another.
    #[arg(long, default_value_t = 20)]
    pub retry_for: u64,
    /// Download no faster than this many bytes per second (K, M suffixes).
    #[arg(long)]
    pub limit_rate: Option<String>,
    /// A key naming this purchase (scripts): run again with the same key,
    /// after a crash or a lost answer, it continues the same purchase and
    /// never bills twice. Default: a new key for every run.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Through the origin's CDN (A/B audio): the copy comes from the CDN
    /// with a watermarking token; billed when the token is issued.
    #[arg(long, conflicts_with_all = ["home", "kiosk"])]
    pub cdn: bool,
    /// Where you are (eu-west-1), for the nearest edge; default: the
    /// origin estimates it from your address.
    #[arg(long)]
    pub region: Option<tracecast_delivery::Region>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    pub file: PathBuf,
    /// The content the file is a copy of, for pre-marked (A/B) content
    /// whose metadata was stripped: its segments are read against its
    /// collusion-resistant code.
    #[arg(long)]
    pub content: Option<i64>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (created with mode 0600; never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum MarkCommand {
    /// Mark a copy for its recipient.
    Embed(EmbedArgs),
    /// Look for a mark and print who received the copy.
    Detect(DetectArgs),
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Mark key file (from `tracecast keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Content server id (0-65535).
    #[arg(long)]
    pub content_server: u16,
    /// Delivery (edge) server id (0-65535).
    #[arg(long)]
    pub edge: u16,
    /// Recipient user id (0-4294967295).
    #[arg(long)]
    pub user: u32,
    /// Home server id (0 = none).
    #[arg(long, default_value_t = 0)]
    pub home: u16,
    /// Mark strength relative to the default (0.25-4): higher survives
    /// harsher attacks and shorter excerpts at a lower signal-to-noise ratio
    /// (for pictures, PSNR drops by 20·log10(strength) dB).
    #[arg(long, default_value_t = 1.0, value_parser = parse_strength)]
    pub strength: f32,
    /// Quality of JPEG output (1-100).
    #[arg(long, default_value_t = tracecast_media::DEFAULT_JPEG_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Input media: WAV, FLAC, MP3, Ogg Vorbis, AAC (M4A); or a PNG or JPEG
    /// picture.
    pub input: PathBuf,
    /// Output: .wav or .flac for audio (same sample rate and channels as the
    /// input); .png, .jpg or .jpeg for a picture.
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Mark key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Print one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
    /// The suspected copy.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory (data, copies, leaks); cleared first.
    #[arg(long, default_value = "tracecast-data/demo")]
    pub dir: PathBuf,
    /// A directory of media to publish (audio and pictures) instead of
    /// generated music and the bundled photo.
    #[arg(long)]
    pub media: Option<PathBuf>,
}

fn parse_strength(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.25..=4.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("strength {v} is outside 0.25-4"))
    }
}

#[derive(Debug, Subcommand)]
pub enum RentalCommand {
    /// End a rental: the home server deletes the copy and reports the
    /// viewing time, which sets the fee.
    End {
        /// The rental's end link (printed by `buy --rent`), or the JSON
        /// file `buy --rent --json` wrote.
        link: String,
    },
}

#[derive(Debug, Args)]
pub struct BillArgs {
    /// Administrators: whose invoice, a user's name or a ledger account
    /// (`operator:fastnet`, `store:corner`, `manager:maple-court`).
    pub user: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Args)]
pub struct PayArgs {
    /// How much (e.g. 4.50); default: the whole balance.
    #[arg(long)]
    pub amount: Option<String>,
    /// A reference for the payment provider (the manual provider records
    /// it: "cash at the counter", a bank reference).
    #[arg(long, default_value = "")]
    pub note: String,
    /// The same key pays once however often the command is retried
    /// (default: a new key).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Register to use EDGE (provider): its usage fee per delivery and any
    /// fee per period (the first owed now), as `tracecast contract list`
    /// and the edge registry show them.
    Add {
        edge: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Contracts: a provider's own, an edge's, or all (administrator).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// End the contract with EDGE (provider): it stops serving your
    /// content; periods begun stay owed.
    End {
        edge: String,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum CdnCommand {
    /// Copy a content's FLAC A/B variants and frame index, hash-checked,
    /// into DIR/CONTENT/TIER/ (a.flac, b.flac, index): what the reference
    /// CDN edge (deploy/cdn/) serves from, or what to sync to the bucket
    /// a CDN pulls from.
    Publish {
        content: i64,
        #[arg(long, default_value = "high")]
        tier: String,
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// The origin's ES256 key for watermarking tokens, as PEM (and its key
    /// id on standard error): the CDN's verification key.
    Key {
        /// Write the PEM here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Every posting, for accountants.
    Export {
        #[arg(long, value_parser = ["csv", "json"], default_value = "csv")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Every party's balance (they sum to zero).
    Balances {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Issue statements now: every provider, operator, store and building
    /// manager with postings since its last statement gets the next one in
    /// its box (they are also issued every `billing.statement_days`).
    Statements {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub enum KioskCommand {
    /// Orders and the images waiting for the burner.
    Discs {
        #[command(flatten)]
        kiosk: KioskConnection,
    },
    /// Save an order's disc image (ISO 9660) to burn it.
    Image {
        delivery: i64,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        kiosk: KioskConnection,
    },
    /// The disc is burned: delete its image (the buyer is told).
    Burned {
        delivery: i64,
        #[command(flatten)]
        kiosk: KioskConnection,
    },
    /// The burned disc of an order to be posted is posted (the buyer is
    /// told, with the tracking reference).
    Shipped {
        delivery: i64,
        #[arg(long)]
        tracking: Option<String>,
        #[command(flatten)]
        kiosk: KioskConnection,
    },
}

#[derive(Debug, Args)]
pub struct KioskConnection {
    /// The kiosk's URL (http://host:port/kiosk).
    #[arg(long, env = "TRACECAST_KIOSK")]
    pub kiosk_url: String,
    /// File holding the kiosk's token.
    #[arg(long, env = "TRACECAST_KIOSK_TOKEN_FILE")]
    pub kiosk_token_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Admit a first-order member after a face-to-face identity check
    /// (administrator).
    Admit {
        /// The user's name.
        user: String,
        /// Who checked the identity.
        #[arg(long)]
        operator: String,
        /// What was checked: a kind and a short reference ("passport …1234").
        #[arg(long)]
        document: String,
        #[command(flatten)]
        attributes: AttributeArgs,
        #[command(flatten)]
        conn: Connection,
    },
    /// Start your own first-order registration (user): what you declare
    /// and the document you will show at the registration desk, where an
    /// operator completes it (`members admit`); you hear the outcome in
    /// your inbox.
    Register {
        /// The document you will show (a kind and a short reference).
        #[arg(long)]
        document: String,
        #[command(flatten)]
        attributes: AttributeArgs,
        #[command(flatten)]
        conn: Connection,
    },
    /// Ask to become a member through a member (user).
    Apply {
        /// The member who refers you.
        #[arg(long)]
        referrer: String,
        #[command(flatten)]
        attributes: AttributeArgs,
        #[command(flatten)]
        conn: Connection,
    },
    /// Approve an application you were asked about, with your rating of the
    /// applicant from 0 to 1 (member).
    Approve {
        application: i64,
        #[arg(long)]
        rating: f64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Refuse an application you were asked about (member).
    Refuse {
        application: i64,
        #[command(flatten)]
        conn: Connection,
    },
    /// A member's order, trust, chain and the best quality they receive
    /// (the member, or an administrator).
    Show {
        user: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Ask your upstream members for a content reserved for the first
    /// orders (member); asking again shows where the request stands.
    Ask {
        content: i64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Grant a request for reserved content you were asked about (member).
    Grant {
        request: i64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Deny a request for reserved content you were asked about (member).
    Deny {
        request: i64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Every member as a tree (administrator).
    Tree {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Args)]
pub struct AttributeArgs {
    /// e.g. teacher, office-worker, student (see the origin's table).
    #[arg(long, default_value = "")]
    pub occupation: String,
    /// Place of activity: registered-business, home, online-only.
    #[arg(long, default_value = "")]
    pub place: String,
    /// History: long-standing, new, prior-infringement.
    #[arg(long, default_value = "")]
    pub history: String,
}

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// A licence for one of your deliveries of protected content (user).
    Get {
        delivery: i64,
        /// Your protection system: clearkey, age:age1… (your age recipient)
        /// or device:KEY (your device's public key).
        #[arg(long)]
        recipient: String,
        /// Where to write the licence (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Have the roaming server convert licences (from one or more
    /// servers) into your protection system (user; --server is the roaming
    /// server's URL).
    Convert {
        /// Licence files.
        #[arg(required = true)]
        licences: Vec<PathBuf>,
        /// Your system: clearkey, age:age1… or device:KEY.
        #[arg(long)]
        recipient: String,
        /// Where the converted licences go (NAME.SYSTEM.licence each).
        #[arg(long)]
        out_dir: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Let a partner (a roaming server) buy for you at this origin, up to
    /// a total (user); --revoke takes it back; neither shows it.
    Consent {
        /// The partner's name (the roaming server's).
        partner: String,
        /// The most it may spend for you in all, e.g. 20.00.
        #[arg(long, conflicts_with = "revoke")]
        limit: Option<String>,
        #[arg(long)]
        revoke: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// A package order (user; --server is the roaming server's URL): the
    /// roaming server buys each item at its issuer for you, converts its
    /// licence into your system and bills you; the copies (marked for you)
    /// and licences are then fetched into --out-dir.
    Order {
        /// ISSUER:CONTENT or ISSUER:CONTENT:TIER, e.g. origin:3.
        #[arg(required = true)]
        items: Vec<String>,
        /// Your system: clearkey, age:age1… or device:KEY.
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        out_dir: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Make a key for the age or device system: writes the secret (mode
    /// 0600) and prints the recipient to ask licences for.
    Keygen {
        /// age or device.
        system: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The protected copy (`….tcprot`).
    pub file: PathBuf,
    /// Your licence for it.
    #[arg(long)]
    pub licence: PathBuf,
    /// Your age identity or device key file (not needed for clearkey).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// Where to write the plain copy.
    #[arg(long)]
    pub out: PathBuf,
    /// Only bytes START-END (inclusive, as HTTP Range), read from the
    /// chunks that hold them.
    #[arg(long)]
    pub range: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}
